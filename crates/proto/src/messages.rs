//! The typed messages, one module section per service socket.

use crate::names::{Dsn, QueueId, QueueName};
use serde::{Deserialize, Serialize};

/// Sent to trigger services (`public/qmgr`, `public/pickup`): one frame, then close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trigger {
    /// New work may be waiting (a file in incoming/ or maildrop/), or a timer wake-up.
    Wakeup,
    /// Scan deferred/ now, ignoring retry times (`rostqueue -f`, `rostfix flush`).
    Flush,
    /// Deliver this queue id now, ignoring its retry time (`rostqueue -i ID`).
    FlushId(String),
    /// Deliver the deferred mail for this destination now (`rostqueue -s SITE`): the
    /// messages with a pending recipient whose domain or next hop is SITE, and forget
    /// that the destination was marked dead.
    FlushSite(String),
}

/// qmgr -> delivery agent (`private/local`, `private/smtp`, ...): deliver these
/// recipients of one queue file. The agent reads the content from the queue file itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRequest {
    /// Queue directory relative to queue_directory, normally "active" on the wire.
    pub queue_name: QueueName,
    /// Checked when decoded: a request naming anything else is refused.
    pub queue_id: QueueId,
    /// Envelope sender; empty for the null sender `<>`.
    pub sender: String,
    /// Next hop chosen by the resolver: for local, `$myhostname`; for smtp, a domain or
    /// `[host]:port`.
    pub nexthop: String,
    /// Arrival time, seconds since the epoch, for `delay=` in log lines.
    pub arrival: i64,
    pub recipients: Vec<DeliveryRecipient>,
    /// When qmgr took the message into the active queue, microseconds since the
    /// epoch: splits `delays=a/b/...` into time before qmgr (a) and time in
    /// qmgr (b). Absent from older senders: then b is 0 and a takes it all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated: Option<i64>,
    /// An address verification probe (the queue file's `verify_probe` attribute):
    /// the agent finds out whether each recipient would be accepted and delivers
    /// nothing (smtp/lmtp: MAIL and RCPT, then RSET; local and the others: accept).
    /// Absent (false) from older senders.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
    /// The traffic-shaping bucket qmgr counted this delivery in (docs/bulk-sending.md,
    /// "Traffic shaping per provider"). Absent (None) when unshaped or from older
    /// senders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shaping: Option<ShapingHint>,
    /// A group commit (docs/ipc.md, "Group commit"): qmgr, not the agent, records the
    /// done marks of the Sent recipients, after the reply, with one sync for all the
    /// messages of the request; `more` holds further messages for the same destination
    /// (local: the same recipient). Absent from older senders and for other agents:
    /// then the agent marks each Sent recipient done itself before replying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupCommit>,
}

/// The group-commit part of a [`DeliveryRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCommit {
    /// The message named at the top of the request was deferred before (see
    /// [`BatchedMessage::retry`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry: bool,
    /// Further messages, delivered after the one named at the top and answered in
    /// [`DeliveryReply::more`] in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<BatchedMessage>,
}

/// One further message of a group commit: the per-message fields of a
/// [`DeliveryRequest`] (nexthop and shaping are the request's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchedMessage {
    pub queue_name: QueueName,
    pub queue_id: QueueId,
    pub sender: String,
    pub arrival: i64,
    pub recipients: Vec<DeliveryRecipient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
    /// The message was deferred before: an earlier attempt may have stored it without
    /// its done mark being recorded (an agent killed before its reply), so the agent
    /// also looks for that copy among the mailbox's read messages (Maildir `cur/`),
    /// not only in `new/`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry: bool,
}

/// The results of one further message of a group commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchedResults {
    /// The message's queue id, as requested (a check: results go by position).
    pub queue_id: QueueId,
    pub results: Vec<RecipientResult>,
}

/// What the smtp client must know of a delivery's shaping bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapingHint {
    /// The bucket's name, for the log.
    pub bucket: String,
    /// Messages per connection: a cached session that has carried this many is
    /// closed instead of reused; 0 = smtp_connection_reuse_count_limit.
    pub reuse_count_limit: u32,
}

impl DeliveryRequest {
    /// True when qmgr records the done marks (a group commit).
    pub fn is_group_commit(&self) -> bool {
        self.group.is_some()
    }

