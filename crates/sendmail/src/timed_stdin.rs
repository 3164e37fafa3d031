//! Standard input with a read timeout, for `sendmail -bs`: each read waits at most
//! smtpd_timeout for data (poll(2) on fd 0), so a client that stops talking does not
//! keep the process forever.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::Duration;

/// Standard input, timed.
pub struct TimedStdin {
    timeout: Duration,
}

impl TimedStdin {
    pub fn new(timeout: Duration) -> TimedStdin {
        TimedStdin { timeout }
    }
}

impl Read for TimedStdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stdin = io::stdin();
        let millis = u32::try_from(self.timeout.as_millis()).unwrap_or(u32::MAX);
        let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
        loop {
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::TimedOut, "timeout")),
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
        }
        stdin.lock().read(buf)
    }
}
