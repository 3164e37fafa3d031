//! The client side of the service sockets, shared by every program that talks to a
//! service: connecting to a unix stream socket within a time limit (a full listen
//! backlog blocks a plain connect for ever), and sending one trigger frame
//! (`public/qmgr`, `public/pickup`) with connect, write and close within `timeout`.

use crate::{write_message, FrameError, Trigger};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, getsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr,
};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a trigger could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("connect to {path}: {1}", path = .0.display())]
    Connect(PathBuf, nix::Error),
    #[error("connect to {}: timed out", .0.display())]
    Timeout(PathBuf),
    #[error("send to {path}: {1}", path = .0.display())]
    Send(PathBuf, FrameError),
}

/// Connects to the unix stream socket at `path`, waiting at most `timeout` for a
/// server with a full backlog to make room. The stream is blocking, with read and
/// write timeouts of `timeout` set for the exchange that follows.
pub fn connect_unix(path: &Path, timeout: Duration) -> Result<UnixStream, TriggerError> {
    let err = |e| TriggerError::Connect(path.to_path_buf(), e);
    let addr = UnixAddr::new(path).map_err(err)?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err)?;
    match connect(fd.as_raw_fd(), &addr) {
        Ok(()) => {}
        // A full listen backlog: wait until the server accepts, up to the timeout.
        Err(nix::Error::EAGAIN) | Err(nix::Error::EINPROGRESS) => {
            let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            let ready = poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            )
            .map_err(err)?;
            if ready == 0 {
                return Err(TriggerError::Timeout(path.to_path_buf()));
            }
            let so_error = getsockopt(&fd, sockopt::SocketError).map_err(err)?;
            if so_error != 0 {
                return Err(err(nix::Error::from_raw(so_error)));
            }
        }
        Err(e) => return Err(err(e)),
    }
    let stream = UnixStream::from(fd);
    let io = |e: std::io::Error| TriggerError::Send(path.to_path_buf(), FrameError::Io(e));
    let limit = Some(timeout.max(Duration::from_millis(1)));
    stream.set_nonblocking(false).map_err(io)?;
    stream.set_write_timeout(limit).map_err(io)?;
    stream.set_read_timeout(limit).map_err(io)?;
    Ok(stream)
}

/// Connects to the unix stream socket at `path` and writes `trigger` as one frame.
pub fn send_trigger(path: &Path, trigger: &Trigger, timeout: Duration) -> Result<(), TriggerError> {
    let mut stream = connect_unix(path, timeout)?;
    write_message(&mut stream, trigger).map_err(|e| TriggerError::Send(path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_message;
    use std::os::unix::net::UnixListener;

    fn sock_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("proto-client-{}-{name}", std::process::id()))
    }

    #[test]
    fn delivers_one_frame() {
        let path = sock_path("ok");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        send_trigger(
            &path,
            &Trigger::FlushId("ABCDEF1".into()),
            Duration::from_secs(2),
        )
        .unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let got: Trigger = read_message(&mut conn).unwrap();
        assert_eq!(got, Trigger::FlushId("ABCDEF1".into()));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn no_server_is_a_connect_error() {
        let path = sock_path("none");
        let _ = std::fs::remove_file(&path);
        assert!(matches!(
            send_trigger(&path, &Trigger::Flush, Duration::from_secs(1)),
            Err(TriggerError::Connect(..))
        ));
    }
}
