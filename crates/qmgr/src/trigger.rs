//! The trigger listener: accepts connections on public/qmgr, reads one framed
//! [`Trigger`] (at most [`MAX_TRIGGER`] bytes, within [`TRIGGER_TIMEOUT`]) and forwards
//! it to the main loop. Garbage is logged and the connection dropped. One thread per
//! listening socket; connections are served one at a time, each bounded by the timeout.

use crate::event::Event;
use rostfix_proto::{read_message, FrameError, Trigger};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

/// A trigger frame is a few bytes of JSON; anything longer is not one.
pub const MAX_TRIGGER: u64 = 4096;
/// How long a client may take to send its trigger.
pub const TRIGGER_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads one trigger from a connection, bounded in size. `Ok(None)` when the peer
/// closed without sending anything (a liveness probe).
pub fn read_trigger<R: Read>(r: R) -> Result<Option<Trigger>, FrameError> {
    match read_message(&mut r.take(MAX_TRIGGER)) {
        Ok(t) => Ok(Some(t)),
        Err(FrameError::Closed) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Set by the listener when it passes a wakeup to the main loop, cleared by the main
/// loop when it starts a scan of incoming/. Every smtpd sends a wakeup per message;
/// while one is pending, more add nothing (the coming scan sees their files), so they
/// are dropped here instead of waking the main loop once each: under load that thread
/// waits for a CPU at every wakeup.
#[derive(Debug, Clone, Default)]
pub struct WakePending(Arc<AtomicBool>);

impl WakePending {
    /// Marks a wakeup pending; true if one already was.
    fn set(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }

    /// Called as a scan of incoming/ begins: a wakeup after this starts another scan.
    pub fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Starts the listener thread for one inherited socket.
pub fn spawn_listener(fd: OwnedFd, tx: Sender<Event>, pending: WakePending) -> std::io::Result<()> {
    let listener = UnixListener::from(fd);
    // master may hand the socket over non-blocking; this thread wants to block in accept.
    listener.set_nonblocking(false)?;
    std::thread::Builder::new()
        .name("trigger".into())
        .spawn(move || accept_loop(listener, tx, pending))?;
    Ok(())
}

fn accept_loop(listener: UnixListener, tx: Sender<Event>, pending: WakePending) {
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("trigger socket: accept: {e}");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        if let Err(e) = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_read_timeout(Some(TRIGGER_TIMEOUT)))
        {
            log::warn!("trigger socket: {e}");
            continue;
        }
        match read_trigger(&stream) {
            Ok(Some(Trigger::Wakeup)) if pending.set() => {}
            Ok(Some(t)) => {
                if tx.send(Event::Trigger(t)).is_err() {
                    return; // the main loop is gone
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!("trigger socket: bad trigger dropped: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::write_message;

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

    #[test]
    fn listener_forwards_triggers() {
        let dir = std::env::temp_dir().join(format!("qmgr-trig-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("qmgr");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("bind");
        let (tx, rx) = std::sync::mpsc::channel();
        let pending = WakePending::default();
        spawn_listener(OwnedFd::from(l), tx, pending.clone()).expect("spawn");
        // Three wakeups before any scan: one reaches the main loop.
        for _ in 0..3 {
            let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
            write_message(&mut s, &Trigger::Wakeup).expect("write");
        }
        // Garbage first: dropped, and the listener keeps serving.
        let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        std::io::Write::write_all(&mut s, b"\x00\x00\x00\x02{x").expect("write");
        drop(s);
        let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        write_message(&mut s, &Trigger::Flush).expect("write");
        drop(s);
        let mut got = Vec::new();
        while let Ok(Event::Trigger(t)) = rx.recv_timeout(Duration::from_secs(2)) {
            got.push(t);
            if got.last() == Some(&Trigger::Flush) {
                break;
            }
        }
        assert_eq!(got, [Trigger::Wakeup, Trigger::Flush]);
        // A scan began: the next wakeup goes through again.
        pending.clear();
        let mut s = std::os::unix::net::UnixStream::connect(&path).expect("connect");
        write_message(&mut s, &Trigger::Wakeup).expect("write");
        drop(s);
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::Trigger(t)) => assert_eq!(t, Trigger::Wakeup),
            other => panic!("unexpected {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
