//! The delivery agent's side of a kept stream: qmgr sends delivery requests one after
//! another on one connection; the agent answers each with `keep_open` set and reads
//! the next, until qmgr closes the stream (or goes quiet after a request). smtp, lmtp
//! and local serve their connections with [`serve_delivery_stream`]. Timeouts are the
//! caller's, set on the socket; each request is bounded by [`MAX_DELIVERY_REQUEST`].

use crate::frame::{read_message, write_message, FrameError};
use crate::messages::{DeliveryReply, DeliveryRequest};
use crate::names::QueueId;
use std::fmt;
use std::io::{Read, Write};

/// A delivery request is a few hundred bytes per recipient; 4 MiB is generous for 50
/// recipients and still bounds what a confused peer makes an agent read.
pub const MAX_DELIVERY_REQUEST: u64 = 4 * 1024 * 1024;

/// How a kept stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    /// qmgr closed it, or went quiet (a read error) after at least one request.
    Done,
    /// The first request could not be read.
    BadRequest(FrameError),
    /// The reply to `queue_id` could not be written (qmgr will retry the recipients it
    /// did not hear about; those delivered are marked done in the queue file).
    ReplyFailed {
        queue_id: QueueId,
        error: FrameError,
    },
}

impl fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamEnd::Done => write!(f, "stream closed by qmgr"),
            StreamEnd::BadRequest(e) => write!(f, "bad delivery request: {e}"),
            StreamEnd::ReplyFailed { queue_id, error } => {
                write!(f, "{queue_id}: cannot send reply to qmgr: {error}")
            }
        }
    }
}

/// Serves requests on `stream` with `deliver` until it ends; every reply goes out with
/// `keep_open`, so qmgr may send the next request on the same stream.
pub fn serve_delivery_stream<S, F>(stream: &mut S, mut deliver: F) -> StreamEnd
where
    S: Read + Write,
    F: FnMut(&DeliveryRequest) -> DeliveryReply,
{
    let mut served = 0u32;
    loop {
        let request: DeliveryRequest =
            match read_message(&mut Read::by_ref(stream).take(MAX_DELIVERY_REQUEST)) {
                Ok(r) => r,
                Err(FrameError::Closed) => return StreamEnd::Done,
                // Waiting for a further request and qmgr went quiet: the end of the stream.
                Err(_) if served > 0 => return StreamEnd::Done,
                Err(e) => return StreamEnd::BadRequest(e),
            };
        let mut reply = deliver(&request);
        reply.keep_open = true;
        if let Err(error) = write_message(stream, &reply) {
            return StreamEnd::ReplyFailed {
                queue_id: request.queue_id,
                error,
            };
        }
        served += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn request(id: &str) -> DeliveryRequest {
        DeliveryRequest {
            queue_name: crate::QueueName::Active,
            queue_id: QueueId::new(id).unwrap(),
            sender: String::new(),
            nexthop: "h".into(),
            arrival: 0,
            recipients: Vec::new(),
            activated: None,
            probe: false,
            shaping: None,
            group: None,
        }
    }

    #[test]
    fn serves_every_request_until_closed_with_keep_open() {
        let (mut qmgr, mut agent) = UnixStream::pair().unwrap();
        for id in ["AAAAA1", "AAAAA2", "AAAAA3"] {
            write_message(&mut qmgr, &request(id)).unwrap();
        }
        qmgr.shutdown(std::net::Shutdown::Write).unwrap();
        let mut seen = Vec::new();
        let end = serve_delivery_stream(&mut agent, |r| {
            seen.push(r.queue_id.to_string());
            DeliveryReply::new(Vec::new())
        });
        assert!(matches!(end, StreamEnd::Done));
        assert_eq!(seen, ["AAAAA1", "AAAAA2", "AAAAA3"]);
        for _ in 0..3 {
            let reply: DeliveryReply = read_message(&mut qmgr).unwrap();
            assert!(reply.keep_open);
        }
    }

    #[test]
    fn a_bad_first_request_is_reported_and_an_oversized_one_refused() {
        let (mut qmgr, mut agent) = UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut qmgr, b"\x00\x00\x00\x02{x").unwrap();
        qmgr.shutdown(std::net::Shutdown::Write).unwrap();
        let end = serve_delivery_stream(&mut agent, |_| unreachable!("no request"));
        assert!(matches!(end, StreamEnd::BadRequest(_)), "{end}");

        let (mut qmgr, mut agent) = UnixStream::pair().unwrap();
        let big = (MAX_DELIVERY_REQUEST as u32 + 1).to_be_bytes();
        std::io::Write::write_all(&mut qmgr, &big).unwrap();
        qmgr.shutdown(std::net::Shutdown::Write).unwrap();
        let end = serve_delivery_stream(&mut agent, |_| unreachable!("no request"));
        assert!(matches!(end, StreamEnd::BadRequest(_)), "{end}");
    }
}
