//! The queue operations themselves: delete, hold, release, requeue, expire, one queue
//! id at a time, over the queues concerned. Each returns whether the message was found
//! (and acted on). Every change is a single rename(2) or chmod(2) of the file, so
//! qmgr, which moves files the same way, never sees a half-done state; a file that
//! vanishes meanwhile (delivered, moved by qmgr) is simply not found.

use crate::args::Action;
use rostfix_queue::{
    list_queue, move_file, queue_path, remove_message_logs, set_retry_time, QueueError, QueueName,
};
use std::path::Path;
use std::time::SystemTime;

/// postsuper's defaults when no queue is named.
const DELETE_FROM: [QueueName; 4] = [
    QueueName::Hold,
    QueueName::Incoming,
    QueueName::Active,
    QueueName::Deferred,
];
const HOLD_FROM: [QueueName; 3] = [QueueName::Incoming, QueueName::Active, QueueName::Deferred];
/// postsuper's defaults for -r and -e.
const REQUEUE_FROM: [QueueName; 4] = DELETE_FROM;

/// The owner-execute bit marks a force-expired queue file (Postfix's
/// MAIL_QUEUE_STAT_EXPIRE); qmgr reads it when it activates the file.
pub const EXPIRE_BIT: u32 = 0o100;

/// The queues an action looks in: the named ones (restricted to those that make sense
/// for the action), else postsuper's defaults.
pub fn source_queues(action: Action, named: &[QueueName]) -> Vec<QueueName> {
    match action {
        Action::Delete if named.is_empty() => DELETE_FROM.to_vec(),
        Action::Delete => named.to_vec(),
        Action::Hold if named.is_empty() => HOLD_FROM.to_vec(),
        Action::Hold => named
            .iter()
            .copied()
            .filter(|q| *q != QueueName::Hold)
            .collect(),
        // Only held mail can be released.
        Action::Release if named.is_empty() || named.contains(&QueueName::Hold) => {
            vec![QueueName::Hold]
        }
        Action::Release => Vec::new(),
        Action::Requeue | Action::Expire | Action::ExpireNow if named.is_empty() => {
            REQUEUE_FROM.to_vec()
        }
        // Requeueing incoming/ into incoming/ means nothing.
        Action::Requeue => named
            .iter()
            .copied()
            .filter(|q| *q != QueueName::Incoming)
            .collect(),
        Action::Expire | Action::ExpireNow => named.to_vec(),
    }
}

