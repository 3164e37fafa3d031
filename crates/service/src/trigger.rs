//! Trigger connections (public/qmgr, public/pickup): the bounds on reading one frame,
//! and the trigger_server loop that handles them one at a time on the main thread
//! with TAKEN/AVAIL around each (docs/ipc.md, "Trigger").

use crate::serve::{wait_for_client, Listener, Waited};
use crate::status::{MasterGone, StatusPipe};
use crate::{Connection, Service};
use rostfix_proto::{read_message, FrameError, StatusKind, Trigger};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// A trigger frame is a few bytes of JSON; anything longer is not one.
pub const MAX_TRIGGER: u64 = 4096;
/// How long a client may take to send its trigger.
pub const TRIGGER_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads one trigger, bounded in size. `Ok(None)` when the peer closed without
/// sending anything (a liveness probe).
pub fn read_trigger<R: Read>(r: R) -> Result<Option<Trigger>, FrameError> {
    match read_message(&mut r.take(MAX_TRIGGER)) {
        Ok(t) => Ok(Some(t)),
        Err(FrameError::Closed) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the one trigger of an accepted connection within [`TRIGGER_TIMEOUT`];
/// garbage is logged at `level` and dropped.
pub(crate) fn receive(conn: Connection, level: log::Level) -> Option<Trigger> {
    let read = match &conn {
        Connection::Unix(s) => s
            .set_read_timeout(Some(TRIGGER_TIMEOUT))
            .map_err(FrameError::Io)
            .and_then(|()| read_trigger(s)),
        Connection::Tcp(s) | Connection::Passed(crate::Passed { stream: s, .. }) => s
            .set_read_timeout(Some(TRIGGER_TIMEOUT))
            .map_err(FrameError::Io)
            .and_then(|()| read_trigger(s)),
    };
    match read {
        Ok(t) => t,
        Err(e) => {
            log::log!(level, "trigger socket: bad trigger dropped: {e}");
            None
        }
    }
}

/// The trigger_server shape: returns (for the process to exit 0) when master is gone.
pub(crate) fn serve_triggers(
    mut service: Service,
    listeners: Vec<OwnedFd>,
    every: Option<Duration>,
    mut on_trigger: crate::daemon::TriggerHandler,
) {
    let listeners = crate::serve::listeners(listeners, false);
    let status = service.status_pipe();
    trigger_loop(&listeners, status, every, &mut |t| {
        on_trigger(&mut service, t)
    });
    log::debug!("master is gone; exiting");
}

/// Waits for a trigger connection (or `every` since the last call), calls `handle`
/// (None: the timer ran out, or the connection held no valid trigger), until the
/// status pipe breaks.
pub(crate) fn trigger_loop(
    listeners: &[Listener],
    status: StatusPipe<'_>,
    every: Option<Duration>,
    handle: &mut dyn FnMut(Option<Trigger>),
) {
    let mut last = Instant::now();
    loop {
        let remaining = every.map(|e| e.saturating_sub(last.elapsed()));
        match wait_for_client(listeners, status.fd, remaining) {
            Waited::Client(conn) => {
                let told = status.report(StatusKind::Taken);
                // As Postfix's trigger_server, every connection is a wake-up, whatever
                // it carried: a daemon that needs the trigger's content gets None for
                // garbage, and such clients are no worse off than silent ones.
                handle(receive(conn, log::Level::Debug));
                last = Instant::now();
                if told == Err(MasterGone) || status.report(StatusKind::Avail) == Err(MasterGone) {
                    return;
                }
            }
            Waited::Timeout => {
                handle(None);
                last = Instant::now();
            }
            Waited::Again => {}
            Waited::MasterGone => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::{write_message, ChildStatus, STATUS_LEN};
    use std::os::fd::AsFd;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn reads_each_trigger_kind() {
        for t in [
            Trigger::Wakeup,
            Trigger::Flush,
            Trigger::FlushId("3F2A81C0D4E".into()),
        ] {
            let mut buf = Vec::new();
            write_message(&mut buf, &t).expect("encode");
            assert_eq!(read_trigger(buf.as_slice()).expect("decode"), Some(t));
        }
    }

    #[test]
    fn empty_connection_is_not_an_error() {
        assert_eq!(read_trigger(&[][..]).expect("empty"), None);
    }

    #[test]
    fn garbage_and_oversize_are_errors() {
        assert!(read_trigger(&b"\x00\x00\x00\x03abc"[..]).is_err());
        let mut big = (8000u32).to_be_bytes().to_vec();
        big.extend(std::iter::repeat_n(b'x', 8000));
        assert!(
            read_trigger(big.as_slice()).is_err(),
            "more than MAX_TRIGGER bytes"
        );
    }

    fn listener(name: &str) -> (Listener, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "rostfix-service-trig-{}-{name}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("bind");
        (
            Listener::from_fd(OwnedFd::from(l), false).expect("listener"),
            path,
        )
    }

    #[test]
    fn each_trigger_is_taken_handled_and_avail_until_master_goes() {
        let (l, path) = listener("loop");
        let (r, w) = nix::unistd::pipe().expect("pipe");
        for t in [Trigger::Wakeup, Trigger::Flush] {
            let mut s = UnixStream::connect(&path).expect("connect");
            write_message(&mut s, &t).expect("write");
        }
        // Garbage is still a wake-up, with nothing to say.
        let mut s = UnixStream::connect(&path).expect("connect");
        std::io::Write::write_all(&mut s, b"\x00\x00\x00\x02{x").expect("write");
        drop(s);
        let mut got = Vec::new();
        let mut r = Some(r);
        let mut seen = Vec::new();
        trigger_loop(
            &[l],
            StatusPipe {
                fd: Some(w.as_fd()),
                pid: 9,
                generation: 2,
            },
            None,
            &mut |t| {
                got.push(t);
                if got.len() == 3 {
                    // Master goes away: the loop ends at its next report or poll.
                    if let Some(r) = r.take() {
                        seen = read_first(r, 5);
                    }
                }
            },
        );
        assert_eq!(got, [Some(Trigger::Wakeup), Some(Trigger::Flush), None]);
        use StatusKind::{Avail, Taken};
        assert_eq!(seen, [Taken, Avail, Taken, Avail, Taken]);
        let _ = std::fs::remove_file(path);
    }

    /// Reads `n` records and closes the read end.
    fn read_first(r: OwnedFd, n: usize) -> Vec<StatusKind> {
        let mut f = std::fs::File::from(r);
        let mut buf = vec![0u8; n * STATUS_LEN];
        f.read_exact(&mut buf).expect("records");
        buf.chunks(STATUS_LEN)
            .filter_map(|c| ChildStatus::decode(c.try_into().ok()?))
            .map(|s| s.kind)
            .collect()
    }

    #[test]
    fn timer_calls_without_a_trigger() {
        let (l, path) = listener("timer");
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut r = Some(r);
        let mut calls = Vec::new();
        let start = Instant::now();
        trigger_loop(
            &[l],
            StatusPipe {
                fd: Some(w.as_fd()),
                pid: 9,
                generation: 2,
            },
            Some(Duration::from_millis(40)),
            &mut |t| {
                calls.push(t);
                if calls.len() == 2 {
                    drop(r.take());
                }
            },
        );
        assert_eq!(calls, [None, None]);
        assert!(start.elapsed() >= Duration::from_millis(80));
        let _ = std::fs::remove_file(path);
    }
}
