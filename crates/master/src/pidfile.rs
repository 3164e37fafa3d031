//! queue_directory/pid/master.pid: an fcntl write lock held for master's lifetime, so a
//! second master (or `rostfix start`) can tell one is running, even after kill -9 (the
//! kernel drops the lock with the process).

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use crate::error::io;
use crate::MasterError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The locked pid file.
#[derive(Debug)]
pub struct PidFile {
    file: File,
    path: PathBuf,
}

/// A whole-file lock request of `kind` (F_WRLCK, F_UNLCK).
fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: flock is plain old data; all-zero is a valid value (offset 0, length 0 =
    // the whole file), and we set the type below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock
}

impl PidFile {
    /// Opens (creating) and locks the pid file, then writes our pid. A lock held by
    /// another process is [`MasterError::AlreadyRunning`].
    pub fn lock(path: &Path) -> Result<PidFile, MasterError> {
        let sys = |e: std::io::Error| MasterError::sys(path.display().to_string(), e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(sys)?;
        let lock = whole_file(libc::F_WRLCK as libc::c_short);
        match nix::fcntl::fcntl(file.as_fd(), nix::fcntl::FcntlArg::F_SETLK(&lock)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EACCES) => {
                return Err(MasterError::AlreadyRunning)
            }
            Err(e) => return Err(sys(io(e))),
        }
        file.set_len(0).map_err(sys)?;
        file.write_all(format!("{:>10}\n", std::process::id()).as_bytes())
            .map_err(sys)?;
        file.sync_all().map_err(sys)?;
        Ok(PidFile {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Removes the file, then releases the lock by closing it.
    pub fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("remove {}: {e}", self.path.display());
        }
        drop(self.file);
    }
}

/// The pid of the process holding the lock on `path`, or None when nobody holds it
/// (or the file does not exist).
pub fn lock_holder(path: &Path) -> std::io::Result<Option<i32>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lock = whole_file(libc::F_WRLCK as libc::c_short);
    nix::fcntl::fcntl(file.as_fd(), nix::fcntl::FcntlArg::F_GETLK(&mut lock)).map_err(io)?;
    if lock.l_type == libc::F_UNLCK as libc::c_short {
        Ok(None)
    } else {
        Ok(Some(lock.l_pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_writes_pid_and_remove_deletes() {
        let dir = std::env::temp_dir().join(format!("master-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.pid");
        std::fs::write(&path, "garbage that is longer than a pid\n").unwrap();
        let pid = PidFile::lock(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().parse::<u32>().unwrap(), std::process::id());
        // Our own lock does not conflict with us; another process is tested end to end.
        assert_eq!(lock_holder(&path).unwrap(), None);
        pid.remove();
        assert!(!path.exists());
        assert_eq!(lock_holder(&path).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
