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

/// Sends a delivery request to `private/TRANSPORT` and waits for the reply.
pub fn deliver(
    path: &Path,
    req: &DeliveryRequest,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> Result<DeliveryReply, CallError> {
    call(path, req, connect_timeout, io_timeout)
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
            queue_name: "active".into(),
            queue_id: "ABCDEF".into(),
            sender: "a@b".into(),
            nexthop: "h".into(),
            arrival: 0,
            recipients: vec![rostfix_proto::DeliveryRecipient {
                offset: 7,
                address: "x@y".into(),
                orig_address: "x@y".into(),
            }],
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
                    dsn: "2.0.0".into(),
                    text: "ok".into(),
                    relay: "local".into(),
                    notify_sender: None,
                })
                .collect();
            write_message(&mut s, &DeliveryReply { results }).expect("reply");
        });
        let reply = deliver(
            &path,
            &request(),
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
        .expect("reply");
        agent.join().expect("agent thread");
        assert_eq!(reply.results.len(), 1);
        assert_eq!(reply.results[0].offset, 7);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_socket_is_a_connect_error() {
        let r = deliver(
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
        let r = deliver(
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
}
