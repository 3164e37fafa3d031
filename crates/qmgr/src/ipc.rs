//! Blocking client calls to other services over their unix sockets, each bounded in time
//! (connect, write and read timeouts) and size (replies are read through a byte cap).
//! Used from worker threads only, never from the main loop.

use rostfix_proto::{
    read_message, write_message, BounceReply, BounceRequest, DeliveryReply, DeliveryRequest,
    FrameError,
};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The largest reply accepted from a delivery agent or the bounce service.
const MAX_REPLY: u64 = 4 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("connect to {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Exchange { path: String, source: FrameError },
    /// The group commit this message was part of failed: the first message's error,
    /// as text (crate::group_commit).
    #[error("{0}")]
    Batched(String),
}

/// Connects and sets the read/write timeout for the exchange that follows.
fn open(
    path: &Path,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> Result<UnixStream, CallError> {
    let err = |source| CallError::Connect {
        path: path.display().to_string(),
        source,
    };
    let stream = rostfix_proto::connect_unix(path, connect_timeout)
        .map_err(|e| err(std::io::Error::other(e)))?;
    stream.set_read_timeout(Some(io_timeout)).map_err(err)?;
    stream.set_write_timeout(Some(io_timeout)).map_err(err)?;
    Ok(stream)
}

/// One request, one reply, on a fresh connection: every service exchange qmgr makes.
fn call<Req: serde::Serialize, Rep: serde::de::DeserializeOwned>(
    path: &Path,
    req: &Req,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> Result<Rep, CallError> {
    let mut stream = open(path, connect_timeout, io_timeout)?;
    let err = |source| CallError::Exchange {
        path: path.display().to_string(),
        source,
    };
    write_message(&mut stream, req).map_err(err)?;
    read_message(&mut (&stream).take(MAX_REPLY)).map_err(err)
}

/// Whether a stream kept from an earlier delivery is still open and quiet: the agent
/// never writes unprompted, so readable data or end-of-file both mean "do not reuse".
fn still_open(stream: &UnixStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let quiet = matches!(
        (&*stream).read(&mut byte),
        Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    stream.set_nonblocking(false).is_ok() && quiet
}

/// A delivery request on `kept` (a stream the same agent offered to keep open for
/// this destination) when it is still open, else on a fresh connection to
/// `private/TRANSPORT`. Returns the reply and, when the agent offers again, the
/// stream for the next request to the same destination.
pub fn deliver_on(
    kept: Option<UnixStream>,
    path: &Path,
    req: &DeliveryRequest,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> (Result<DeliveryReply, CallError>, Option<UnixStream>) {
    let stream = match kept.filter(still_open) {
        Some(s) => s,
        None => match open(path, connect_timeout, io_timeout) {
            Ok(s) => s,
            Err(e) => return (Err(e), None),
        },
    };
    let err = |source| CallError::Exchange {
        path: path.display().to_string(),
        source,
    };
    let mut stream = stream;
    if let Err(e) = write_message(&mut stream, req) {
        return (Err(err(e)), None);
    }
    match read_message::<_, DeliveryReply>(&mut (&stream).take(MAX_REPLY)) {
        Ok(reply) if reply.keep_open => (Ok(reply), Some(stream)),
        Ok(reply) => (Ok(reply), None),
        Err(e) => (Err(err(e)), None),
    }
}

/// Asks `private/bounce` for a non-delivery notice.
pub fn bounce(
    path: &Path,
    req: &BounceRequest,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> Result<BounceReply, CallError> {
    call(path, req, connect_timeout, io_timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::{DeliveryStatus, RecipientResult};
    use std::os::unix::net::UnixListener;

    fn request() -> DeliveryRequest {
        DeliveryRequest {
            queue_name: rostfix_proto::QueueName::Active,
            queue_id: "ABCDEF".parse().unwrap(),
            sender: "a@b".into(),
            nexthop: "h".into(),
            arrival: 0,
            recipients: vec![rostfix_proto::DeliveryRecipient {
                offset: 7,
                address: "x@y".into(),
                orig_address: "x@y".into(),
            }],
            activated: None,
            probe: false,
            shaping: None,
            group: None,
        }
    }

    #[test]
    fn deliver_round_trip_over_a_real_socket() {
        let dir = std::env::temp_dir().join(format!("qmgr-ipc-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("local");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind test socket");
        let agent = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            let req: DeliveryRequest = read_message(&mut s).expect("request");
            let results = req
                .recipients
                .iter()
                .map(|r| RecipientResult {
                    offset: r.offset,
                    status: DeliveryStatus::Sent,
                    dsn: "2.0.0".parse().unwrap(),
                    text: "ok".into(),
                    relay: "local".into(),
                    notify_sender: None,
                })
                .collect();
            write_message(&mut s, &DeliveryReply::new(results)).expect("reply");
        });
        let (reply, kept) = deliver_on(
            None,
            &path,
            &request(),
            Duration::from_secs(5),
            Duration::from_secs(5),
        );
        let reply = reply.expect("reply");
        assert!(kept.is_none(), "a one-shot agent's stream is not kept");
        agent.join().expect("agent thread");
        assert_eq!(reply.results.len(), 1);
        assert_eq!(reply.results[0].offset, 7);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_socket_is_a_connect_error() {
        let (r, _) = deliver_on(
            None,
            Path::new("/nonexistent/private/smtp"),
            &request(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert!(matches!(r, Err(CallError::Connect { .. })));
    }

    #[test]
    fn silent_agent_times_out() {
        let dir = std::env::temp_dir().join(format!("qmgr-ipc-slow-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("slow");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind test socket");
        let start = std::time::Instant::now();
        let (r, _) = deliver_on(
            None,
            &path,
            &request(),
            Duration::from_secs(1),
            Duration::from_millis(200),
        );
        assert!(matches!(r, Err(CallError::Exchange { .. })));
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(listener);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn sent(req: &DeliveryRequest) -> Vec<RecipientResult> {
        req.recipients
            .iter()
            .map(|r| RecipientResult {
                offset: r.offset,
                status: DeliveryStatus::Sent,
                dsn: "2.0.0".parse().unwrap(),
                text: "ok".into(),
                relay: "smtp".into(),
                notify_sender: None,
            })
            .collect()
    }

    #[test]
    fn a_kept_stream_carries_the_next_request_and_a_closed_one_is_replaced() {
        let dir = std::env::temp_dir().join(format!("qmgr-ipc-keep-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("smtp");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind test socket");
        // The agent: first connection serves two requests then closes; the second
        // connection serves one. It counts connections.
        let agent = std::thread::spawn(move || {
            let mut connections = 0;
            for served in [2, 1] {
                let (mut s, _) = listener.accept().expect("accept");
                connections += 1;
                for _ in 0..served {
                    let req: DeliveryRequest = read_message(&mut s).expect("request");
                    let mut reply = DeliveryReply::new(sent(&req));
                    reply.keep_open = true;
                    write_message(&mut s, &reply).expect("reply");
                }
            }
            connections
        });
        let t = Duration::from_secs(5);
        let (r1, kept) = deliver_on(None, &path, &request(), t, t);
        assert!(r1.is_ok() && kept.is_some());
        let (r2, kept) = deliver_on(kept, &path, &request(), t, t);
        assert!(r2.is_ok(), "second request on the kept stream");
        // The agent closed that stream after two: give it a moment, then the kept
        // stream must be recognised as closed and a new connection made.
        std::thread::sleep(Duration::from_millis(100));
        let (r3, _) = deliver_on(kept, &path, &request(), t, t);
        assert!(r3.is_ok(), "third request on a new connection");
        assert_eq!(agent.join().expect("agent thread"), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