/// Every queue id in `queues`, sorted, without duplicates.
pub fn all_ids(root: &Path, queues: &[QueueName]) -> Result<Vec<String>, QueueError> {
    let mut ids = Vec::new();
    for &q in queues {
        match list_queue(root, q) {
            Ok(found) => ids.extend(found),
            // rostfix start creates the queue directories; a missing one holds nothing.
            Err(QueueError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Applies `action` to `id` in `queues`; true if a message was found.
pub fn apply(
    root: &Path,
    action: Action,
    id: &str,
    queues: &[QueueName],
) -> Result<bool, QueueError> {
    match action {
        Action::Delete => delete(root, id, queues),
        Action::Hold => hold(root, id, queues),
        Action::Release => release(root, id, queues),
        Action::Requeue => requeue(root, id, queues),
        Action::Expire | Action::ExpireNow => expire(root, id, queues),
    }
}

/// Moves the message to incoming/ from the first queue that has it. qmgr resolves
/// every pending recipient again when it activates the file (there is no cleanup
/// daemon to re-run: address rewriting happens at activation), which is what
/// postsuper -r is for. The file keeps its done marks.
fn requeue(root: &Path, id: &str, queues: &[QueueName]) -> Result<bool, QueueError> {
    for &q in queues {
        if q == QueueName::Incoming {
            continue;
        }
        match move_file(root, q, QueueName::Incoming, id) {
            Ok(()) => return Ok(true),
            Err(QueueError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Sets the expire bit on the file in the first queue that has it.
fn expire(root: &Path, id: &str, queues: &[QueueName]) -> Result<bool, QueueError> {
    use std::os::unix::fs::PermissionsExt;
    for &q in queues {
        let path = queue_path(root, q, id);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(QueueError::Io { path, source }),
        };
        let mode = meta.permissions().mode() & 0o7777;
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | EXPIRE_BIT)) {
            Ok(()) => return Ok(true),
            // Moved between our stat and chmod: look in the other queues.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(QueueError::Io { path, source }),
        }
    }
    Ok(false)
}

/// Removes the queue file from each queue that has it, then its defer/bounce logs.
fn delete(root: &Path, id: &str, queues: &[QueueName]) -> Result<bool, QueueError> {
    let mut found = false;
    for &q in queues {
        let path = queue_path(root, q, id);
        match std::fs::remove_file(&path) {
            Ok(()) => found = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(QueueError::Io { path, source }),
        }
    }
    if found {
        remove_message_logs(root, id)?;
    }
    Ok(found)
}

/// Moves the message to hold/ from the first queue that has it.
fn hold(root: &Path, id: &str, queues: &[QueueName]) -> Result<bool, QueueError> {
    for &q in queues {
        match move_file(root, q, QueueName::Hold, id) {
            Ok(()) => return Ok(true),
            Err(QueueError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Moves the message from hold/ to deferred/, due for delivery now.
fn release(root: &Path, id: &str, queues: &[QueueName]) -> Result<bool, QueueError> {
    if !queues.contains(&QueueName::Hold) {
        return Ok(false);
    }
    match move_file(root, QueueName::Hold, QueueName::Deferred, id) {
        Ok(()) => {}
        Err(QueueError::NotFound(_)) => return Ok(false),
        Err(e) => return Err(e),
    }
    set_retry_time(
        &queue_path(root, QueueName::Deferred, id),
        SystemTime::now(),
    )?;
    Ok(true)
}

/// The per-message log text and the summary's label, as postsuper words them.
pub fn wording(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Delete => ("removed", "Deleted"),
        Action::Hold => ("placed on hold", "Placed on hold"),
        Action::Release => ("released from hold", "Released from hold"),
        Action::Requeue => ("requeued", "Requeued"),
        Action::Expire | Action::ExpireNow => ("expired", "Expired"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_named_queues() {
        assert_eq!(source_queues(Action::Delete, &[]), DELETE_FROM.to_vec());
        assert_eq!(
            source_queues(Action::Delete, &[QueueName::Maildrop]),
            vec![QueueName::Maildrop]
        );
        assert_eq!(source_queues(Action::Hold, &[]), HOLD_FROM.to_vec());
        assert_eq!(
            source_queues(Action::Hold, &[QueueName::Hold, QueueName::Deferred]),
            vec![QueueName::Deferred]
        );
        assert_eq!(source_queues(Action::Release, &[]), vec![QueueName::Hold]);
        assert_eq!(
            source_queues(Action::Release, &[QueueName::Deferred]),
            Vec::<QueueName>::new()
        );
        assert_eq!(source_queues(Action::Requeue, &[]), REQUEUE_FROM.to_vec());
        assert_eq!(
            source_queues(Action::Requeue, &[QueueName::Incoming, QueueName::Hold]),
            vec![QueueName::Hold]
        );
    }

    fn queue_root(name: &str) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("rostsuper-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for q in ["incoming", "active", "deferred", "hold", "defer", "bounce"] {
            std::fs::create_dir_all(root.join(q)).unwrap();
        }
        root
    }

    #[test]
    fn requeue_and_expire_move_and_mark() {
        use std::os::unix::fs::PermissionsExt;
        let root = queue_root("rq");
        let path = queue_path(&root, QueueName::Deferred, "ABCDEF1");
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let qs = source_queues(Action::Expire, &[]);
        assert!(apply(&root, Action::Expire, "ABCDEF1", &qs).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        let qs = source_queues(Action::Requeue, &[]);
        assert!(apply(&root, Action::Requeue, "ABCDEF1", &qs).unwrap());
        assert!(queue_path(&root, QueueName::Incoming, "ABCDEF1").exists());
        assert!(!path.exists());
        assert!(!apply(&root, Action::Requeue, "ABCDEF1", &qs).unwrap());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
