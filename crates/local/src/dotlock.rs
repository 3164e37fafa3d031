//! Dotlock files (`MAILBOX.lock`), the lock every mail reader honours: created with
//! O_EXCL, retried until a deadline, removed when older than 500 s (a crashed holder),
//! and removed again when the [`Dotlock`] is dropped.
//!
//! Creating one may fail harmlessly: when the mailbox directory is not writable by the
//! delivering identity (Postfix's MBOX_DOT_LOCK_MAY_FAIL), [`Dotlock::acquire`] returns
//! `Ok(None)` and the fcntl lock alone protects the mailbox.

use nix::errno::Errno;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A lock older than this is left over by a crashed process (Postfix: 500 s).
pub const STALE_AFTER: Duration = Duration::from_secs(500);

/// Why no dotlock could be taken.
#[derive(Debug, thiserror::Error)]
pub enum DotlockError {
    /// Another process held the lock until the deadline.
    #[error("{0}: file exists")]
    Busy(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A held dotlock; the lock file is removed on drop (by the same identity that made
/// it, so drop it before switching identity back).
#[derive(Debug)]
pub struct Dotlock {
    path: PathBuf,
}

/// `FILE.lock` for a mailbox `FILE`.
pub fn lock_path(mailbox: &Path) -> PathBuf {
    let mut p = mailbox.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

impl Dotlock {
    /// Takes the dotlock of `mailbox`, waiting up to `wait`. `Ok(None)`: the directory
    /// does not let us create it (EACCES, EPERM, EROFS), so go on without one.
    pub fn acquire(mailbox: &Path, wait: Duration) -> Result<Option<Dotlock>, DotlockError> {
        let path = lock_path(mailbox);
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path);
            let err = match created {
                Ok(_) => return Ok(Some(Dotlock { path })),
                Err(e) => e,
            };
            match err.raw_os_error().map(Errno::from_raw) {
                Some(Errno::EEXIST) => {}
                // ENOENT (no directory): opening the mailbox will fail and say why.
                Some(Errno::EACCES) | Some(Errno::EPERM) | Some(Errno::EROFS)
                | Some(Errno::ENOENT) => return Ok(None),
                _ => return Err(DotlockError::Io { path, source: err }),
            }
            remove_if_stale(&path);
            if Instant::now() >= deadline {
                return Err(DotlockError::Busy(path));
            }
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes a lock file whose mtime is more than [`STALE_AFTER`] in the past.
fn remove_if_stale(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let Ok(mtime) = meta.modified() else { return };
    let age = SystemTime::now().duration_since(mtime).unwrap_or_default();
    if age > STALE_AFTER {
        log::warn!(
            "{}: removing stale lock file (age {}s)",
            path.display(),
            age.as_secs()
        );
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for Dotlock {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("{}: cannot remove lock file: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    #[test]
    fn lock_and_release() {
        let dir = TestDir::new("dotlock");
        let mbox = dir.path().join("alice");
        let lock = Dotlock::acquire(&mbox, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert!(dir.path().join("alice.lock").exists());
        let second = Dotlock::acquire(&mbox, Duration::from_millis(50));
        assert!(matches!(second, Err(DotlockError::Busy(_))));
        drop(lock);
        assert!(!dir.path().join("alice.lock").exists());
        assert!(Dotlock::acquire(&mbox, Duration::from_millis(50))
            .unwrap()
            .is_some());
    }

    #[test]
    fn stale_lock_is_broken() {
        let dir = TestDir::new("dotlock-stale");
        let mbox = dir.path().join("bob");
        let lockfile = lock_path(&mbox);
        std::fs::write(&lockfile, b"").unwrap();
        let old = SystemTime::now() - Duration::from_secs(600);
        let f = std::fs::File::options()
            .write(true)
            .open(&lockfile)
            .unwrap();
        f.set_modified(old).unwrap();
        let lock = Dotlock::acquire(&mbox, Duration::from_secs(1)).unwrap();
        assert!(lock.is_some());
    }

    #[test]
    fn missing_directory_means_no_lock() {
        let dir = TestDir::new("dotlock-missing");
        let mbox = dir.path().join("nodir/carol");
        assert!(Dotlock::acquire(&mbox, Duration::from_millis(10))
            .unwrap()
            .is_none());
    }

    #[test]
    fn other_errors_are_errors() {
        let dir = TestDir::new("dotlock-notdir");
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let mbox = dir.path().join("file/carol");
        assert!(matches!(
            Dotlock::acquire(&mbox, Duration::from_millis(10)),
            Err(DotlockError::Io { .. })
        ));
    }
}
