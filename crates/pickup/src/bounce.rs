//! Asking the bounce service (`private/bounce`) for a non-delivery notice to the sender
//! of a locally submitted message that content inspection rejected: Postfix's cleanup
//! bounces non-SMTP mail it rejects, since there is no client to answer. The message
//! is in hold/ while the bounce service reads it.

use rostfix_proto::{
    read_message, write_message, BounceReply, BounceRequest, BouncedRecipient, DeliveryStatus, Dsn,
    NoticeKind, QueueName, BOUNCE_SOCKET,
};
use rostfix_queue::Envelope;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// How long to wait to connect, and for each read or write.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The largest reply read.
const MAX_REPLY: u64 = 64 * 1024;

/// Why no notice could be had.
#[derive(Debug, thiserror::Error)]
pub enum BounceError {
    #[error("bad queue id {0}")]
    QueueId(String),
    #[error("connect to {BOUNCE_SOCKET}: {0}")]
    Connect(String),
    #[error("{BOUNCE_SOCKET}: {0}")]
    Exchange(#[from] rostfix_proto::FrameError),
    #[error("{BOUNCE_SOCKET}: {0}")]
    Io(#[from] std::io::Error),
    #[error("bounce service: {0}")]
    Refused(String),
}

/// Requests a notice for every recipient of `hold/ID`, with `dsn text` as the reason.
/// Ok(Some(id)) names the notice; Ok(None): none was due (null sender).
pub fn request(
    root: &Path,
    id: &str,
    envelope: &Envelope,
    dsn: &str,
    text: &str,
) -> Result<Option<String>, BounceError> {
    let queue_id = id
        .parse()
        .map_err(|_| BounceError::QueueId(id.to_string()))?;
    let req = BounceRequest {
        queue_name: QueueName::Hold,
        queue_id,
        sender: envelope.sender.clone(),
        arrival: envelope.arrival_us / 1_000_000,
        recipients: envelope
            .recipients
            .iter()
            .map(|r| BouncedRecipient {
                address: r.address.clone(),
                orig_address: r.orig_address.clone(),
                dsn: Dsn::or_class(dsn, DeliveryStatus::Bounced),
                text: format!("{dsn} {text}"),
                relay: "none".into(),
                notify: r.notify.clone(),
                action: String::new(),
            })
            .collect(),
        kind: NoticeKind::Failure,
    };
    let mut stream = rostfix_proto::connect_unix(&root.join(BOUNCE_SOCKET), TIMEOUT)
        .map_err(|e| BounceError::Connect(e.to_string()))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write_message(&mut stream, &req)?;
    match read_message::<_, BounceReply>(&mut (&stream).take(MAX_REPLY))? {
        BounceReply::Queued(notice) => Ok(Some(notice)),
        BounceReply::NotNeeded => Ok(None),
        BounceReply::Failed(why) => Err(BounceError::Refused(why)),
    }
}
