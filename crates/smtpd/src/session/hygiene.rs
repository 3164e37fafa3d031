//! Bulk-mail hygiene in smtpd (a child module of session/mod.rs): campaign mail
//! (crates/hygiene's `is_campaign`) that this server sends out — from
//! SASL-authenticated clients and clients in mynetworks, the same mail native DKIM
//! signing signs — is held at end of DATA to rostfix_bulk_hygiene_checks: signed with
//! DKIM (by us or already by the client, aligned with From:), RFC 8058 one-click
//! unsubscription, a From: domain with DMARC. Mail arriving from elsewhere is other
//! people's newsletters and is never judged here.
//!
//! rostfix_bulk_hygiene_action = warn logs each failure; reject refuses with
//! `550 5.7.1` naming the first, logged like the end-of-DATA restrictions' rejects.

use super::{Session, Transaction};
use crate::reply::Reply;
use crate::restrictions::dns::{Answer, Dns};
use crate::sink::QueueSink;
use rostfix_hygiene::{Action, Lookups, TxtAnswer};

/// The answers crates/hygiene asks for, from this session.
struct SessionLookups<'a> {
    /// We have just signed this message with DKIM.
    signed: bool,
    dns: Option<&'a Dns>,
}

impl Lookups for SessionLookups<'_> {
    fn will_sign(&self, _from_address: &str) -> bool {
        // The signer picked the key by this very From: address.
        self.signed
    }

    fn txt(&self, name: &str) -> TxtAnswer {
        match self.dns.map(|d| d.txt_records(name)) {
            Some(Answer::Found(records)) => TxtAnswer::Records(records),
            Some(Answer::NotFound) => TxtAnswer::None,
            Some(Answer::TempFail) | None => TxtAnswer::TempFail,
        }
    }
}

impl<S: QueueSink> Session<'_, S> {
    /// Checks submitted campaign mail; the refusal when a check failed under
    /// rostfix_bulk_hygiene_action = reject. `fields` are the header fields the
    /// scanner kept; `signed` says whether we added a DKIM signature.
    pub(super) fn hygiene_check(
        &self,
        id: &str,
        fields: &[(String, String)],
        signed: bool,
        txn: &Transaction,
        (stage, rcpt): (&str, &str),
    ) -> Option<Reply> {
        let policy = self.cfg.hygiene.as_ref()?;
        if !(self.trusted || self.auth.username.is_some())
            || !rostfix_hygiene::is_campaign(None, fields)
        {
            return None;
        }
        let lookups = SessionLookups {
            signed,
            dns: self.cfg.restrictions.dns.as_deref(),
        };
        let findings = rostfix_hygiene::check(policy, fields, &lookups);
        let first = findings.first()?;
        if policy.action == Action::Warn {
            for f in &findings {
                log::warn!("{}", f.warning(id, &txn.sender));
            }
            return None;
        }
        let reply = Reply::new(
            550,
            "5.7.1",
            format!("Error: bulk mail hygiene: {}", first.text),
        );
        self.log_reject(
            id,
            (stage, "rostfix_bulk_hygiene_checks"),
            &reply,
            &txn.sender,
            rcpt,
        );
        Some(reply)
    }
}
