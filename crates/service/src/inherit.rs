//! The descriptors master hands every child: fd 3 (status pipe write end) and fds
//! 4..4+LISTEN_FDS (listening sockets).
//!
//! They are checked once, at the very start of [`crate::Service::init`], before the
//! daemon opens anything: a daemon started by hand without fd 3 would otherwise find
//! its own log file or main.cf at fd 3 and mistake it for the status pipe.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use crate::{LISTEN_FD_START, STATUS_FD};
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// More listening sockets than any master.cf entry can produce (one per address of
/// inet_interfaces); a larger LISTEN_FDS is treated as garbage.
const MAX_LISTEN_FDS: usize = 256;

/// What this process inherited, as found at start-up.
#[derive(Debug)]
struct Inherited {
    /// fd 3 is open and is a pipe.
    status_pipe: bool,
    /// Listening fds that were really open.
    listen_fds: Vec<RawFd>,
    /// Problems found before logging was set up, for init to log.
    warnings: Vec<String>,
}

static INHERITED: OnceLock<Inherited> = OnceLock::new();
/// Set when the listeners were handed out; they are owned by one `OwnedFd` each.
static LISTENERS_TAKEN: AtomicBool = AtomicBool::new(false);

/// Records the inherited descriptors and marks them close-on-exec, so nothing a daemon
/// runs later (local's pipe commands) inherits them. Idempotent.
pub(crate) fn snapshot() {
    INHERITED.get_or_init(|| {
        let mut warnings = Vec::new();
        let status_pipe = is_fifo(STATUS_FD);
        if status_pipe {
            set_cloexec(STATUS_FD, &mut warnings);
        }
        let count = listen_fds_count(std::env::var("LISTEN_FDS").ok().as_deref());
        let mut listen_fds = Vec::new();
        for fd in (0..count as RawFd).map(|i| LISTEN_FD_START + i) {
            if is_socket(fd) {
                set_cloexec(fd, &mut warnings);
                listen_fds.push(fd);
            } else {
                warnings.push(format!(
                    "LISTEN_FDS names fd {fd}, which is not an open socket"
                ));
            }
        }
        Inherited {
            status_pipe,
            listen_fds,
            warnings,
        }
    });
}

/// Problems [`snapshot`] found (it runs before logging is set up).
pub(crate) fn startup_warnings() -> Vec<String> {
    INHERITED
        .get()
        .map(|i| i.warnings.clone())
        .unwrap_or_default()
}

/// LISTEN_FDS as a count; missing, malformed or absurd values mean none.
pub(crate) fn listen_fds_count(value: Option<&str>) -> usize {
    value
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n <= MAX_LISTEN_FDS)
        .unwrap_or(0)
}

/// The listening sockets, once; later calls get an empty list.
pub(crate) fn take_listeners() -> Vec<OwnedFd> {
    snapshot();
    if LISTENERS_TAKEN.swap(true, Ordering::SeqCst) {
        return Vec::new();
    }
    let Some(inherited) = INHERITED.get() else {
        return Vec::new();
    };
    inherited
        .listen_fds
        .iter()
        .map(|&fd| {
            // SAFETY: master hands these fds to the child by contract; snapshot() checked
            // at start-up, before this process opened anything, that each is an open
            // socket, and LISTENERS_TAKEN guarantees each is wrapped only once, so this
            // OwnedFd is the sole owner and nothing else in the process closes it.
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
        })
        .collect()
}

/// The status pipe, when this process was started by master.
pub(crate) fn status_fd() -> Option<BorrowedFd<'static>> {
    snapshot();
    if INHERITED.get().is_some_and(|i| i.status_pipe) {
        // SAFETY: snapshot() found fd 3 open as a pipe before anything else was opened;
        // it is inherited from master, never wrapped in an owning type and never closed
        // by this crate, so it stays open for the life of the process.
        Some(unsafe { BorrowedFd::borrow_raw(STATUS_FD) })
    } else {
        None
    }
}

fn file_type(fd: RawFd) -> Option<libc::mode_t> {
    // SAFETY: libc::stat is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat only reads the fd number (an invalid one gives EBADF) and writes
    // into the live local `st`.
    let rc = unsafe { libc::fstat(fd, &mut st) };
    (rc == 0).then_some(st.st_mode & libc::S_IFMT)
}

fn is_fifo(fd: RawFd) -> bool {
    file_type(fd) == Some(libc::S_IFIFO)
}

fn is_socket(fd: RawFd) -> bool {
    file_type(fd) == Some(libc::S_IFSOCK)
}

fn set_cloexec(fd: RawFd, warnings: &mut Vec<String>) {
    // SAFETY: F_GETFD/F_SETFD only read and change the close-on-exec flag of an fd we
    // just checked is open; no memory is passed.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) >= 0
    };
    if !ok {
        let error = std::io::Error::last_os_error();
        warnings.push(format!("fd {fd}: cannot set close-on-exec: {error}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn listen_fds_values() {
        assert_eq!(listen_fds_count(None), 0);
        assert_eq!(listen_fds_count(Some("2")), 2);
        assert_eq!(listen_fds_count(Some(" 1 ")), 1);
        assert_eq!(listen_fds_count(Some("-1")), 0);
        assert_eq!(listen_fds_count(Some("x")), 0);
        assert_eq!(listen_fds_count(Some("100000")), 0);
    }

    #[test]
    fn file_types() {
        let (r, w) = nix::unistd::pipe().unwrap();
        assert!(is_fifo(r.as_raw_fd()) && is_fifo(w.as_raw_fd()));
        let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
        assert!(is_socket(sock.as_raw_fd()) && !is_fifo(sock.as_raw_fd()));
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(!is_fifo(file.as_raw_fd()) && !is_socket(file.as_raw_fd()));
        drop(r);
        assert!(!is_fifo(-1));
    }

    #[test]
    fn cloexec_is_set() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let mut warnings = Vec::new();
        set_cloexec(r.as_raw_fd(), &mut warnings);
        assert!(warnings.is_empty());
        let flags = nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }
}
