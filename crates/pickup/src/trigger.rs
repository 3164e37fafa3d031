//! Waking a trigger service (`public/qmgr`): connect without blocking (a full backlog
//! means it is busy and will scan anyway), send one framed `Trigger::Wakeup`, close.

use rostfix_proto::{write_message, Trigger};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Why the wake-up was not delivered (only ever a warning: the service also polls).
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("connect to {path}: {source}")]
    Connect { path: String, source: nix::Error },
    #[error("send to {path}: {source}")]
    Send {
        path: String,
        source: rostfix_proto::FrameError,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Sends one wake-up to the unix socket at `path`.
pub fn send_wakeup(path: &Path) -> Result<(), TriggerError> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let shown = path.display().to_string();
    let connect_err = |source| TriggerError::Connect {
        path: shown.clone(),
        source,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(connect_err)?;
    let addr = UnixAddr::new(path).map_err(connect_err)?;
    connect(fd.as_raw_fd(), &addr).map_err(connect_err)?;
    let mut stream = UnixStream::from(fd);
    let io_err = |source| TriggerError::Io {
        path: shown.clone(),
        source,
    };
    stream.set_nonblocking(false).map_err(io_err)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .map_err(io_err)?;
    write_message(&mut stream, &Trigger::Wakeup).map_err(|source| TriggerError::Send {
        path: shown.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn wakeup_arrives_as_one_frame() {
        let dir = std::env::temp_dir().join(format!("pickup-trigger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("pickup");
        let listener = UnixListener::bind(&sock).unwrap();
        send_wakeup(&sock).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        let got: Trigger = rostfix_proto::read_message(&mut conn).unwrap();
        assert_eq!(got, Trigger::Wakeup);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_socket_is_an_error() {
        assert!(matches!(
            send_wakeup(Path::new("/nonexistent/public/qmgr")),
            Err(TriggerError::Connect { .. })
        ));
    }
}
