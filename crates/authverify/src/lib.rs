//! Verification on receipt (issue 15): SPF at HELO and MAIL FROM, every DKIM
//! signature, ARC chains and DMARC with the organisational domain from the public
//! suffix list, reported in one RFC 8601 Authentication-Results header named after
//! myhostname (the authserv-id). smtpd decides which mail is checked and what is
//! done with the results (crates/smtpd/src/session/authverify.rs).
//!
//! SPF, DKIM and ARC are mail-auth's (the pinned 0.13.3, see crates/dkim), on the
//! hickory resolver of rostfix-dns; DMARC is dmarc.rs (psl.rs), the header work
//! header.rs. Every check is bounded in time: a DNS failure or a check past its
//! deadline is a temperror result, never a rejection by itself.

#![forbid(unsafe_code)]

mod arc_seal;
mod arc_sealing;
pub mod dmarc;
mod header;
mod psl;
mod verifier;

pub use arc_seal::SealError;
pub use arc_sealing::{ArcSealing, ArcSetupError, Resubmitters};
pub use dmarc::{DmarcOutcome, DmarcStatus, Policy};
pub use header::strip_forged;
pub use mail_auth::SpfResult;
pub use psl::SuffixList;
pub use verifier::{Iprev, Peer, Report, Verifier};

/// Why verification cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Dns(#[from] rostfix_dns::SetupError),
    #[error("public suffix list {path}: {why}")]
    SuffixList { path: String, why: String },
}

/// The RFC 8601 result name of an SPF result.
pub fn spf_name(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}