    /// The request cut into one request per message: the message at the top, then
    /// each of `group.more`, every one without further messages (their `group` keeps
    /// only its `retry` flag, so each still counts as a group commit).
    pub fn messages(&self) -> Vec<DeliveryRequest> {
        let Some(group) = &self.group else {
            return vec![self.clone()];
        };
        let head = DeliveryRequest {
            group: Some(GroupCommit {
                retry: group.retry,
                more: Vec::new(),
            }),
            ..self.clone()
        };
        let mut out = Vec::with_capacity(1 + group.more.len());
        out.push(head);
        for m in &group.more {
            out.push(DeliveryRequest {
                queue_name: m.queue_name,
                queue_id: m.queue_id.clone(),
                sender: m.sender.clone(),
                nexthop: self.nexthop.clone(),
                arrival: m.arrival,
                recipients: m.recipients.clone(),
                activated: m.activated,
                probe: m.probe,
                shaping: self.shaping.clone(),
                group: Some(GroupCommit {
                    retry: m.retry,
                    more: Vec::new(),
                }),
            });
        }
        out
    }

    /// `(a, b)` of Postfix's delays=a/b/c/d, given `before` = seconds from arrival to
    /// the agent's receipt of this request: a = arrival to activation, b = the rest.
    pub fn split_before(&self, before: f64) -> (f64, f64) {
        match self.activated {
            Some(us) => {
                let a = (us as f64 / 1e6 - self.arrival as f64).clamp(0.0, before.max(0.0));
                (a, (before - a).max(0.0))
            }
            None => (before, 0.0),
        }
    }
}

/// One recipient in a [`DeliveryRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecipient {
    /// Byte offset of this recipient's record in the queue file: the agent marks it done
    /// there (see rostfix_queue::QueueFile::mark_done) before answering.
    pub offset: u64,
    pub address: String,
    /// The address as originally received (before aliasing); may equal `address`.
    pub orig_address: String,
}

/// Final or temporary outcome for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryStatus {
    /// Delivered; the agent already marked the recipient done in the queue file.
    Sent,
    /// Temporary failure: qmgr keeps the recipient and retries later.
    Deferred,
    /// Permanent failure: qmgr asks bounce for a notice, then marks the recipient done.
    Bounced,
}

impl DeliveryStatus {
    /// The status word of Postfix's delivery log line.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Deferred => "deferred",
            DeliveryStatus::Bounced => "bounced",
        }
    }
}

/// Delivery agent -> qmgr: one result per requested recipient, same order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReply {
    pub results: Vec<RecipientResult>,
    /// The agent keeps this connection open for another request to the same transport
    /// and next hop (the smtp/lmtp agent, which keeps its SMTP session with it): qmgr
    /// may send the next request for that destination on it, so the session is reused
    /// without opening more connections than the destination's concurrency. Absent
    /// (false) from agents that answer one request per connection.
    #[serde(default)]
    pub keep_open: bool,
    /// What TLS the delivery used (`TLSv1.3 with cipher ...`), for qmgr's JSON
    /// delivery log; absent when plaintext or from agents that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Postfix's delays=a/b/c/d in milliseconds, as the agent measured them, for the
    /// JSON delivery log; absent from agents that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delays_ms: Option<[u64; 4]>,
    /// The results of a group commit's further messages (`group.more` of the
    /// request), in the same order; `results` above are the first message's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<BatchedResults>,
}

impl DeliveryReply {
    /// A reply from an agent that closes the connection after it (keep_open false).
    pub fn new(results: Vec<RecipientResult>) -> DeliveryReply {
        DeliveryReply {
            results,
            keep_open: false,
            tls: None,
            delays_ms: None,
            more: Vec::new(),
        }
    }

    /// One reply for the messages of a group commit, in request order (see
    /// [`DeliveryRequest::messages`]): the first one's results at the top, the others
    /// in `more`.
    pub fn merged(mut replies: Vec<(QueueId, DeliveryReply)>) -> DeliveryReply {
        if replies.is_empty() {
            return DeliveryReply::new(Vec::new());
        }
        let (_, mut head) = replies.remove(0);
        head.more = replies
            .into_iter()
            .map(|(queue_id, r)| BatchedResults {
                queue_id,
                results: r.results,
            })
            .collect();
        head
    }
}

/// Outcome for one recipient of a [`DeliveryRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientResult {
    pub offset: u64,
    pub status: DeliveryStatus,
    /// Enhanced status code, e.g. "2.0.0", "4.4.1", "5.1.1".
    pub dsn: Dsn,
    /// Human-readable text as logged in `status=... (text)`.
    pub text: String,
    /// Where it went: `local`, `mx.example.org[192.0.2.1]:25`, `none`.
    pub relay: String,
    /// For a bounced recipient: who gets the non-delivery notice instead of the
    /// envelope sender. local sets it to `owner-NAME@$myorigin` when the failed
    /// destination came from an alias with an owner (Postfix's bounce_workaround);
    /// absent otherwise, and absent in replies of older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_sender: Option<String>,
}

