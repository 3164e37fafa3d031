//! ARC sealing (RFC 8617) of mail we forward (alias, .forward and :include:
//! expansion in local) or that a list manager resends (pickup and smtpd,
//! arc_sealing.rs): the chain the message arrived with is verified, the results of
//! our own Authentication-Results header (what we found on receipt) or else this
//! hop's DKIM results become the ARC-Authentication-Results, and an ARC-Message-Signature
//! and ARC-Seal are made with the key the DKIM SigningTable gives the forwarding
//! address, so a receiver whose DMARC check fails because forwarding broke SPF (and
//! maybe a signature) can see that the message passed here.
//!
//! A chain that already failed is not sealed further (RFC 8617 5.1.2: a sealer must
//! not add to a failed chain), nor a message when no key matches the address.

use crate::header::to_lf_field;
use crate::verifier::Verifier;
use mail_auth::arc::ArcSealer;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::{AuthenticatedMessage, AuthenticationResults};
use rostfix_dkim::Signer;

/// Headers the ARC-Message-Signature covers when present (those a forwarder keeps;
/// From first, as DKIM requires it signed).
const SEALED: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "DKIM-Signature",
];

/// The longest received results copied into a seal: it is written on one line, which
/// must stay under RFC 5322's 998 characters with its field name and i=.
const MAX_RECEIVED_RESULTS: usize = 900;

/// Why a message could not be sealed (it is forwarded without a seal).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the message does not parse")]
    Unparseable,
    #[error("ARC verification timed out")]
    Timeout,
    #[error("sealing failed: {0}")]
    Seal(String),
}

impl Verifier {
    /// The ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results; LF
    /// form) to put on top of `content` (stored form, LF) forwarded on behalf of
    /// `forwarder`; None when no key is for that address or the chain failed.
    pub fn arc_seal(
        &self,
        signer: &Signer,
        forwarder: &str,
        content: &[u8],
    ) -> Result<Option<String>, SealError> {
        let Some(key) = signer.key_for(forwarder) else {
            return Ok(None);
        };
        let wire = rostfix_dkim::to_crlf(content);
        let message = AuthenticatedMessage::parse(&wire).ok_or(SealError::Unparseable)?;
        let (arc, dkim) = self
            .bounded(async {
                (
                    self.auth().verify_arc(&message).await,
                    self.auth().verify_dkim(&message).await,
                )
            })
            .ok_or(SealError::Timeout)?;
        if !arc.can_be_sealed() {
            log::info!("ARC chain failed; forwarded copy not sealed");
            return Ok(None);
        }
        let from = message.from().to_string();
        // What we found on receipt, when the message carries our header (a list or
        // forwarder resending mail we received: the signature may be broken by now),
        // else this hop's DKIM results.
        let received = crate::header::our_results(content, self.authserv_id())
            .map(|r| format!("{}{r}", self.authserv_id()))
            .filter(|r| r.len() <= MAX_RECEIVED_RESULTS);
        let results = match &received {
            // mail-auth 0.13.3 has no constructor taking result text; its
            // "hostname" is written as given, in the header and in the sealed
            // (relaxed) form alike, and our_results made it one line with single
            // spaces, so both forms are the same bytes and the seal verifies
            // (tests/e2e/test_auth_verify.py checks it with dkimpy).
            Some(text) => AuthenticationResults::new(text),
            None => AuthenticationResults::new(self.authserv_id()).with_dkim_results(&dkim, &from),
        };
        let present: Vec<&str> = SEALED
            .iter()
            .copied()
            .filter(|h| {
                message
                    .raw_parsed_headers()
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(h.as_bytes()))
            })
            .collect();
        let set = ArcSealer::from_key(key.key)
            .domain(key.domain.as_str())
            .selector(key.selector)
            .headers(present)
            .seal(&message, &results, &arc)
            .map_err(|e| SealError::Seal(e.to_string()))?;
        Ok(Some(to_lf_field(&set.to_header())))
    }
}
