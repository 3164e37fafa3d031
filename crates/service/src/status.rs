//! Writing TAKEN/AVAIL records on the status pipe and watching it for master's death.

use rostfix_proto::{ChildStatus, StatusKind};
use std::os::fd::BorrowedFd;

/// The status pipe can no longer reach master (its read end is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MasterGone;

/// Where this child reports busy/idle. Without a pipe (started by hand) reports are
/// no-ops and master counts as alive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatusPipe<'a> {
    pub fd: Option<BorrowedFd<'a>>,
    pub pid: i32,
    pub generation: u32,
}

impl StatusPipe<'_> {
    /// Writes one 9-byte record in one write(2) (atomic: below PIPE_BUF).
    pub(crate) fn report(&self, kind: StatusKind) -> Result<(), MasterGone> {
        let Some(fd) = self.fd else {
            return Ok(());
        };
        let record = ChildStatus {
            pid: self.pid,
            generation: self.generation,
            kind,
        }
        .encode();
        loop {
            match nix::unistd::write(fd, &record) {
                Ok(n) if n == record.len() => return Ok(()),
                Ok(n) => {
                    // Cannot happen for a pipe and a write below PIPE_BUF; master would
                    // misparse what follows, so stop talking to it.
                    log::warn!("status pipe: short write of {n} bytes");
                    return Err(MasterGone);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => {
                    // A full non-blocking pipe: master is alive but behind. Dropping one
                    // record only skews its idle count until our next report.
                    log::warn!("status pipe full; status update dropped");
                    return Ok(());
                }
                Err(nix::errno::Errno::EPIPE) => return Err(MasterGone),
                Err(e) => {
                    log::warn!("status pipe: {e}");
                    return Err(MasterGone);
                }
            }
        }
    }

    /// False once the pipe's reader is gone (POLLERR on the write end).
    pub(crate) fn alive(&self) -> bool {
        let Some(fd) = self.fd else {
            return true;
        };
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::empty())];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO) {
            Ok(0) => true,
            Ok(_) => !fds[0].revents().is_some_and(is_broken),
            // EINTR and friends say nothing about master; check again next time.
            Err(_) => true,
        }
    }
}

/// Poll events on the status pipe's write end that mean nobody reads it any more.
pub(crate) fn is_broken(revents: nix::poll::PollFlags) -> bool {
    use nix::poll::PollFlags;
    revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::STATUS_LEN;
    use std::io::Read;
    use std::os::fd::AsFd;

    #[test]
    fn records_reach_the_reader_and_decode() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let pipe = StatusPipe {
            fd: Some(w.as_fd()),
            pid: 4242,
            generation: 3,
        };
        assert!(pipe.alive());
        pipe.report(StatusKind::Taken).unwrap();
        pipe.report(StatusKind::Avail).unwrap();
        let mut reader = std::fs::File::from(r);
        let mut buf = [0u8; 2 * STATUS_LEN];
        reader.read_exact(&mut buf).unwrap();
        let first: [u8; STATUS_LEN] = buf[..STATUS_LEN].try_into().unwrap();
        let second: [u8; STATUS_LEN] = buf[STATUS_LEN..].try_into().unwrap();
        let taken = ChildStatus {
            pid: 4242,
            generation: 3,
            kind: StatusKind::Taken,
        };
        assert_eq!(ChildStatus::decode(&first), Some(taken));
        assert_eq!(
            ChildStatus::decode(&second).map(|s| s.kind),
            Some(StatusKind::Avail)
        );
    }

    #[test]
    fn closed_reader_means_master_gone() {
        // Rust ignores SIGPIPE in test binaries too, so the write returns EPIPE.
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let pipe = StatusPipe {
            fd: Some(w.as_fd()),
            pid: 1,
            generation: 0,
        };
        assert!(!pipe.alive());
        assert_eq!(pipe.report(StatusKind::Taken), Err(MasterGone));
    }

    #[test]
    fn no_pipe_is_a_no_op() {
        let pipe = StatusPipe {
            fd: None,
            pid: 1,
            generation: 0,
        };
        assert!(pipe.alive());
        assert_eq!(pipe.report(StatusKind::Avail), Ok(()));
    }
}
