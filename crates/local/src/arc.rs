//! ARC sealing of forwarded copies (rostfix_arc_seal_forwarded, issue 15): with it
//! on, each copy local puts back into the queue for addresses an alias, .forward or
//! :include: produced carries an ARC set (crates/authverify) made with the key the
//! DKIM SigningTable (rostfix_dkim_signing_table) gives the forwarding address. The
//! keys, the DNS resolver and the public suffix list are read at start, as root.

use rostfix_authverify::Verifier;
use rostfix_config::MainCf;
use rostfix_dkim::Signer;
use std::sync::Arc;
use std::time::Duration;

/// Why sealing cannot be set up: local does not start.
#[derive(Debug, thiserror::Error)]
pub enum ArcSetupError {
    #[error("rostfix_arc_seal_forwarded: {0}")]
    Verify(#[from] rostfix_authverify::VerifyError),
    #[error("rostfix_arc_seal_forwarded: {0}")]
    Keys(#[from] rostfix_dkim::DkimError),
    #[error(
        "rostfix_arc_seal_forwarded needs rostfix_dkim_key_table and rostfix_dkim_signing_table"
    )]
    NoKeys,
}

/// What sealing needs.
#[derive(Debug)]
pub struct ArcSealing {
    verifier: Verifier,
    signer: Signer,
}

impl ArcSealing {
    /// None when rostfix_arc_seal_forwarded = no (the default).
    pub fn from_config(cf: &MainCf) -> Result<Option<Arc<ArcSealing>>, ArcSetupError> {
        if !cf.get_bool("rostfix_arc_seal_forwarded") {
            return Ok(None);
        }
        let signer = Signer::load(
            &cf.get("rostfix_dkim_key_table"),
            &cf.get("rostfix_dkim_signing_table"),
        )?
        .ok_or(ArcSetupError::NoKeys)?;
        let deadline = cf
            .get_time("rostfix_auth_verify_timeout")
            .max(Duration::from_secs(1));
        let verifier = Verifier::new(
            &cf.get_list("rostfix_dns_servers"),
            Duration::from_secs(5).min(deadline),
            deadline,
            cf.get("rostfix_public_suffix_list").trim(),
            cf.get("myhostname").trim(),
        )?;
        Ok(Some(Arc::new(ArcSealing { verifier, signer })))
    }

    /// `content` with an ARC set on top when one can be made; unchanged otherwise (a
    /// copy is never held back for want of a seal: it is forwarded as before).
    pub fn seal(&self, forwarder: &str, content: Vec<u8>) -> Vec<u8> {
        match self.verifier.arc_seal(&self.signer, forwarder, &content) {
            Ok(Some(set)) => {
                let mut out = set.into_bytes();
                out.extend_from_slice(&content);
                out
            }
            Ok(None) => content,
            Err(e) => {
                log::warn!("ARC seal for {forwarder}: {e}; forwarded without");
                content
            }
        }
    }
}
