//! What a sealing process holds (the verifier and the DKIM keys, read at start as
//! root, before confinement) and its one entry point, [`ArcSealing::seal`]. Two
//! switches use it: rostfix_arc_seal_forwarded (local seals the copies an alias,
//! .forward or :include: sends on) and rostfix_arc_seal_resubmitted (pickup and
//! smtpd seal mail a list manager sends again: mail from the local users and SASL
//! logins it lists that carries our Authentication-Results header, i.e. that came in
//! from outside through us).
//!
//! Why a list of submitters and not "any mail of ours carrying our header": the seal
//! vouches for the header's results, and anyone who can submit could write one (smtpd
//! removes such headers from every client, but sendmail's users reach pickup
//! directly). Only the list manager, which got the message from our local delivery,
//! is trusted to pass our header on unchanged.

use crate::{header, Verifier, VerifyError};
use rostfix_config::MainCf;
use rostfix_dkim::Signer;
use std::sync::Arc;
use std::time::Duration;

/// Why sealing cannot be set up: the process does not start.
#[derive(Debug, thiserror::Error)]
pub enum ArcSetupError {
    #[error("{switch}: {source}")]
    Verify {
        switch: &'static str,
        source: VerifyError,
    },
    #[error("{switch}: {source}")]
    Keys {
        switch: &'static str,
        source: rostfix_dkim::DkimError,
    },
    #[error("{0} needs rostfix_dkim_key_table and rostfix_dkim_signing_table")]
    NoKeys(&'static str),
}

/// The per-query DNS bound; the whole check has rostfix_auth_verify_timeout.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What sealing needs.
#[derive(Debug)]
pub struct ArcSealing {
    verifier: Verifier,
    signer: Signer,
}

impl ArcSealing {
    /// None when the boolean parameter `switch` is off (its default).
    pub fn from_config(
        cf: &MainCf,
        switch: &'static str,
    ) -> Result<Option<Arc<ArcSealing>>, ArcSetupError> {
        if !cf.get_bool(switch) {
            return Ok(None);
        }
        Self::load(cf, switch).map(Some)
    }

    /// The keys and a verifier, for the parameter `switch` (named in errors).
    pub fn load(cf: &MainCf, switch: &'static str) -> Result<Arc<ArcSealing>, ArcSetupError> {
        let signer = Signer::load(
            &cf.get("rostfix_dkim_key_table"),
            &cf.get("rostfix_dkim_signing_table"),
        )
        .map_err(|source| ArcSetupError::Keys { switch, source })?
        .ok_or(ArcSetupError::NoKeys(switch))?;
        let deadline = cf
            .get_time("rostfix_auth_verify_timeout")
            .max(Duration::from_secs(1));
        let verifier = Verifier::new(
            &cf.get_list("rostfix_dns_servers"),
            QUERY_TIMEOUT.min(deadline),
            deadline,
            cf.get("rostfix_public_suffix_list").trim(),
            cf.get("myhostname").trim(),
        )
        .map_err(|source| ArcSetupError::Verify { switch, source })?;
        Ok(Arc::new(ArcSealing { verifier, signer }))
    }

    /// For a resubmission of mail we received (`content`, stored form, carries an
    /// Authentication-Results header of ours: it came in from outside through this
    /// server and is being sent again): the ARC set, sealed for the list, i.e. its envelope sender (a list's bounce
    /// address) or else its From: (a list that rewrites From: for DMARC's sake).
    /// None when the message does not carry our Authentication-Results.
    pub fn seal_resubmission(&self, sender: &str, content: &[u8]) -> Option<String> {
        header::our_results(content, self.verifier.authserv_id())?;
        let fields = rostfix_dkim::header_fields(rostfix_dkim::header_block(content));
        let from = fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("From"))
            .and_then(|(_, v)| rostfix_dkim::from_address(v))
            .unwrap_or_default();
        self.seal(&[sender, &from], content)
    }

    /// The ARC set to put on top of `content` (stored form, LF) sent on by the first
    /// of `sealers` the SigningTable has a key for; None when none has one or the
    /// chain already failed. Never an error: a message is not held back for want of
    /// a seal, it goes on as before (logged).
    pub fn seal(&self, sealers: &[&str], content: &[u8]) -> Option<String> {
        let sealer = sealers
            .iter()
            .copied()
            .find(|a| !a.is_empty() && self.signer.key_for(a).is_some())?;
        match self.verifier.arc_seal(&self.signer, sealer, content) {
            Ok(set) => set,
            Err(e) => {
                log::warn!("ARC seal for {sealer}: {e}; sent on without");
                None
            }
        }
    }
}

/// rostfix_arc_seal_resubmitted: the sealing and the names it lists (local users for
/// pickup, SASL login names for smtpd); None when the list is empty.
#[derive(Debug, Clone)]
pub struct Resubmitters {
    pub sealing: Arc<ArcSealing>,
    pub names: Vec<String>,
}

impl Resubmitters {
    pub const PARAM: &'static str = "rostfix_arc_seal_resubmitted";

    pub fn from_config(cf: &MainCf) -> Result<Option<Resubmitters>, ArcSetupError> {
        let names = cf.get_list(Self::PARAM);
        if names.is_empty() {
            return Ok(None);
        }
        Ok(Some(Resubmitters {
            sealing: ArcSealing::load(cf, Self::PARAM)?,
            names,
        }))
    }

    /// `name` is one of the listed submitters.
    pub fn lists(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}
