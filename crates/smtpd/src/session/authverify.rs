//! Verification on receipt in smtpd (a child module of session/mod.rs): for the
//! mail rostfix_auth_verify selects (by default mail from outside: neither
//! mynetworks nor SASL-authenticated), the held content is checked by
//! crates/authverify (SPF at HELO and MAIL FROM, DKIM, ARC, DMARC), incoming
//! Authentication-Results fields that claim our authserv-id (myhostname) are removed
//! as forged (from every client, checked or not), and one Authentication-Results
//! header is put on top. It runs before the milters, so a milter (OpenDMARC,
//! rspamd) sees our results.
//!
//! rostfix_dmarc_reject_policy = yes answers a DMARC failure of a domain that
//! publishes p=reject with 550 5.7.1 (RFC 7489 10.3 names 5.7.1), and
//! rostfix_dmarc_quarantine_policy = yes sends a p=quarantine failure to the hold
//! queue, unless rostfix_dmarc_exception_maps lists the From: domain. A record's
//! `pct=` and `t=y` lower the policy for the messages they leave out (crates/authverify
//! dmarc.rs): a p=reject failure outside pct= is treated as a p=quarantine one. A DNS
//! failure is a temperror result and never rejects (not even temporarily: the header
//! says so).

use super::{Session, Transaction};
use crate::auth_verify::{AuthVerify, Scope};
use crate::client::NameStatus;
use crate::reply::Reply;
use crate::sink::QueueSink;
use rostfix_authverify::{strip_forged, DmarcStatus, Iprev, Peer, Policy};

impl<S: QueueSink> Session<'_, S> {
    /// `content` without Authentication-Results fields that claim our authserv-id.
    fn strip_forged(&self, id: &str, content: &[u8], av: &AuthVerify) -> Vec<u8> {
        let (content, forged) = strip_forged(content, av.verifier.authserv_id());
        if forged > 0 {
            log::warn!(
                "{id}: removed {forged} Authentication-Results header(s) claiming our authserv-id {}",
                av.verifier.authserv_id()
            );
        }
        content
    }

    /// The client name lookup made at connect, as an iprev result; None when smtpd
    /// does not look names up (smtpd_peername_lookup = no, or no DNS).
    fn iprev(&self) -> Option<Iprev<'_>> {
        let rc = &self.cfg.restrictions;
        if !rc.peername_lookup || rc.dns.is_none() {
            return None;
        }
        Some(match self.client.name_status {
            NameStatus::Ok => Iprev::Pass(&self.client.name),
            NameStatus::Forged => Iprev::Fail,
            NameStatus::Temp => Iprev::TempError,
            NameStatus::Perm => Iprev::PermError,
        })
    }

    /// The verification settings when this session's mail is verified.
    pub(super) fn verification(&self) -> Option<&AuthVerify> {
        let av = self.cfg.auth_verify.as_deref()?;
        let outside = !self.trusted && self.auth.username.is_none();
        (av.scope == Scope::All || outside).then_some(av)
    }

    /// The content with forged Authentication-Results removed and ours on top, and
    /// whether a DMARC p=quarantine failure sends it to hold/; or the refusal of a
    /// p=reject failure.
    pub(super) fn verify_received(
        &self,
        id: &str,
        content: Vec<u8>,
        txn: &Transaction,
        stage: &str,
    ) -> Result<(Vec<u8>, bool), Reply> {
        let Some(av) = self.cfg.auth_verify.as_deref() else {
            return Ok((content, false));
        };
        let (Some(ip), true) = (self.client.ip, self.verification().is_some()) else {
            // Not checked (mynetworks, SASL-authenticated), but a header claiming our
            // name is still not ours: a local user must not hand internal recipients'
            // filters a "pass" either. A listed list manager passes ours on as it got
            // it from our delivery (it goes into the ARC seal: session/dkim.rs).
            if self.arc_seals() {
                return Ok((content, false));
            }
            return Ok((self.strip_forged(id, &content, av), false));
        };
        let peer = Peer {
            ip,
            helo: self.helo.as_deref().unwrap_or(""),
            sender: &txn.sender,
            iprev: self.iprev(),
        };
        // Checked before the forged headers go: one the sender signed still verifies.
        let report = av.verifier.verify(&peer, &content);
        let content = self.strip_forged(id, &content, av);
        let dmarc_text = match &report.dmarc {
            Some(d) => format!(" dmarc={} header.from={}", d.status.as_str(), d.from_domain),
            None => String::new(),
        };
        log::info!(
            "{id}: authentication: spf={}{dmarc_text}",
            rostfix_authverify::spf_name(report.spf)
        );
        // `enforce`, not `policy`: pct= and t=y may have lowered it for this message.
        let acted = report.dmarc.as_ref().filter(|d| {
            d.status == DmarcStatus::Fail
                && match d.enforce {
                    Some(Policy::Reject) => av.dmarc_reject,
                    Some(Policy::Quarantine) => av.dmarc_quarantine,
                    _ => false,
                }
        });
        let mut hold = false;
        if let Some(d) = acted {
            let rcpt = txn.recipients.first().map(String::as_str).unwrap_or("");
            match av.exempt(&d.from_domain, &d.org_domain) {
                Ok(true) => log::info!(
                    "{id}: DMARC failure of {} not acted on: rostfix_dmarc_exception_maps",
                    d.from_domain
                ),
                Ok(false) if d.enforce == Some(Policy::Quarantine) => {
                    // Postfix's HOLD action, logged as cleanup logs one.
                    log::info!(
                        "{id}: hold: END-OF-MESSAGE from {}: DMARC p=quarantine failure of {}; from=<{}> to=<{rcpt}>",
                        self.client.log_name(),
                        d.from_domain,
                        txn.sender
                    );
                    hold = true;
                }
                Ok(false) => {
                    let reply = Reply::new(
                        550,
                        "5.7.1",
                        format!("Rejected by DMARC policy for {}", d.from_domain),
                    );
                    self.log_reject(
                        id,
                        (stage, "rostfix_dmarc_reject_policy"),
                        &reply,
                        &txn.sender,
                        rcpt,
                    );
                    return Err(reply);
                }
                // A table that cannot be read: the mail is accepted with its header
                // (rejecting on a lookup failure would refuse listed domains too).
                Err(e) => log::warn!("{id}: rostfix_dmarc_exception_maps: {e}"),
            }
        }
        // The disposition OpenDMARC writes: what was done with the failure.
        let header = match report.dmarc.as_ref().and_then(|d| d.policy) {
            Some(p) if hold => report.header.replace(
                &format!("(p={} dis=none)", p.as_str()),
                &format!("(p={} dis=quarantine)", p.as_str()),
            ),
            _ => report.header,
        };
        let mut out = Vec::with_capacity(header.len() + content.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&content);
        Ok((out, hold))
    }
}
