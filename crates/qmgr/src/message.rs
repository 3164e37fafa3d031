//! The in-memory state of one message in active/ and the pure rules applied to it:
//! turning a delivery agent's reply into sent / bounced / deferred recipients, and
//! deciding what happens to the file once no request is outstanding (remove, defer with
//! backoff, or expire and return to sender). The main loop does the file operations.

use crate::backoff::RetryPolicy;
use rostfix_proto::{BouncedRecipient, DeliveryRecipient, DeliveryReply, DeliveryStatus};
use std::collections::BTreeMap;

/// DSN and text when the agent cannot be reached or its reply is unusable.
pub const UNAVAILABLE_DSN: &str = "4.3.0";
pub const UNAVAILABLE_TEXT: &str = "mail transport unavailable";
/// DSN and text of an expired message's notice.
pub const EXPIRED_DSN: &str = "4.4.7";
pub const EXPIRED_TEXT: &str = "message delivery timed out";
/// Reason kept when the bounce service could not queue a notice.
pub const BOUNCE_FAILURE_TEXT: &str = "bounce or trace service failure";

/// One recipient still tracked by qmgr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptState {
    pub address: String,
    pub orig_address: String,
    /// Delivered or bounced (the queue file says so too).
    pub done: bool,
    /// Latest defer reason seen in this pass through active/.
    pub last_reason: Option<String>,
    /// DSN NOTIFY as queued ("" = not given).
    pub notify: String,
}

/// A message in active/.
#[derive(Debug, Clone)]
pub struct ActiveMessage {
    pub id: String,
    pub sender: String,
    /// Arrival, seconds since the epoch.
    pub arrival: i64,
    /// Recipients that were pending when the file was read, by record offset.
    pub recipients: BTreeMap<u64, RcptState>,
    /// Delivery requests and bounce jobs not yet finished (queued or in flight).
    pub outstanding: usize,
    /// The expiry notice was already attempted in this pass: never loop on it.
    pub expire_tried: bool,
    /// `rostsuper -e` marked the file (owner-execute bit, docs/queue-format.md): bounce
    /// the pending recipients now instead of delivering.
    pub forced_expire: bool,
    /// When qmgr took it into active/ (microseconds since the epoch), for delays=a/b.
    pub activated: i64,
    /// An address verification probe (manager/probe.rs): outcomes go to verify,
    /// never into notices or retries.
    pub probe: bool,
    /// VERP delimiters: each request carries one recipient and the sender made for
    /// it (rostfix_queue::verp_sender).
    pub verp: Option<[char; 2]>,
    /// The queue file's campaign_id attribute, for the JSON delivery log.
    pub campaign_id: Option<String>,
    /// It came from deferred/: an earlier attempt may have reached the mailbox without
    /// its done mark (a group commit cut short), which the local agent then also looks
    /// for among the mailbox's read messages (DeliveryRequest `retry`).
    pub retry: bool,
    /// Where the pending recipients not yet read into memory start in the queue file
    /// (manager/slices.rs); None once the last slice is read. The message is never
    /// removed, deferred or expired while some are unread.
    pub unread: Option<u64>,
    /// Requests queued for the latest slice: the next slice is read once half of
    /// this many are still outstanding.
    pub slice_requests: usize,
    /// The content filter every recipient goes to (the queue file's attribute).
    pub filter: Option<rostfix_queue::ContentFilter>,
    /// Content size, for the requests of later slices.
    pub size: u64,
}

impl ActiveMessage {
    pub fn new(id: &str, sender: &str, arrival: i64) -> ActiveMessage {
        ActiveMessage {
            id: id.to_string(),
            sender: sender.to_string(),
            arrival,
            recipients: BTreeMap::new(),
            outstanding: 0,
            expire_tried: false,
            forced_expire: false,
            probe: false,
            verp: None,
            campaign_id: None,
            retry: false,
            unread: None,
            slice_requests: 0,
            filter: None,
            size: 0,
            activated: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        }
    }

    pub fn add_recipient(&mut self, offset: u64, address: &str, orig_address: &str) {
        self.recipients.insert(
            offset,
            RcptState {
                address: address.into(),
                orig_address: orig_address.into(),
                done: false,
                last_reason: None,
                notify: String::new(),
            },
        );
    }