/// qmgr -> bounce (`private/bounce`): write a non-delivery notice to the sender of
/// `queue_id` for these recipients. The bounce service reads the original message from
/// `queue_name/queue_id` to attach its headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceRequest {
    pub queue_name: QueueName,
    pub queue_id: QueueId,
    /// The original envelope sender; empty for `<>` (then no notice is sent).
    pub sender: String,
    pub arrival: i64,
    pub recipients: Vec<BouncedRecipient>,
    /// Which notice: a non-delivery notice (the default, also for old senders), a delay
    /// warning, or a success notice (NOTIFY=SUCCESS).
    #[serde(default)]
    pub kind: NoticeKind,
}

/// The kinds of delivery status notification the bounce service writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeKind {
    /// Undeliverable: Action failed (RFC 3464).
    #[default]
    Failure,
    /// Still being retried after delay_warning_time: Action delayed.
    Delay,
    /// Delivered (Action delivered) or handed to a host that may not send DSNs
    /// (Action relayed), for recipients that asked with NOTIFY=SUCCESS.
    Success,
}

/// One failed recipient in a [`BounceRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BouncedRecipient {
    pub address: String,
    pub orig_address: String,
    pub dsn: Dsn,
    pub text: String,
    pub relay: String,
    /// The recipient's DSN NOTIFY value as received ("" = not given): the bounce
    /// service leaves out recipients that did not ask for this kind of notice.
    #[serde(default)]
    pub notify: String,
    /// For success notices: `delivered` (final delivery here) or `relayed`.
    #[serde(default)]
    pub action: String,
}

/// bounce -> qmgr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BounceReply {
    /// A notice was queued under this id (already durable in incoming/).
    Queued(String),
    /// No notice is due (null sender: a bounce is never bounced).
    NotNeeded,
    /// Could not write the notice now; qmgr keeps the recipients and retries.
    Failed(String),
}

/// showq -> client (`public/showq`): one record per queued message, then `End`. The
/// client sends nothing; showq closes after `End`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShowqRecord {
    Message(ShowqMessage),
    End { warnings: Vec<String> },
}

/// A listed message, field names as in postqueue -j.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowqMessage {
    pub queue_name: QueueName,
    pub queue_id: QueueId,
    pub arrival_time: i64,
    pub message_size: u64,
    pub forced_expire: bool,
    pub sender: String,
    pub recipients: Vec<ShowqRecipient>,
}

