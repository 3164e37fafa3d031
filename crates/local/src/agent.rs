//! One delivery request from qmgr: read the queue file, deliver each recipient, mark
//! the delivered ones done in the queue file BEFORE answering (a crash after delivery
//! must not deliver again), log each recipient Postfix-style, and build the reply.

use crate::deliver::{deliver_recipient, Message, Settings, UserInfo};
use crate::failure::Failure;
use crate::logline::DeliveryLog;
use rostfix_proto::{DeliveryReply, DeliveryRequest, DeliveryStatus, RecipientResult};
use rostfix_queue::{is_valid_queue_id, QueueFile, QueueName};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The relay name in replies and log lines.
pub const RELAY: &str = "local";

/// Handles `req` against the queue under `queue_root` ("." after confine). `received`
/// is when the request arrived, for the `delays=a/...` part of the log line.
pub fn handle_request<L>(
    settings: &Settings,
    req: &DeliveryRequest,
    queue_root: &Path,
    lookup: L,
    received: SystemTime,
) -> DeliveryReply
where
    L: Fn(&str) -> Result<Option<UserInfo>, String>,
{
    let arrival = UNIX_EPOCH + Duration::from_secs(req.arrival.max(0) as u64);
    let before = received.duration_since(arrival).unwrap_or_default();
    let content = match read_message(req, queue_root) {
        Ok(file_and_content) => file_and_content,
        Err(f) => {
            log::warn!("{}: {}", req.queue_id, f.text);
            let results = req
                .recipients
                .iter()
                .map(|r| {
                    log_result(
                        req,
                        &r.address,
                        &r.orig_address,
                        &f,
                        arrival,
                        before,
                        Duration::ZERO,
                        "deferred",
                    );
                    result(r.offset, DeliveryStatus::Deferred, &f)
                })
                .collect();
            return DeliveryReply { results };
        }
    };
    let (qf, content) = content;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let msg = Message {
        sender: &req.sender,
        content: &content,
        now,
    };
    let mut results = Vec::with_capacity(req.recipients.len());
    for r in &req.recipients {
        let start = Instant::now();
        let outcome = deliver_recipient(settings, msg, &r.address, &lookup);
        let took = start.elapsed();
        let (status, f) = match outcome {
            Ok(text) => {
                if let Err(e) = QueueFile::mark_done(&qf.path, r.offset) {
                    // The mail is in the mailbox: report it sent anyway. Deferring would
                    // deliver it twice; at worst a crash of qmgr before it removes the
                    // file repeats this one delivery.
                    log::warn!(
                        "{}: cannot mark recipient {} done: {e}",
                        req.queue_id,
                        r.address
                    );
                }
                (
                    DeliveryStatus::Sent,
                    Failure {
                        permanent: false,
                        dsn: "2.0.0",
                        text: text.to_string(),
                    },
                )
            }
            Err(f) if f.permanent => (DeliveryStatus::Bounced, f),
            Err(f) => (DeliveryStatus::Deferred, f),
        };
        let word = match status {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Bounced => "bounced",
            DeliveryStatus::Deferred => "deferred",
        };
        log_result(
            req,
            &r.address,
            &r.orig_address,
            &f,
            arrival,
            before,
            took,
            word,
        );
        results.push(result(r.offset, status, &f));
    }
    DeliveryReply { results }
}

/// Opens the queue file named by the request and reads its content. Any problem is a
/// temporary failure (4.3.0) for every recipient: qmgr will look at the file again.
fn read_message(req: &DeliveryRequest, root: &Path) -> Result<(QueueFile, Vec<u8>), Failure> {
    let queue = QueueName::parse(&req.queue_name).ok_or_else(|| {
        Failure::defer(
            "4.3.0",
            format!("bad queue name in request: {:?}", req.queue_name),
        )
    })?;
    // Checked here too, not only by the queue crate: the id becomes a path component.
    if req.queue_id.contains('/') || !is_valid_queue_id(&req.queue_id) {
        return Err(Failure::defer(
            "4.3.0",
            format!("bad queue id in request: {:?}", req.queue_id),
        ));
    }
    let qf = QueueFile::open(root, queue, &req.queue_id)
        .map_err(|e| Failure::defer("4.3.0", format!("cannot read queue file: {e}")))?;
    let content = qf
        .read_content()
        .map_err(|e| Failure::defer("4.3.0", format!("cannot read message content: {e}")))?;
    Ok((qf, content))
}

fn result(offset: u64, status: DeliveryStatus, f: &Failure) -> RecipientResult {
    RecipientResult {
        offset,
        status,
        dsn: f.dsn.to_string(),
        text: f.text.clone(),
        relay: RELAY.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn log_result(
    req: &DeliveryRequest,
    to: &str,
    orig_to: &str,
    f: &Failure,
    arrival: SystemTime,
    before: Duration,
    delivery: Duration,
    status: &str,
) {
    let total = SystemTime::now()
        .duration_since(arrival)
        .unwrap_or_default();
    let line = DeliveryLog {
        queue_id: &req.queue_id,
        to,
        orig_to,
        relay: RELAY,
        total,
        before,
        delivery,
        dsn: f.dsn,
        status,
        text: &f.text,
    }
    .line();
    log::info!("{line}");
}
