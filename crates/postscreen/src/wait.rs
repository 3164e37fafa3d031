//! Waiting on a client socket without reading it: whether bytes (or end of input)
//! are there within a time, and whether any are there right now.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::Duration;

/// True when `stream` has input (or end of input) within `timeout`.
pub fn readable(stream: &TcpStream, timeout: Duration) -> io::Result<bool> {
    let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    match poll(
        &mut fds,
        PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX),
    ) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn sees_input_only_once_sent() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        assert!(!readable(&s, Duration::from_millis(20)).unwrap());
        c.write_all(b"x").unwrap();
        assert!(readable(&s, Duration::from_secs(5)).unwrap());
    }
}
