//! Ownership of a queue file in active/ by one queue manager: an exclusive,
//! non-blocking `flock` on the file, held for as long as that qmgr has the message in
//! memory. On `rostfix reload` the old qmgr keeps running until its deliveries in
//! flight are done while a new qmgr starts; the new one must not requeue or deliver
//! the files the old one still works on, and the lock says which those are. The lock
//! belongs to the inode, so it follows the file through renames, and it goes away by
//! itself when its holder exits or crashes.
//!
//! After locking, the path is checked to still name the locked inode: another qmgr
//! may have moved the file away (and back, as a new activation) between our open and
//! our lock, and then the lock we hold says nothing about the file at that name.

use crate::file::io_err;
use crate::QueueError;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// An exclusive lock on one queue file; released on drop.
#[derive(Debug)]
pub struct QueueLock {
    _lock: Flock<File>,
}

/// The result of trying to take a queue file's lock.
#[derive(Debug)]
pub enum LockAttempt {
    /// Ours now.
    Acquired(QueueLock),
    /// Another process holds it: another qmgr owns the message.
    Busy,
    /// The file is no longer at that path.
    Gone,
}

impl QueueLock {
    /// Tries to take the lock of the file at `path` without waiting.
    pub fn try_acquire(path: &Path) -> Result<LockAttempt, QueueError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockAttempt::Gone),
            Err(e) => return Err(io_err(path, e)),
        };
        Self::lock_open_file(file, path)
    }

    /// Takes the lock of an open file that is (or is about to be renamed to) `path`,
    /// without the check that `path` names it: for a file nobody else can know yet
    /// (a temporary file before its rename).
    pub(crate) fn lock_new_file(file: File, path: &Path) -> Result<QueueLock, QueueError> {
        Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map(|lock| QueueLock { _lock: lock })
            .map_err(|(_, errno)| io_err(path, std::io::Error::from(errno)))
    }

    fn lock_open_file(file: File, path: &Path) -> Result<LockAttempt, QueueError> {
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(LockAttempt::Busy),
            Err((_, errno)) => return Err(io_err(path, std::io::Error::from(errno))),
        };
        let held = lock.metadata().map_err(|e| io_err(path, e))?;
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                Ok(LockAttempt::Acquired(QueueLock { _lock: lock }))
            }
            Ok(_) => Ok(LockAttempt::Gone),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LockAttempt::Gone),
            Err(e) => Err(io_err(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempRoot;

    fn attempt(path: &Path) -> &'static str {
        match QueueLock::try_acquire(path).unwrap() {
            LockAttempt::Acquired(_) => "acquired",
            LockAttempt::Busy => "busy",
            LockAttempt::Gone => "gone",
        }
    }

    #[test]
    fn a_held_lock_makes_others_busy_until_dropped() {
        let dir = TempRoot::new();
        let path = dir.path().join("F1");
        std::fs::write(&path, b"x").unwrap();
        let held = match QueueLock::try_acquire(&path).unwrap() {
            LockAttempt::Acquired(l) => l,
            other => panic!("{other:?}"),
        };
        // flock locks belong to the open file description: a second open in the same
        // process conflicts exactly as another process would.
        assert_eq!(attempt(&path), "busy");
        // The lock follows the inode through a rename.
        let moved = dir.path().join("F2");
        std::fs::rename(&path, &moved).unwrap();
        assert_eq!(attempt(&moved), "busy");
        drop(held);
        assert_eq!(attempt(&moved), "acquired");
    }

    #[test]
    fn a_missing_file_is_gone() {
        let dir = TempRoot::new();
        assert_eq!(attempt(&dir.path().join("nothing")), "gone");
    }

    #[test]
    fn a_lock_on_a_replaced_name_is_not_ownership() {
        let dir = TempRoot::new();
        let path = dir.path().join("F1");
        std::fs::write(&path, b"old").unwrap();
        let file = File::open(&path).unwrap();
        // Someone replaces the name between our open and our lock.
        let other = dir.path().join("tmp");
        std::fs::write(&other, b"new").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(matches!(
            QueueLock::lock_open_file(file, &path).unwrap(),
            LockAttempt::Gone
        ));
    }
}
