//! The queue operations themselves: delete, hold, release, one queue id at a time, over
//! the queues concerned. Each returns whether the message was found (and acted on).

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
    }
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
    }
}
