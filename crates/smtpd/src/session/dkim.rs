//! Native DKIM signing in smtpd (a child module of session/mod.rs): which mail is
//! signed follows OpenDKIM's defaults for a milter behind Postfix: mail from
//! SASL-authenticated clients and from clients in mynetworks, never mail relayed in
//! from elsewhere (which is the mail to verify, not to sign). The key is chosen by
//! the From: address (crates/dkim).
//!
//! `receive_override_options = no_milters` turns signing off too, as it turns off the
//! OpenDKIM milter that native signing replaces: that is how Postfix's FILTER_README
//! wires a content filter's re-injection smtpd on 127.0.0.1, and without it mail from
//! outside coming back from the filter (from 127.0.0.1, inside mynetworks) would be
//! signed, a forged From: of ours included.

use super::Session;
use crate::reply::Reply;
use crate::sink::QueueSink;

impl<S: QueueSink> Session<'_, S> {
    /// Mail of this session is to be signed.
    pub(super) fn dkim_signs(&self) -> bool {
        self.cfg.dkim.is_some()
            && !self.cfg.receive_overrides.no_milters
            && (self.trusted || self.auth.username.is_some())
    }

    /// The ARC set for mail of this session that a list manager sends on (it carries
    /// our Authentication-Results: crates/authverify), sealed over `signature` (ours,
    /// if any) and `content`; None otherwise.
    pub(super) fn arc_resubmitted(
        &self,
        id: &str,
        sender: &str,
        signature: Option<&str>,
        content: &[u8],
    ) -> Option<String> {
        let arc = self
            .cfg
            .arc_resubmitted
            .as_ref()
            .filter(|_| self.arc_seals())?;
        let whole = [signature.unwrap_or("").as_bytes(), content].concat();
        let set = arc.sealing.seal_resubmission(sender, &whole)?;
        log::info!("{id}: ARC-Seal field added");
        Some(set)
    }

    /// The client logged in as a list manager of rostfix_arc_seal_resubmitted: its
    /// mail may be ARC-sealed as a resubmission, and our Authentication-Results in
    /// it are kept (session/authverify.rs removes them from everyone else's).
    pub(super) fn arc_seals(&self) -> bool {
        !self.cfg.receive_overrides.no_milters
            && match (&self.cfg.arc_resubmitted, &self.auth.username) {
                (Some(r), Some(login)) => r.lists(login),
                _ => false,
            }
    }

    /// The DKIM-Signature: headers for the final `content` (LF form), or None when
    /// this session's mail is not signed or no key matches its From:. A signing
    /// failure is a temporary error, as OpenDKIM's default answer to it: mail that
    /// should carry a signature is not sent without one.
    pub(super) fn dkim_signature(&self, id: &str, content: &[u8]) -> Result<Option<String>, Reply> {
        let Some(signer) = self.cfg.dkim.as_ref().filter(|_| self.dkim_signs()) else {
            return Ok(None);
        };
        match signer.sign(content) {
            Ok(signed) if signed.is_empty() => Ok(None),
            Ok(signed) => {
                for s in &signed {
                    log::info!(
                        "{id}: DKIM-Signature field added (s={}, d={})",
                        s.selector,
                        s.domain
                    );
                }
                Ok(Some(signed.into_iter().map(|s| s.header).collect()))
            }
            Err(e) => {
                log::warn!("{id}: DKIM signing failed: {e}");
                Err(Reply::new(451, "4.7.0", "Error: DKIM signing failed"))
            }
        }
    }
}
