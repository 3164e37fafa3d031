//! The durable steps between a validated bus message and `maildrop/`: write it as a
//! complete queue file into the staging directory `bus/` (fsync'ed file and directory),
//! release a batch of staged files into `maildrop/` (rename, then one fsync of each
//! directory), and recovery at start for whatever a crash left in `bus/`.
//!
//! Why a staging directory: pickup takes a file from `maildrop/` as soon as it appears
//! and qmgr may deliver and remove it before the bus id is on record, so the id must be
//! recorded before the file becomes visible to pickup, and the file must exist before
//! the id is recorded. `bus/` is where it exists without being visible. The order and
//! every crash point are in docs/bulk-sending.md.

use crate::submission::Submission;
use rostfix_queue::{
    list_queue, move_file, rename_file, sync_queue_dirs, Envelope, QueueError, QueueFile,
    QueueName, QueueWriter, Recipient,
};
use std::path::Path;

/// The attribute carrying the bus message id into the queue file.
pub const BUS_ID_ATTR: &str = "bus_id";
/// The attribute carrying the campaign id (other services read this exact name).
pub const CAMPAIGN_ATTR: &str = "campaign_id";

/// The envelope a bus message is written with. pickup, which takes the file from
/// `maildrop/`, adds `uid` and `rewrite_context=local` itself and copies `bus_id` and
/// `campaign_id` only from files owned by mail_owner (crates/pickup/src/attrs.rs).
pub fn envelope(sub: &Submission, bus_id: &str, arrival_us: i64) -> Envelope {
    let mut attrs = vec![(BUS_ID_ATTR.to_string(), bus_id.to_string())];
    for (name, value) in [
        (CAMPAIGN_ATTR, &sub.campaign_id),
        ("dsn_ret", &sub.dsn_ret),
        ("dsn_envid", &sub.dsn_envid),
    ] {
        if let Some(v) = value {
            attrs.push((name.to_string(), v.clone()));
        }
    }
    Envelope {
        sender: sub.sender.clone(),
        arrival_us,
        attrs,
        recipients: sub
            .recipients
            .iter()
            .map(|r| Recipient {
                address: r.clone(),
                orig_address: r.clone(),
                notify: sub.notify.clone(),
                ..Recipient::default()
            })
            .collect(),
    }
}

/// Writes `bus/ID` (file and directory fsync'ed) and returns ID.
pub fn stage(
    root: &Path,
    sub: &Submission,
    bus_id: &str,
    arrival_us: i64,
) -> Result<String, QueueError> {
    let env = envelope(sub, bus_id, arrival_us);
    // The bus runs as mail_owner: it may reuse finished messages' files.
    let mut writer = QueueWriter::create_recycled(root, QueueName::Bus, &env)?;
    writer.write_content(&sub.content)?;
    writer.commit()
}

/// Moves staged files to `maildrop/` and makes the moves durable.
pub fn release(root: &Path, ids: &[String]) -> Result<(), QueueError> {
    for id in ids {
        rename_file(root, QueueName::Bus, QueueName::Maildrop, id)?;
    }
    if !ids.is_empty() {
        sync_queue_dirs(root, &[QueueName::Maildrop, QueueName::Bus])?;
    }
    Ok(())
}

/// What recovery found in `bus/`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Complete staged files: (queue id, bus id).
    pub staged: Vec<(String, String)>,
    /// Files that do not parse or carry no bus id, moved to `corrupt/`.
    pub corrupt: Vec<String>,
    /// Temporary files of an interrupted write, removed (their messages were not
    /// acknowledged; the bus redelivers them).
    pub removed_temps: usize,
}

/// Looks at what a previous run left in `bus/`: removes unfinished temporary files,
/// moves unreadable files to `corrupt/`, and returns the complete ones. Called with the
/// dedup store's lock held, so no other intake is writing there.
pub fn leftovers(root: &Path) -> Result<Leftovers, QueueError> {
    let dir = root.join(QueueName::Bus.as_str());
    let mut found = Leftovers::default();
    let entries = std::fs::read_dir(&dir).map_err(|e| QueueError::Io {
        path: dir.clone(),
        source: e,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.starts_with("tmp."))
            && std::fs::remove_file(entry.path()).is_ok()
        {
            found.removed_temps += 1;
        }
    }
    for id in list_queue(root, QueueName::Bus)? {
        let bus_id = QueueFile::open(root, QueueName::Bus, &id)
            .ok()
            .and_then(|qf| qf.envelope.attr(BUS_ID_ATTR).map(str::to_string))
            .filter(|b| crate::submission::valid_bus_id(b));
        match bus_id {
            Some(b) => found.staged.push((id, b)),
            None => {
                move_file(root, QueueName::Bus, QueueName::Corrupt, &id)?;
                found.corrupt.push(id);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(name: &str) -> std::path::PathBuf {
        let r =
            std::env::temp_dir().join(format!("rostfix-bus-stage-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&r);
        for d in ["bus", "maildrop", "corrupt"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        r
    }

    fn submission() -> Submission {
        Submission {
            sender: "news@example.com".into(),
            recipients: vec!["a@x.example".into(), "b@y.example".into()],
            notify: "FAILURE".into(),
            dsn_ret: Some("HDRS".into()),
            dsn_envid: None,
            campaign_id: Some("c-1".into()),
            content: b"Subject: s\n\nbody\n".to_vec(),
        }
    }

    #[test]
    fn staged_then_released_into_maildrop() {
        let r = root("release");
        let id = stage(&r, &submission(), "42", 7).unwrap();
        assert_eq!(list_queue(&r, QueueName::Bus).unwrap(), vec![id.clone()]);
        assert!(list_queue(&r, QueueName::Maildrop).unwrap().is_empty());
        release(&r, std::slice::from_ref(&id)).unwrap();
        assert!(list_queue(&r, QueueName::Bus).unwrap().is_empty());
        let qf = QueueFile::open(&r, QueueName::Maildrop, &id).unwrap();
        assert_eq!(qf.envelope.sender, "news@example.com");
        assert_eq!(qf.envelope.attr("bus_id"), Some("42"));
        assert_eq!(qf.envelope.attr("campaign_id"), Some("c-1"));
        assert_eq!(qf.envelope.attr("dsn_ret"), Some("HDRS"));
        assert_eq!(qf.envelope.attr("dsn_envid"), None);
        assert_eq!(qf.envelope.recipients.len(), 2);
        assert_eq!(qf.envelope.recipients[1].notify, "FAILURE");
        assert_eq!(qf.read_content().unwrap(), b"Subject: s\n\nbody\n");
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn recovery_sorts_what_a_crash_left() {
        let r = root("recover");
        let id = stage(&r, &submission(), "43", 7).unwrap();
        std::fs::write(r.join("bus/tmp.1.2"), b"half a file").unwrap();
        std::fs::write(r.join("bus/ABCDEF12"), b"not a queue file").unwrap();
        std::fs::write(r.join("bus/ids"), b"1 43\n").unwrap();
        let found = leftovers(&r).unwrap();
        assert_eq!(found.staged, vec![(id, "43".to_string())]);
        assert_eq!(found.corrupt, vec!["ABCDEF12".to_string()]);
        assert_eq!(found.removed_temps, 1);
        assert!(r.join("corrupt/ABCDEF12").exists());
        assert!(!r.join("bus/tmp.1.2").exists());
        assert!(
            r.join("bus/ids").exists(),
            "the dedup log is not a leftover"
        );
        std::fs::remove_dir_all(&r).unwrap();
    }
}
