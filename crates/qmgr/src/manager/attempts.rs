//! Each delivery attempt's outcome handed to bulk.rs: one JSON delivery-log record
//! per recipient of a reply (sent, bounced or deferred, with the agent's relay, reply
//! text, TLS and delays), and the reply's hard bounces put on the suppression list
//! in one update.

use super::{now_f64, now_secs, Manager};
use crate::event::DeliveryOutcome;
use crate::message::{ActiveMessage, Classified};
use rostfix_maillog::outcome::Class;
use rostfix_maillog::AttemptRecord;
use rostfix_proto::RecipientResult;

impl Manager {
    /// Records the recipients of one reply (`c` classified from `o`) of `msg`.
    pub(super) fn record_attempts(
        &mut self,
        o: &DeliveryOutcome,
        msg: &ActiveMessage,
        c: &Classified,
    ) {
        let now = now_secs();
        let delay = (now_f64() - msg.arrival as f64).max(0.0);
        let reply = o.reply.as_ref().ok();
        let result = |off: u64| -> Option<&RecipientResult> {
            reply.and_then(|r| r.results.iter().find(|x| x.offset == off))
        };
        let tls = reply.and_then(|r| r.tls.as_deref());
        let delays = reply
            .and_then(|r| r.delays_ms)
            .map(|d| d.map(|ms| ms as f64 / 1000.0));
        let base = |off: u64, address: &'_ str| {
            let orig = msg
                .recipients
                .get(&off)
                .map_or(address.to_string(), |r| r.orig_address.clone());
            (address.to_string(), orig)
        };
        let mut rows: Vec<(String, String, &str, String, String, String)> = Vec::new();
        for off in &c.sent {
            let address = msg.recipients.get(off).map_or("", |r| r.address.as_str());
            let (to, orig) = base(*off, address);
            let r = result(*off);
            rows.push((
                to,
                orig,
                "sent",
                r.map_or_else(|| "2.0.0".into(), |x| x.dsn.as_str().to_string()),
                r.map_or_else(|| o.route.nexthop.clone(), |x| x.relay.clone()),
                r.map_or_else(String::new, |x| x.text.clone()),
            ));
        }
        for (off, b) in &c.bounced {
            let (to, orig) = base(*off, &b.address);
            rows.push((
                to,
                orig,
                "bounced",
                b.dsn.as_str().to_string(),
                b.relay.clone(),
                b.text.clone(),
            ));
        }
        for d in &c.deferred {
            let (to, orig) = base(d.offset, &d.address);
            rows.push((
                to,
                orig,
                "deferred",
                d.dsn.clone(),
                result(d.offset).map_or_else(|| "none".into(), |x| x.relay.clone()),
                d.text.clone(),
            ));
        }
        for (to, orig, status, dsn, relay, text) in &rows {
            self.bulk.record(AttemptRecord {
                time: now,
                // Set by Bulk::record.
                class: Class::Other,
                attempt: None,
                queue_id: &msg.id,
                campaign_id: msg.campaign_id.as_deref(),
                sender: &msg.sender,
                recipient: to,
                orig_recipient: orig,
                status,
                dsn,
                relay,
                reply: text,
                tls,
                delay,
                delays,
            });
        }
        self.bulk.flush(now);
    }

    /// Records recipients returned to the sender because their message expired.
    pub(super) fn record_expired(
        &mut self,
        msg: &ActiveMessage,
        address: &str,
        orig: &str,
        dsn: &str,
        reason: &str,
    ) {
        let now = now_secs();
        self.bulk.record(AttemptRecord {
            time: now,
            // Set by Bulk::record.
            class: Class::Other,
            attempt: None,
            queue_id: &msg.id,
            campaign_id: msg.campaign_id.as_deref(),
            sender: &msg.sender,
            recipient: address,
            orig_recipient: orig,
            status: "expired",
            dsn,
            relay: "none",
            reply: reason,
            tls: None,
            delay: (now_f64() - msg.arrival as f64).max(0.0),
            delays: None,
        });
    }
}
