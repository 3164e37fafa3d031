//! Queue directories under queue_directory and moving files between them.

use crate::file::io_err;
use crate::{is_valid_queue_id, QueueError};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

// The queue directories are a wire type too (delivery and bounce requests name one):
// defined in rostfix_proto, re-exported here.
pub use rostfix_proto::{QueueName, ALL_QUEUES};

/// `root/queue/id`. `root` is queue_directory, or "." inside a chroot / after chdir.
pub fn queue_path(root: &Path, queue: QueueName, id: &str) -> PathBuf {
    root.join(queue.as_str()).join(id)
}

/// Renames `root/from/id` to `root/to/id` and fsyncs the target directory (the source
/// directory too), so the move survives a crash. NotFound if the source is gone.
pub fn move_file(root: &Path, from: QueueName, to: QueueName, id: &str) -> Result<(), QueueError> {
    rename_file(root, from, to, id)?;
    // The new name first: once it is durable the file can no longer be lost.
    fsync_dir(&root.join(to.as_str()))?;
    if from != to {
        fsync_dir(&root.join(from.as_str()))?;
    }
    Ok(())
}

/// Renames `root/from/id` to `root/to/id` without fsyncing either directory, for a
/// caller that moves a batch and then calls [`sync_queue_dirs`] once before acting on
/// the new names. Until then a crash leaves each file under its old name or its new
/// one (rename is atomic), never under neither: no message is lost, it is only seen
/// again in the queue it came from. NotFound if the source is gone.
pub fn rename_file(
    root: &Path,
    from: QueueName,
    to: QueueName,
    id: &str,
) -> Result<(), QueueError> {
    if !is_valid_queue_id(id) {
        return Err(QueueError::Invalid {
            what: "queue id",
            value: id.to_string(),
        });
    }
    let src = queue_path(root, from, id);
    let dst = queue_path(root, to, id);
    std::fs::rename(&src, &dst).map_err(|e| io_err(&src, e))
}

/// Fsyncs the directories of `queues` (target first), making a batch of
/// [`rename_file`] moves durable with one fsync per directory instead of two per file.
pub fn sync_queue_dirs(root: &Path, queues: &[QueueName]) -> Result<(), QueueError> {
    for q in queues {
        fsync_dir(&root.join(q.as_str()))?;
    }
    Ok(())
}

/// Fsyncs a directory so the names created or removed in it survive a crash.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), QueueError> {
    let io = |source| QueueError::Io {
        path: dir.to_path_buf(),
        source,
    };
    File::open(dir).map_err(io)?.sync_all().map_err(io)
}

/// The file names in `root/queue` that are valid queue ids (temporary files skipped).
/// Sorted, so listings are stable. A missing directory is [`QueueError::NotFound`].
pub fn list_queue(root: &Path, queue: QueueName) -> Result<Vec<String>, QueueError> {
    let dir = root.join(queue.as_str());
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
        let entry = entry.map_err(|e| io_err(&dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            if is_valid_queue_id(name) {
                ids.push(name.to_string());
            }
        }
    }
    ids.sort();
    Ok(ids)
}

/// Sets the file's mtime: in deferred/ it means "do not retry before".
/// Only the mtime changes (futimens with the access time omitted); a read-only
/// descriptor suffices for the file's owner.
pub fn set_retry_time(path: &Path, when: SystemTime) -> Result<(), QueueError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    file.set_modified(when).map_err(|e| io_err(path, e))
}