    pub fn set_notify(&mut self, offset: u64, notify: &str) {
        if let Some(r) = self.recipients.get_mut(&offset) {
            r.notify = notify.to_string();
        }
    }

    pub fn set_done(&mut self, offset: u64) {
        if let Some(r) = self.recipients.get_mut(&offset) {
            r.done = true;
        }
    }

    pub fn set_reason(&mut self, offset: u64, reason: &str) {
        if let Some(r) = self.recipients.get_mut(&offset) {
            r.last_reason = Some(reason.to_string());
        }
    }

    /// Offsets of recipients not yet done.
    pub fn pending(&self) -> Vec<u64> {
        self.recipients
            .iter()
            .filter(|(_, r)| !r.done)
            .map(|(o, _)| *o)
            .collect()
    }

    /// The delivery-request form of a recipient.
    pub fn delivery_recipient(&self, offset: u64) -> Option<DeliveryRecipient> {
        self.recipients.get(&offset).map(|r| DeliveryRecipient {
            offset,
            address: r.address.clone(),
            orig_address: r.orig_address.clone(),
        })
    }
}

/// A recipient to defer, and whether qmgr must log it (the agent did not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferral {
    pub offset: u64,
    pub address: String,
    pub dsn: String,
    pub text: String,
    pub log_by_qmgr: bool,
}

/// A delivery reply sorted into what qmgr has to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classified {
    /// Delivered and marked done by the agent.
    pub sent: Vec<u64>,
    /// Permanent failures: a notice is due, then they are marked done.
    pub bounced: Vec<(u64, BouncedRecipient)>,
    /// Stay queued.
    pub deferred: Vec<Deferral>,
    /// Anomalies in the reply, phrased for the log.
    pub warnings: Vec<String>,
}

/// Matches an agent's reply (or the failure to get one) against the request. Results
/// are matched by offset, never trusted for recipients we did not ask about; a
/// requested recipient without a result stays queued (it may be retried, never lost).
pub fn classify(
    requested: &[DeliveryRecipient],
    reply: Result<&DeliveryReply, &str>,
) -> Classified {
    let mut out = Classified::default();
    let reply = match reply {
        Ok(r) => r,
        Err(why) => {
            out.warnings
                .push(format!("delivery agent unavailable: {why}"));
            for r in requested {
                out.deferred.push(Deferral {
                    offset: r.offset,
                    address: r.address.clone(),
                    dsn: UNAVAILABLE_DSN.into(),
                    text: UNAVAILABLE_TEXT.into(),
                    log_by_qmgr: true,
                });
            }
            return out;
        }
    };
    let mut answered: BTreeMap<u64, &rostfix_proto::RecipientResult> = BTreeMap::new();
    for res in &reply.results {
        if !requested.iter().any(|r| r.offset == res.offset) {
            out.warnings.push(format!(
                "delivery agent reported unrequested recipient offset {}",
                res.offset
            ));
        } else if answered.insert(res.offset, res).is_some() {
            out.warnings.push(format!(
                "delivery agent reported offset {} twice; using the last",
                res.offset
            ));
        }
    }
    for r in requested {
        match answered.get(&r.offset) {
            Some(res) => match res.status {
                DeliveryStatus::Sent => out.sent.push(r.offset),
                DeliveryStatus::Bounced => out.bounced.push((
                    r.offset,
                    BouncedRecipient {
                        address: r.address.clone(),
                        orig_address: r.orig_address.clone(),
                        dsn: res.dsn.clone(),
                        text: res.text.clone(),
                        relay: res.relay.clone(),
                        notify: String::new(),
                        action: String::new(),
                    },
                )),
                DeliveryStatus::Deferred => out.deferred.push(Deferral {
                    offset: r.offset,
                    address: r.address.clone(),
                    dsn: res.dsn.to_string(),
                    text: res.text.clone(),
                    log_by_qmgr: false,
                }),
            },
            None => {
                out.warnings
                    .push(format!("delivery agent gave no result for <{}>", r.address));
                out.deferred.push(Deferral {
                    offset: r.offset,
                    address: r.address.clone(),
                    dsn: UNAVAILABLE_DSN.into(),
                    text: UNAVAILABLE_TEXT.into(),
                    log_by_qmgr: true,
                });
            }
        }
    }
    out
}

