//! Letting go of the listening sockets as soon as master dies, even while a client is
//! being served.
//!
//! A child shares master's listening sockets. If master is killed, a child in the middle
//! of a session keeps them open (and listening) until its client is done: a new master
//! then cannot bind the same address ("Address already in use"; SO_REUSEADDR does not
//! help against a socket in LISTEN state). So a watcher thread waits for the status pipe
//! to break; if our parent changed too (we were re-parented: master is dead, not merely
//! reloaded, which also breaks the pipe), it shuts the shared listening sockets down.
//! On Linux, shutdown(2) of a listening TCP socket takes it out of LISTEN for every
//! process that holds it, so the port is free at once; the current client is not
//! touched and is served to the end, then the child exits as before.

use crate::status::is_broken;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{shutdown, Shutdown};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Parent pid when this process started (master, when master spawned us).
static FIRST_PARENT: OnceLock<i32> = OnceLock::new();

/// How long to wait for the re-parenting after the pipe broke: the dying master closes
/// its fds before the kernel hands its children to a new parent.
const REPARENT_WAIT: Duration = Duration::from_secs(2);

/// Remembers the parent; called first thing at start-up.
pub(crate) fn note_parent() {
    let _ = FIRST_PARENT.set(nix::unistd::getppid().as_raw());
}

/// Why the status pipe broke (what the watcher concluded, and what
/// [`crate::Service::why_pipe_broke`] tells long-running services).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeBroke {
    /// Re-parented: master is dead; the listeners must go now.
    MasterDied,
    /// Same parent: a reload (master keeps the sockets); nothing to do.
    Reload,
}

/// After the pipe broke: waits (bounded) for a parent other than `first`.
pub(crate) fn classify(
    first: i32,
    parent: &dyn Fn() -> i32,
    wait: Duration,
    step: Duration,
) -> PipeBroke {
    let deadline = Instant::now() + wait;
    loop {
        if parent() != first {
            return PipeBroke::MasterDied;
        }
        if Instant::now() >= deadline {
            return PipeBroke::Reload;
        }
        std::thread::sleep(step);
    }
}

/// [`classify`] against the parent noted at start-up; a process that noted none was
/// not started by master, and has no master to be reloaded by.
pub(crate) fn classify_now() -> PipeBroke {
    let Some(&first) = FIRST_PARENT.get() else {
        return PipeBroke::MasterDied;
    };
    let parent = || nix::unistd::getppid().as_raw();
    classify(first, &parent, REPARENT_WAIT, Duration::from_millis(10))
}

/// Blocks until the status pipe's reader is gone.
fn wait_for_broken_pipe(status: BorrowedFd<'_>) {
    loop {
        let mut fds = [PollFd::new(status, PollFlags::empty())];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) if fds[0].revents().is_some_and(is_broken) => return,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                log::warn!("poll status pipe: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Starts the watcher. It works on its own duplicates of the status pipe and the
/// listeners, so the serve loop closing its copies can never make it shut down an
/// unrelated socket that reused an fd number.
pub(crate) fn watch(status: Option<BorrowedFd<'_>>, listeners: &[BorrowedFd<'_>]) {
    let (Some(status), Some(&first)) = (status, FIRST_PARENT.get()) else {
        return;
    };
    let dup = |fd: &BorrowedFd<'_>| fd.try_clone_to_owned();
    let status: OwnedFd = match dup(&status) {
        Ok(fd) => fd,
        Err(e) => {
            log::warn!("cannot watch for master's death: dup: {e}");
            return;
        }
    };
    let listeners: Vec<OwnedFd> = match listeners.iter().map(dup).collect() {
        Ok(fds) => fds,
        Err(e) => {
            log::warn!("cannot watch for master's death: dup: {e}");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("master-watch".to_string())
        .spawn(move || {
            wait_for_broken_pipe(status.as_fd());
            let parent = || nix::unistd::getppid().as_raw();
            if classify(first, &parent, REPARENT_WAIT, Duration::from_millis(10))
                == PipeBroke::Reload
            {
                return;
            }
            log::info!(
                "master is gone: closing the listening sockets, finishing the current client"
            );
            for fd in &listeners {
                // ENOTCONN and the like on a socket that is not TCP: nothing to free.
                let _ = shutdown(std::os::fd::AsRawFd::as_raw_fd(fd), Shutdown::Read);
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot watch for master's death: thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_new_parent_means_master_died() {
        let calls = Cell::new(0);
        let parent = || {
            calls.set(calls.get() + 1);
            // Re-parenting shows up on the third look.
            if calls.get() >= 3 {
                1
            } else {
                500
            }
        };
        let got = classify(
            500,
            &parent,
            Duration::from_secs(5),
            Duration::from_millis(1),
        );
        assert_eq!(got, PipeBroke::MasterDied);
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn the_same_parent_after_the_wait_is_a_reload() {
        let start = Instant::now();
        let got = classify(
            500,
            &|| 500,
            Duration::from_millis(50),
            Duration::from_millis(5),
        );
        assert_eq!(got, PipeBroke::Reload);
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn shutdown_frees_a_listening_port_still_held_open() {
        // The kernel behaviour the watcher relies on: after shutdown(SHUT_RD) of a
        // listening socket that stays open, a new SO_REUSEADDR socket can bind the port.
        use nix::sys::socket::{
            bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
            SockaddrIn,
        };
        use std::os::fd::AsRawFd;
        let open = || {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .unwrap();
            setsockopt(&fd, sockopt::ReuseAddr, &true).unwrap();
            fd
        };
        let held = open();
        bind(held.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
        listen(&held, Backlog::new(10).unwrap()).unwrap();
        let addr: SockaddrIn = nix::sys::socket::getsockname(held.as_raw_fd()).unwrap();
        let second = open();
        // While it listens, even SO_REUSEADDR does not get the port.
        assert!(bind(second.as_raw_fd(), &addr).is_err());
        drop(second);
        shutdown(held.as_raw_fd(), Shutdown::Read).unwrap();
        let third = open();
        bind(third.as_raw_fd(), &addr).unwrap();
        listen(&third, Backlog::new(10).unwrap()).unwrap();
        drop(held);
    }
}
