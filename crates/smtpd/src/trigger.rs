//! Waking the queue manager after a message was queued: one `Trigger::Wakeup` frame
//! to the unix socket `public/qmgr`. Best effort by design: if qmgr is busy or down the
//! message is safe on disk and qmgr's periodic scan (master's wakeup) finds it, so a
//! failure here is only a warning and must never delay the client for long.

use rostfix_proto::{write_message, FrameError, Trigger};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why the wake-up was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("connect: {0}")]
    Connect(#[from] nix::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("send: {0}")]
    Send(#[from] FrameError),
}

/// Connects without blocking (a full listen backlog fails at once instead of
/// hanging) and sends the frame with a write timeout of `timeout`.
pub fn send_wakeup(path: &Path, timeout: Duration) -> Result<(), TriggerError> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    let mut stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(timeout))?;
    write_message(&mut stream, &Trigger::Wakeup)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::read_message;
    use std::os::unix::net::UnixListener;

    #[test]
    fn sends_one_wakeup_frame() {
        let dir = std::env::temp_dir().join(format!("smtpd-trigger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qmgr");
        let listener = UnixListener::bind(&path).unwrap();
        send_wakeup(&path, Duration::from_secs(1)).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let t: Trigger = read_message(&mut conn).unwrap();
        assert_eq!(t, Trigger::Wakeup);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_socket_is_an_error_not_a_hang() {
        assert!(send_wakeup(
            Path::new("/nonexistent/public/qmgr"),
            Duration::from_secs(1)
        )
        .is_err());
    }
}