/// The concurrency feedback of one request: a failure when the agent could not be
/// used, or when every recipient was deferred with a network/routing status (X.4.X:
/// connection refused or lost, no route, DNS failure), i.e. the destination itself
/// failed. Recipient-level deferrals (a 4xx to RCPT) count as success, as in Postfix.
pub fn feedback(agent_error: Option<String>, c: &Classified) -> crate::schedule::Outcome {
    use crate::schedule::Outcome;
    if let Some(why) = agent_error {
        return Outcome::Failure(why);
    }
    if c.sent.is_empty()
        && c.bounced.is_empty()
        && !c.deferred.is_empty()
        && c.deferred.iter().all(|d| d.dsn.starts_with("4.4."))
    {
        return Outcome::Failure(c.deferred[0].text.clone());
    }
    Outcome::Success
}

/// What to do with a message whose requests have all finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Every recipient is done: delete the file and its logs.
    Remove,
    /// Move to deferred/ with this retry time.
    Defer { retry_at: i64 },
    /// Too old: bounce the pending recipients (with [`EXPIRED_DSN`]), then remove.
    Expire { pending: Vec<u64> },
}

/// Decides a finished message's fate at `now`.
/// Recipients not read yet (`unread`) count as pending: such a message is deferred
/// (it is only here when its next slice could not be read), never removed, and it
/// expires only once every recipient has been read and tried.
pub fn completion(msg: &ActiveMessage, now: i64, policy: &RetryPolicy) -> Completion {
    let pending = msg.pending();
    let all_read = msg.unread.is_none();
    if pending.is_empty() && all_read {
        Completion::Remove
    } else if all_read
        && !msg.expire_tried
        && (msg.forced_expire || policy.is_expired(now, msg.arrival, &msg.sender))
    {
        Completion::Expire { pending }
    } else {
        Completion::Defer {
            retry_at: policy.next_retry(now, msg.arrival),
        }
    }
}

