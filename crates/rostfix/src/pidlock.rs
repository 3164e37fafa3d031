//! Who holds queue_directory/pid/master.pid's fcntl lock: the running master, if any.
//! The lock (not the file's content) is the truth: a master killed with -9 leaves the
//! file but not the lock.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// queue_directory/pid/master.pid.
pub fn pid_file(queue_directory: &Path) -> PathBuf {
    queue_directory.join("pid").join("master.pid")
}

/// The pid of the process holding the lock, or None (also when the file is missing).
pub fn lock_holder(path: &Path) -> std::io::Result<Option<i32>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // SAFETY: flock is plain old data and all-zero is valid (whole file from offset 0).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    nix::fcntl::fcntl(file.as_fd(), nix::fcntl::FcntlArg::F_GETLK(&mut lock))
        .map_err(std::io::Error::from)?;
    Ok((lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_unlocked_file_has_no_holder() {
        let dir = std::env::temp_dir().join(format!("rostfix-pidlock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.pid");
        assert_eq!(lock_holder(&path).unwrap(), None);
        std::fs::write(&path, "  12345\n").unwrap();
        assert_eq!(
            lock_holder(&path).unwrap(),
            None,
            "a stale file without a lock"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            pid_file(Path::new("/q")),
            PathBuf::from("/q/pid/master.pid")
        );
    }
}
