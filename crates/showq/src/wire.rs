//! Both ends of the showq exchange (docs/ipc.md; its types, rostfix_proto's
//! ShowqRecord, live with the other IPC messages): the client connects to
//! `public/showq` and sends nothing; showq answers with one length-framed JSON record
//! per queued message, then one `End` record carrying the scan's warnings, and closes.
//! The client formats the listing itself (mailq text or JSON lines), so both formats
//! come from one service.
//!
//! Every read is bounded: frames by rostfix-proto's MAX_FRAME, the record count by
//! [`MAX_RECORDS`], time by the socket timeout the caller gives.

use crate::scan::{Listed, ListedRecipient};
use rostfix_proto::{
    read_message, write_message, FrameError, ShowqMessage, ShowqRecipient, ShowqRecord,
};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// More messages than any queue this suite can hold in practice; a peer sending more is
/// broken or hostile.
pub const MAX_RECORDS: usize = 10_000_000;

/// Why the listing could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum ShowqError {
    #[error("connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("read from showq service: {0}")]
    Read(#[from] FrameError),
    #[error("showq service sent more than {MAX_RECORDS} records")]
    TooMany,
}

impl From<&Listed> for ShowqMessage {
    fn from(m: &Listed) -> ShowqMessage {
        ShowqMessage {
            queue_name: m.queue,
            queue_id: m.id.clone(),
            arrival_time: m.arrival,
            message_size: m.size,
            forced_expire: m.forced_expire,
            sender: m.sender.clone(),
            recipients: m
                .recipients
                .iter()
                .map(|r| ShowqRecipient {
                    address: r.address.clone(),
                    orig_address: r.orig_address.clone(),
                    delay_reason: r.reason.clone(),
                })
                .collect(),
        }
    }
}

impl From<ShowqMessage> for Listed {
    fn from(m: ShowqMessage) -> Listed {
        Listed {
            queue: m.queue_name,
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
        }
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
        write_message(&mut w, &ShowqRecord::Message(ShowqMessage::from(m)))?;
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
                out.push(Listed::from(m));
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
    use rostfix_queue::QueueName;

    fn sample() -> Listed {
        Listed {
            queue: QueueName::Deferred,
            id: "ABCDEF1".parse().unwrap(),
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
        let json = serde_json::to_string(&ShowqRecord::Message(ShowqMessage::from(&sample())))
            .unwrap()
            .replace("\"deferred\"", "\"../etc\"");
        rostfix_proto::write_frame(&mut bad, json.as_bytes()).unwrap();
        assert!(matches!(
            read_listing(&mut &bad[..]),
            Err(ShowqError::Read(FrameError::Malformed(_)))
        ));
    }
}
