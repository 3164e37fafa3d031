//! Reading the queue directly (what Postfix's showq daemon does): every message in
//! maildrop, active, incoming, deferred and hold with its pending recipients and their
//! defer reasons. Used by the showq daemon and by a privileged rostqueue. Corrupt files are skipped with a warning; files that vanish while we
//! look (delivered meanwhile) are skipped silently.

use rostfix_queue::{list_queue, read_defer_reasons, QueueError, QueueFile, QueueId, QueueName};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The queues listed, in showq's order.
pub const LISTED_QUEUES: [QueueName; 5] = [
    QueueName::Maildrop,
    QueueName::Active,
    QueueName::Incoming,
    QueueName::Deferred,
    QueueName::Hold,
];

/// One message as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub queue: QueueName,
    pub id: QueueId,
    /// Seconds since the epoch (the file's mtime when the file has no arrival time).
    pub arrival: i64,
    /// Content size in bytes (the file size when the content is empty).
    pub size: u64,
    /// Envelope sender, with `<>` shown as empty_address_recipient.
    pub sender: String,
    /// The file carries the expire bit (rostsuper -e, docs/queue-format.md).
    pub forced_expire: bool,
    pub recipients: Vec<ListedRecipient>,
}

/// One pending recipient as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRecipient {
    pub address: String,
    pub orig_address: String,
    /// Why the last attempt failed, from defer/ID.
    pub reason: Option<String>,
}

/// Why the queue could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {}: permission denied; run as root or mail_owner", .0.display())]
    PermissionDenied(PathBuf),
    #[error("{path}: {1}", path = .0.display())]
    Io(PathBuf, io::Error),
}

/// Turns library errors into scan errors; `Ok(None)` for "skip this file".
fn triage(e: QueueError, warn: &mut dyn FnMut(String)) -> Result<Option<Listed>, ScanError> {
    match e {
        QueueError::NotFound(_) => Ok(None),
        QueueError::Corrupt { .. } | QueueError::Invalid { .. } => {
            warn(e.to_string());
            Ok(None)
        }
        QueueError::Io { path, source } if source.kind() == io::ErrorKind::PermissionDenied => {
            Err(ScanError::PermissionDenied(path))
        }
        QueueError::Io { path, source } => Err(ScanError::Io(path, source)),
    }
}

/// Lists every message. `empty_sender` replaces the null sender (showq shows
/// `MAILER-DAEMON`); `warn` receives one line per skipped corrupt file.
pub fn scan(
    root: &Path,
    empty_sender: &str,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<Listed>, ScanError> {
    if let Err(e) = std::fs::read_dir(root) {
        return Err(match e.kind() {
            io::ErrorKind::PermissionDenied => ScanError::PermissionDenied(root.to_path_buf()),
            _ => ScanError::Io(root.to_path_buf(), e),
        });
    }
    let mut out = Vec::new();
    for queue in LISTED_QUEUES {
        let ids = match list_queue(root, queue) {
            Ok(ids) => ids,
            // rostfix start creates every queue directory; a missing one holds nothing.
            Err(QueueError::NotFound(_)) => continue,
            Err(e) => {
                triage(e, warn)?;
                continue;
            }
        };
        for id in ids {
            match read_message(root, queue, &id, empty_sender) {
                Ok(m) => out.push(m),
                Err(e) => {
                    if let Some(m) = triage(e, warn)? {
                        out.push(m);
                    }
                }
            }
        }
    }
    Ok(out)
}

fn read_message(
    root: &Path,
    queue: QueueName,
    id: &str,
    empty_sender: &str,
) -> Result<Listed, QueueError> {
    let queue_id = QueueId::new(id).map_err(|_| QueueError::Invalid {
        what: "queue id",
        value: id.to_string(),
    })?;
    let qf = QueueFile::open(root, queue, id)?;
    let meta = std::fs::metadata(&qf.path).map_err(|source| QueueError::Io {
        path: qf.path.clone(),
        source,
    })?;
    let env = &qf.envelope;
    let arrival = if env.arrival_us > 0 {
        env.arrival_us.div_euclid(1_000_000)
    } else {
        meta.mtime()
    };
    let forced_expire = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o100 != 0;
    let size = if qf.content_len > 0 {
        qf.content_len
    } else {
        meta.len()
    };
    let sender = if env.sender.is_empty() {
        empty_sender.to_string()
    } else {
        env.sender.clone()
    };
    let reasons = read_defer_reasons(root, id)?;
    let mut recipients: Vec<(usize, ListedRecipient)> = qf
        .pending()
        .map(|r| {
            let found = reasons.iter().position(|(a, _)| *a == r.address);
            let rank = found.unwrap_or(usize::MAX);
            let reason = found.map(|i| reasons[i].1.clone());
            (
                rank,
                ListedRecipient {
                    address: r.address.clone(),
                    orig_address: r.orig_address.clone(),
                    reason,
                },
            )
        })
        .collect();
    // Like showq: recipients with a known reason first, in the defer log's order, then
    // the others in queue file order (the sort is stable).
    recipients.sort_by_key(|(rank, _)| *rank);
    Ok(Listed {
        queue,
        id: queue_id,
        arrival,
        size,
        sender,
        forced_expire,
        recipients: recipients.into_iter().map(|(_, r)| r).collect(),
    })
}