/// The diagnostic of an expired recipient: the timeout plus why it was last deferred.
pub fn expired_text(last_reason: Option<&str>) -> String {
    match last_reason {
        Some(r) if !r.is_empty() => format!("{EXPIRED_TEXT}: {r}"),
        _ => EXPIRED_TEXT.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::RecipientResult;

    fn rcpt(offset: u64) -> DeliveryRecipient {
        DeliveryRecipient {
            offset,
            address: format!("u{offset}@example.net"),
            orig_address: format!("u{offset}@example.net"),
        }
    }

    fn result(offset: u64, status: DeliveryStatus, dsn: &str) -> RecipientResult {
        RecipientResult {
            offset,
            status,
            dsn: dsn.parse().unwrap(),
            text: format!("text {offset}"),
            relay: "local".into(),
            notify_sender: None,
        }
    }

    const POLICY: RetryPolicy = RetryPolicy {
        minimal_backoff: 300,
        maximal_backoff: 4000,
        maximal_queue_lifetime: 86400,
        bounce_queue_lifetime: 3600,
    };

    #[test]
    fn results_are_sorted_by_status() {
        let req = [rcpt(10), rcpt(20), rcpt(30)];
        let reply = DeliveryReply::new(vec![
            result(10, DeliveryStatus::Sent, "2.0.0"),
            result(20, DeliveryStatus::Bounced, "5.1.1"),
            result(30, DeliveryStatus::Deferred, "4.2.2"),
        ]);
        let c = classify(&req, Ok(&reply));
        assert_eq!(c.sent, vec![10]);
        assert_eq!(c.bounced.len(), 1);
        assert_eq!(c.bounced[0].0, 20);
        assert_eq!(c.bounced[0].1.dsn, "5.1.1");
        assert_eq!(c.bounced[0].1.address, "u20@example.net");
        assert_eq!(c.deferred.len(), 1);
        assert_eq!(c.deferred[0].offset, 30);
        assert_eq!(c.deferred[0].text, "text 30");
        assert!(!c.deferred[0].log_by_qmgr);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn unreachable_agent_defers_everything_with_4_3_0() {
        let c = classify(
            &[rcpt(1), rcpt(2)],
            Err("connect: No such file or directory"),
        );
        assert!(c.sent.is_empty() && c.bounced.is_empty());
        assert_eq!(c.deferred.len(), 2);
        assert!(c
            .deferred
            .iter()
            .all(|d| d.dsn == "4.3.0" && d.text == "mail transport unavailable" && d.log_by_qmgr));
    }

    #[test]
    fn missing_and_foreign_results_never_lose_or_invent_recipients() {
        let req = [rcpt(1), rcpt(2)];
        let reply = DeliveryReply::new(vec![
            result(1, DeliveryStatus::Sent, "2.0.0"),
            result(999, DeliveryStatus::Sent, "2.0.0"),
        ]);
        let c = classify(&req, Ok(&reply));
        assert_eq!(c.sent, vec![1]);
        assert_eq!(
            c.deferred.iter().map(|d| d.offset).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(c.warnings.len(), 2);
    }

    #[test]
    fn which_recipients_stay_pending() {
        let mut m = ActiveMessage::new("ID", "a@b", 1000);
        for o in [1, 2, 3] {
            m.add_recipient(o, &format!("u{o}@x"), "");
        }
        let reply = DeliveryReply::new(vec![
            result(1, DeliveryStatus::Sent, "2.0.0"),
            result(2, DeliveryStatus::Deferred, "4.0.0"),
            result(3, DeliveryStatus::Bounced, "5.0.0"),
        ]);
        let req: Vec<_> = [1, 2, 3]
            .iter()
            .filter_map(|o| m.delivery_recipient(*o))
            .collect();
        let c = classify(&req, Ok(&reply));
        for o in &c.sent {
            m.set_done(*o);
        }
        // Bounced recipients stay pending until the notice is queued.
        assert_eq!(m.pending(), vec![2, 3]);
        m.set_done(3);
        assert_eq!(m.pending(), vec![2]);
    }

    #[test]
    fn completion_rules() {
        let mut m = ActiveMessage::new("ID", "a@b", 1000);
        m.add_recipient(1, "x@y", "x@y");
        assert_eq!(
            completion(&m, 1010, &POLICY),
            Completion::Defer { retry_at: 1310 }
        );
        assert_eq!(
            completion(&m, 1000 + 86401, &POLICY),
            Completion::Expire { pending: vec![1] }
        );
        m.expire_tried = true;
        assert!(matches!(
            completion(&m, 1000 + 86401, &POLICY),
            Completion::Defer { .. }
        ));
        m.set_done(1);
        assert_eq!(completion(&m, 1010, &POLICY), Completion::Remove);
    }

    #[test]
    fn unread_recipients_keep_the_message_and_put_off_its_expiry() {
        let mut m = ActiveMessage::new("ID", "a@b", 1000);
        m.add_recipient(1, "x@y", "x@y");
        m.set_done(1);
        m.unread = Some(4096);
        // Everything in memory is done, but recipients are left in the file.
        assert_eq!(
            completion(&m, 1010, &POLICY),
            Completion::Defer { retry_at: 1310 }
        );
        // Old enough to expire: not before the rest has been read and tried.
        m.add_recipient(2, "z@y", "z@y");
        assert!(matches!(
            completion(&m, 1000 + 86401, &POLICY),
            Completion::Defer { .. }
        ));
        m.unread = None;
        assert_eq!(
            completion(&m, 1000 + 86401, &POLICY),
            Completion::Expire { pending: vec![2] }
        );
    }

    #[test]
    fn null_sender_expires_sooner() {
        let mut m = ActiveMessage::new("ID", "", 1000);
        m.add_recipient(1, "x@y", "x@y");
        assert!(matches!(
            completion(&m, 1000 + 3601, &POLICY),
            Completion::Expire { .. }
        ));
    }

    #[test]
    fn forced_expire_bounces_a_young_message() {
        let policy = RetryPolicy {
            minimal_backoff: 300,
            maximal_backoff: 4000,
            maximal_queue_lifetime: 5 * 86400,
            bounce_queue_lifetime: 86400,
        };
        let mut m = ActiveMessage::new("A1", "s@x", 1000);
        m.add_recipient(1, "r@x", "r@x");
        assert!(matches!(
            completion(&m, 1001, &policy),
            Completion::Defer { .. }
        ));
        m.forced_expire = true;
        assert_eq!(
            completion(&m, 1001, &policy),
            Completion::Expire { pending: vec![1] }
        );
    }

    #[test]
    fn expired_text_carries_last_reason() {
        assert_eq!(expired_text(None), "message delivery timed out");
        assert_eq!(
            expired_text(Some("connection refused")),
            "message delivery timed out: connection refused"
        );
    }
}
