//! Moving one maildrop/ file into incoming/: check the file, parse it, write a new
//! queue file through QueueWriter (Received: header + the same content), commit, and
//! only then unlink the maildrop file.
//!
//! Crash window (accepted, as in Postfix): after the incoming/ file is committed and
//! before the maildrop/ file is unlinked, a crash makes the next scan queue the message
//! a second time (a duplicate, never a loss).

use crate::date::{format_rfc5322, local_offset};
use crate::envelope::{incoming_envelope, received_header};
use rostfix_queue::{queue_path, QueueError, QueueFile, QueueName, QueueWriter};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// What pickup needs from main.cf.
#[derive(Debug, Clone)]
pub struct Settings {
    pub myhostname: String,
    pub myorigin: String,
}

/// A message that made it into incoming/.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub new_id: String,
    pub uid: u32,
    pub sender: String,
}

/// Why a maildrop file was not queued.
#[derive(Debug, thiserror::Error)]
pub enum PickupError {
    /// Unusable for good: the caller moves it to corrupt/.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// Vanished meanwhile (another pickup, rostsuper): nothing to do.
    #[error("gone")]
    Gone,
    /// Could not write now (disk full, ...): the file stays for the next scan.
    #[error("{0}")]
    Retry(String),
}

fn from_read_error(e: QueueError) -> PickupError {
    match e {
        QueueError::Corrupt { reason, .. } => PickupError::Corrupt(reason),
        QueueError::NotFound(_) => PickupError::Gone,
        QueueError::Invalid { what, value } => {
            PickupError::Corrupt(format!("invalid {what}: {}", value.escape_default()))
        }
        QueueError::Io { .. } => PickupError::Retry(e.to_string()),
    }
}

/// Queues `root/maildrop/name`; `root` is "." after confinement.
pub fn pickup_file(root: &Path, name: &str, settings: &Settings) -> Result<Queued, PickupError> {
    let path = queue_path(root, QueueName::Maildrop, name);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(PickupError::Gone),
        Err(e) => return Err(PickupError::Retry(format!("{}: {e}", path.display()))),
    };
    if !meta.file_type().is_file() {
        return Err(PickupError::Corrupt(format!(
            "not a regular file (uid {})",
            meta.uid()
        )));
    }
    if meta.nlink() > 1 {
        log::warn!(
            "maildrop/{name}: uid {}: file has {} links",
            meta.uid(),
            meta.nlink()
        );
    }
    let owner = meta.uid();
    let file = QueueFile::open_path(&path, QueueName::Maildrop).map_err(from_read_error)?;
    let (envelope, warning) = incoming_envelope(&file.envelope, owner, &settings.myorigin);
    if let Some(w) = warning {
        log::warn!("maildrop/{name}: {w}");
    }
    if envelope.recipients.is_empty() {
        return Err(PickupError::Corrupt("no recipients".into()));
    }
    let content = file.read_content().map_err(from_read_error)?;

    let mut writer =
        QueueWriter::create(root, QueueName::Incoming, &envelope).map_err(|e| match e {
            QueueError::Invalid { .. } => from_read_error(e),
            other => PickupError::Retry(other.to_string()),
        })?;
    let new_id = writer.queue_id().to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let now = i64::try_from(now).unwrap_or(0);
    let received = received_header(
        &settings.myhostname,
        owner,
        &new_id,
        &format_rfc5322(now, local_offset(now)),
    );
    let written = writer
        .write_content(received.as_bytes())
        .and_then(|()| writer.write_content(&content));
    if let Err(e) = written {
        writer.abort();
        return Err(PickupError::Retry(e.to_string()));
    }
    let new_id = writer
        .commit()
        .map_err(|e| PickupError::Retry(e.to_string()))?;
    if let Err(e) = std::fs::remove_file(&path) {
        // The message is queued; the leftover would be queued again by the next scan.
        log::warn!("maildrop/{name}: remove after queueing as {new_id}: {e}");
    }
    Ok(Queued {
        new_id,
        uid: owner,
        sender: envelope.sender,
    })
}
