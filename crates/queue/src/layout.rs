//! Queue directories under queue_directory and moving files between them.

use crate::QueueError;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The queue directories that hold queue files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueName {
    Maildrop,
    Incoming,
    Active,
    Deferred,
    Hold,
    Corrupt,
}

/// All of them, in the order rostqueue lists them.
pub const ALL_QUEUES: [QueueName; 6] = [
    QueueName::Maildrop,
    QueueName::Incoming,
    QueueName::Active,
    QueueName::Deferred,
    QueueName::Hold,
    QueueName::Corrupt,
];

impl QueueName {
    /// The directory name, e.g. "incoming".
    pub fn as_str(&self) -> &'static str {
        match self {
            QueueName::Maildrop => "maildrop",
            QueueName::Incoming => "incoming",
            QueueName::Active => "active",
            QueueName::Deferred => "deferred",
            QueueName::Hold => "hold",
            QueueName::Corrupt => "corrupt",
        }
    }

    /// Parses a directory name.
    pub fn parse(s: &str) -> Option<QueueName> {
        ALL_QUEUES.iter().copied().find(|q| q.as_str() == s)
    }
}

/// `root/queue/id`. `root` is queue_directory, or "." inside a chroot / after chdir.
pub fn queue_path(root: &Path, queue: QueueName, id: &str) -> PathBuf {
    root.join(queue.as_str()).join(id)
}

/// Renames `root/from/id` to `root/to/id` and fsyncs the target directory (the source
/// directory too), so the move survives a crash. NotFound if the source is gone.
pub fn move_file(root: &Path, from: QueueName, to: QueueName, id: &str) -> Result<(), QueueError> {
    let _ = (root, from, to, id);
    todo!()
}

/// The file names in `root/queue` that are valid queue ids (temporary files skipped).
pub fn list_queue(root: &Path, queue: QueueName) -> Result<Vec<String>, QueueError> {
    let _ = (root, queue);
    todo!()
}

/// Sets the file's mtime: in deferred/ it means "do not retry before".
pub fn set_retry_time(path: &Path, when: SystemTime) -> Result<(), QueueError> {
    let _ = (path, when);
    todo!()
}
