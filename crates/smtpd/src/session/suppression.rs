//! The suppression list at RCPT (`rostfix_suppression_action = reject`,
//! docs/bulk-sending.md): a recipient that hard-bounced earlier is refused with
//! `550 5.1.1 <ADDR>: Recipient address suppressed after hard bounce`, before any
//! queue file exists. Only mail that would leave this system is checked: our own
//! domains' mailboxes (mydestination, virtual domains) are never suppressed here.
//! The list is `suppress/list` under the queue directory (readable in the chroot),
//! reloaded when the file changes.

use super::Session;
use crate::policy::{check_relay, RelayVerdict};
use crate::reply::Reply;
use crate::sink::QueueSink;
use rostfix_maillog::outcome::SUPPRESSED_TEXT;
use std::time::{SystemTime, UNIX_EPOCH};

/// The `restriction` label of the reject in the metrics.
const LABEL: &str = "rostfix_suppression_action";

impl<S: QueueSink> Session<'_, S> {
    /// Some(550) when `rcpt` is a relayed address on the suppression list (logged).
    pub(super) fn suppression_check(&self, sender: &str, rcpt: &str) -> Option<Reply> {
        let cache = self.cfg.suppression.as_ref()?;
        if self.final_destination(rcpt) {
            return None;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        // A poisoned lock (a panic elsewhere) must not refuse mail: treat as unlisted.
        let listed = cache
            .lock()
            .map(|mut c| c.is_suppressed(rcpt, now))
            .unwrap_or(false);
        if !listed {
            return None;
        }
        let reply = Reply::new(550, "5.1.1", format!("<{rcpt}>: {SUPPRESSED_TEXT}"));
        crate::metrics::reject("RCPT", LABEL, reply.code());
        self.log_check(
            "reject",
            "RCPT",
            &reply.log_text(),
            Some(sender),
            Some(rcpt),
        );
        Some(reply)
    }

    /// Mail for our own mailboxes: a local or virtual domain. relay_domains mail is
    /// passed on to another host, so the list applies to it.
    fn final_destination(&self, rcpt: &str) -> bool {
        if check_relay(rcpt, false, &self.cfg.local_destinations) == RelayVerdict::Local {
            return true;
        }
        let (_, domain) = crate::address::split_mailbox(rcpt);
        domain
            .filter(|d| !d.is_empty())
            .is_some_and(|d| matches!(self.cfg.restrictions.virtual_domains.matches(d), Ok(true)))
    }
}
