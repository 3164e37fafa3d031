//! The showq wire format (docs/ipc.md): the client connects to `public/showq` and sends
//! nothing; showq answers with one length-framed JSON record per queued message, then
//! one `End` record carrying the scan's warnings, and closes. The client formats the
//! listing itself (mailq text or JSON lines), so both formats come from one service.
//!
//! Every read is bounded: frames by rostfix-proto's MAX_FRAME, the record count by
//! [`MAX_RECORDS`], time by the socket timeout the caller gives.

use crate::scan::{Listed, ListedRecipient};
use rostfix_proto::{read_message, write_message, FrameError};
use rostfix_queue::QueueName;
use serde::{Deserialize, Serialize};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// More messages than any queue this suite can hold in practice; a peer sending more is
/// broken or hostile.
pub const MAX_RECORDS: usize = 10_000_000;

/// One record on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShowqRecord {
    Message(WireMessage),
    End { warnings: Vec<String> },
}

/// A listed message, field names as in postqueue -j.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage {
    pub queue_name: String,
    pub queue_id: String,
    pub arrival_time: i64,
    pub message_size: u64,
    pub forced_expire: bool,
    pub sender: String,
    pub recipients: Vec<WireRecipient>,
}

/// A pending recipient on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRecipient {
    pub address: String,
    pub orig_address: String,
    pub delay_reason: Option<String>,
}

/// Why the listing could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum ShowqError {
    #[error("connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("read from showq service: {0}")]
    Read(#[from] FrameError),
    #[error("showq service sent a message in an unknown queue: {0}")]
    BadQueue(String),
    #[error("showq service sent more than {MAX_RECORDS} records")]
    TooMany,
}

impl From<&Listed> for WireMessage {
    fn from(m: &Listed) -> WireMessage {
        WireMessage {
            queue_name: m.queue.as_str().to_string(),
            queue_id: m.id.clone(),
            arrival_time: m.arrival,
            message_size: m.size,
            forced_expire: m.forced_expire,
            sender: m.sender.clone(),
            recipients: m
                .recipients
                .iter()
                .map(|r| WireRecipient {
                    address: r.address.clone(),
                    orig_address: r.orig_address.clone(),
                    delay_reason: r.reason.clone(),
                })
                .collect(),
        }
    }
}

impl TryFrom<WireMessage> for Listed {
    type Error = ShowqError;
    fn try_from(m: WireMessage) -> Result<Listed, ShowqError> {
        let queue = QueueName::parse(&m.queue_name).ok_or(ShowqError::BadQueue(m.queue_name))?;
        Ok(Listed {
            queue,
            id: m.queue_id,
            arrival: m.arrival_time,
            size: m.message_size,
            sender: m.sender,
            forced_expire: m.forced_expire,
            recipients: m
                .recipients
                .into_iter()
                .map(|r| ListedRecipient {
                    address: r.address,
                    orig_address: r.orig_address,
                    reason: r.delay_reason,
                })
                .collect(),
        })
    }
}

/// Server side: writes the listing and the end record.
pub fn send_listing<W: Write>(
    out: &mut W,
    messages: &[Listed],
    warnings: &[String],
) -> Result<(), FrameError> {
    let mut w = BufWriter::new(out);
    for m in messages {
        write_message(&mut w, &ShowqRecord::Message(WireMessage::from(m)))?;
    }
    write_message(
        &mut w,
        &ShowqRecord::End {
            warnings: warnings.to_vec(),
        },
    )?;
    w.flush().map_err(FrameError::from)
}

/// Reads records until `End`; returns the messages and the warnings.
pub fn read_listing<R: std::io::Read>(r: &mut R) -> Result<(Vec<Listed>, Vec<String>), ShowqError> {
    let mut out = Vec::new();
    loop {
        match read_message::<_, ShowqRecord>(r)? {
            ShowqRecord::Message(m) => {
                if out.len() >= MAX_RECORDS {
                    return Err(ShowqError::TooMany);
                }
                out.push(Listed::try_from(m)?);
            }
            ShowqRecord::End { warnings } => return Ok((out, warnings)),
        }
    }
}

/// Client side: connects to `socket` and reads the listing, each read within `timeout`.
pub fn fetch(socket: &Path, timeout: Duration) -> Result<(Vec<Listed>, Vec<String>), ShowqError> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| ShowqError::Connect(socket.display().to_string(), e))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| ShowqError::Connect(socket.display().to_string(), e))?;
    read_listing(&mut BufReader::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Listed {
        Listed {
            queue: QueueName::Deferred,
            id: "ABCDEF1".into(),
            arrival: 1_606_123_512,
            size: 42,
            sender: "s@x".into(),
            forced_expire: true,
            recipients: vec![ListedRecipient {
                address: "r@x".into(),
                orig_address: "R@x".into(),
                reason: Some("later".into()),
            }],
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        send_listing(&mut buf, &[sample(), sample()], &["w1".into()]).unwrap();
        let (msgs, warnings) = read_listing(&mut &buf[..]).unwrap();
        assert_eq!(msgs, vec![sample(), sample()]);
        assert_eq!(warnings, vec!["w1"]);
    }

    #[test]
    fn truncated_or_bad_queue_is_an_error() {
        let mut buf = Vec::new();
        send_listing(&mut buf, &[sample()], &[]).unwrap();
        assert!(read_listing(&mut &buf[..buf.len() - 3]).is_err());
        let mut bad = Vec::new();
        let mut m = WireMessage::from(&sample());
        m.queue_name = "../etc".into();
        write_message(&mut bad, &ShowqRecord::Message(m)).unwrap();
        assert!(matches!(
            read_listing(&mut &bad[..]),
            Err(ShowqError::BadQueue(_))
        ));
    }
}