/// A pending recipient of a [`ShowqMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowqRecipient {
    pub address: String,
    pub orig_address: String,
    /// Why the last attempt failed, from defer/ID; null when unknown.
    pub delay_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FrameError;

    fn request() -> DeliveryRequest {
        DeliveryRequest {
            queue_name: QueueName::Active,
            queue_id: QueueId::new("3F2A81C0D4E").unwrap(),
            sender: "a@example.org".into(),
            nexthop: "h".into(),
            arrival: 100,
            recipients: vec![DeliveryRecipient {
                offset: 7,
                address: "b@example.org".into(),
                orig_address: "b@example.org".into(),
            }],
            activated: None,
            probe: false,
            shaping: None,
            group: None,
        }
    }

    /// `request()` encoded, with `field`'s value replaced by `bad`, then decoded.
    fn decode_with<T: serde::Serialize + serde::de::DeserializeOwned>(
        msg: &T,
        field: &str,
        bad: &str,
    ) -> Result<T, FrameError> {
        let mut v = serde_json::to_value(msg).unwrap();
        let mut slot = &mut v;
        for part in field.split('/') {
            slot = match part.parse::<usize>() {
                Ok(i) => &mut slot[i],
                Err(_) => &mut slot[part],
            };
        }
        *slot = serde_json::Value::String(bad.into());
        let mut frame = Vec::new();
        crate::write_frame(&mut frame, v.to_string().as_bytes()).unwrap();
        crate::read_message(&mut frame.as_slice())
    }

    #[test]
    fn a_delivery_request_with_a_bad_queue_id_or_name_is_refused_at_decode() {
        let good = request();
        assert_eq!(decode_with(&good, "queue_id", "3F2A81C0D4E").unwrap(), good);
        for (field, bad, says) in [
            ("queue_id", "../../etc/passwd", "invalid queue id"),
            ("queue_id", "tmp.12.3", "invalid queue id"),
            ("queue_id", "", "invalid queue id"),
            ("queue_name", "../active", "unknown variant"),
            ("queue_name", "Active", "unknown variant"),
        ] {
            match decode_with(&good, field, bad) {
                Err(FrameError::Malformed(e)) => assert!(e.to_string().contains(says), "{e}"),
                other => panic!("{field}={bad:?} decoded: {other:?}"),
            }
        }
    }

    #[test]
    fn replies_and_bounce_requests_with_a_bad_dsn_are_refused_at_decode() {
        let reply = DeliveryReply::new(vec![RecipientResult {
            offset: 7,
            status: DeliveryStatus::Bounced,
            dsn: Dsn::new("5.1.1").unwrap(),
            text: "unknown user".into(),
            relay: "local".into(),
            notify_sender: None,
        }]);
        assert_eq!(
            decode_with(&reply, "results/0/dsn", "5.1.1").unwrap(),
            reply
        );
        let e = decode_with(&reply, "results/0/dsn", "5.1").unwrap_err();
        assert!(
            e.to_string().contains("invalid enhanced status code"),
            "{e}"
        );

        let bounce = BounceRequest {
            queue_name: QueueName::Active,
            queue_id: QueueId::new("3F2A81C0D4E").unwrap(),
            sender: "a@example.org".into(),
            arrival: 0,
            recipients: vec![BouncedRecipient {
                address: "b@example.org".into(),
                orig_address: "b@example.org".into(),
                dsn: Dsn::new("5.1.1").unwrap(),
                text: "unknown user".into(),
                relay: "local".into(),
                notify: String::new(),
                action: String::new(),
            }],
            kind: NoticeKind::Failure,
        };
        assert_eq!(
            decode_with(&bounce, "queue_id", "3F2A81C0D4E").unwrap(),
            bounce
        );
        for (field, bad) in [
            ("recipients/0/dsn", "x.1.1"),
            ("queue_id", "a/b"),
            ("queue_name", "/etc"),
        ] {
            assert!(decode_with(&bounce, field, bad).is_err(), "{field}={bad:?}");
        }
    }

    #[test]
    fn split_before_parts() {
        let mut r = DeliveryRequest {
            queue_name: QueueName::Active,
            queue_id: QueueId::new("AAAAAA").unwrap(),
            sender: String::new(),
            nexthop: String::new(),
            arrival: 100,
            recipients: Vec::new(),
            activated: None,
            probe: false,
            shaping: None,
            group: None,
        };
        assert_eq!(r.split_before(3.0), (3.0, 0.0));
        r.activated = Some(101_000_000);
        assert_eq!(r.split_before(3.0), (1.0, 2.0));
        // A clock step never yields negative parts.
        r.activated = Some(99_000_000);
        assert_eq!(r.split_before(3.0), (0.0, 3.0));
        r.activated = Some(110_000_000);
        assert_eq!(r.split_before(3.0), (3.0, 0.0));
    }

    #[test]
    fn a_group_commit_splits_into_one_request_per_message_and_merges_back() {
        let mut req = request();
        // Without `group` the wire form is what older agents know, and one message.
        let json = serde_json::to_string(&req).unwrap();
        assert!(!json.contains("group"), "{json}");
        assert_eq!(req.messages(), vec![req.clone()]);
        assert!(!req.is_group_commit());
        req.group = Some(GroupCommit {
            retry: false,
            more: vec![BatchedMessage {
                queue_name: QueueName::Active,
                queue_id: QueueId::new("AAAAAA1").unwrap(),
                sender: "c@example.org".into(),
                arrival: 200,
                recipients: req.recipients.clone(),
                activated: Some(5),
                probe: false,
                retry: true,
            }],
        });
        let json = serde_json::to_string(&req).unwrap();
        let back: DeliveryRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, req);
        let parts = req.messages();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].queue_id, req.queue_id);
        assert_eq!(parts[1].queue_id.as_str(), "AAAAAA1");
        assert_eq!(parts[1].sender, "c@example.org");
        assert_eq!(parts[1].nexthop, "h");
        assert!(parts.iter().all(|p| p.is_group_commit()));
        assert!(parts
            .iter()
            .all(|p| p.group.as_ref().unwrap().more.is_empty()));
        assert_eq!(
            parts
                .iter()
                .map(|p| p.group.as_ref().unwrap().retry)
                .collect::<Vec<_>>(),
            [false, true]
        );
        // A batched message with a bad queue id is refused like the first one.
        let e = decode_with(&req, "group/more/0/queue_id", "../x").unwrap_err();
        assert!(e.to_string().contains("invalid queue id"), "{e}");

        let result = |offset| RecipientResult {
            offset,
            status: DeliveryStatus::Sent,
            dsn: Dsn::new("2.0.0").unwrap(),
            text: "delivered to maildir".into(),
            relay: "local".into(),
            notify_sender: None,
        };
        let merged = DeliveryReply::merged(vec![
            (
                parts[0].queue_id.clone(),
                DeliveryReply::new(vec![result(7)]),
            ),
            (
                parts[1].queue_id.clone(),
                DeliveryReply::new(vec![result(9)]),
            ),
        ]);
        assert_eq!(merged.results, vec![result(7)]);
        assert_eq!(merged.more.len(), 1);
        assert_eq!(merged.more[0].queue_id.as_str(), "AAAAAA1");
        assert_eq!(merged.more[0].results, vec![result(9)]);
        let old_style = serde_json::to_string(&DeliveryReply::new(vec![result(7)])).unwrap();
        assert!(!old_style.contains("more"), "{old_style}");
    }
}
