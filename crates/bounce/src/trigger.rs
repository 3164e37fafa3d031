//! Wakes qmgr after a notice is queued: one `Trigger::Wakeup` frame to `public/qmgr`,
//! bounded in time. A failure only delays the notice until qmgr's next periodic scan.
//! (A private copy of qmgr's connect helper: there is no shared client crate yet.)

use rostfix_proto::{write_message, Trigger};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Connecting and writing the trigger.
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to a unix stream socket within `timeout`: Linux bounds a blocking unix
/// connect (full backlog) by SO_SNDTIMEO, so that is set first.
fn connect(path: &Path, timeout: Duration) -> std::io::Result<UnixStream> {
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
    use nix::sys::time::{TimeVal, TimeValLike};
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let micros = i64::try_from(timeout.as_micros())
        .unwrap_or(i64::MAX)
        .max(1);
    socket::setsockopt(&fd, sockopt::SendTimeout, &TimeVal::microseconds(micros))?;
    let addr = UnixAddr::new(path)?;
    socket::connect(fd.as_raw_fd(), &addr)?;
    Ok(UnixStream::from(fd))
}

/// Sends `Trigger::Wakeup` to the qmgr socket at `path` (normally `public/qmgr`).
pub fn wake_qmgr(path: &Path) -> Result<(), String> {
    let mut stream = connect(path, TRIGGER_TIMEOUT)
        .map_err(|e| format!("connect to {}: {e}", path.display()))?;
    stream
        .set_write_timeout(Some(TRIGGER_TIMEOUT))
        .map_err(|e| e.to_string())?;
    write_message(&mut stream, &Trigger::Wakeup).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::read_message;
    use std::os::unix::net::UnixListener;

    #[test]
    fn sends_one_wakeup() {
        let dir = std::env::temp_dir().join(format!("bounce-trig-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("qmgr");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("bind");
        wake_qmgr(&path).expect("trigger sent");
        let (mut s, _) = l.accept().expect("accept");
        let t: Trigger = read_message(&mut s).expect("frame");
        assert_eq!(t, Trigger::Wakeup);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_qmgr_is_an_error_not_a_hang() {
        assert!(wake_qmgr(Path::new("/nonexistent/public/qmgr")).is_err());
    }
}
