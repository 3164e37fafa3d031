//! MTA-STS (RFC 8461) in the smtp client: the next-hop domain's policy, asked of the
//! mtasts service (the fetch and the cache live there, see docs/mta-sts.md), and
//! what it makes of each MX host ([`for_host`], a pure function).
//!
//! It applies to next hops found by an MX lookup, at the levels none, may and
//! encrypt, and at the DANE levels when DANE found no usable TLSA records for the
//! host: DANE wins over MTA-STS (RFC 8461 section 2). Explicit verify/secure (main.cf
//! or smtp_tls_policy_maps) are left alone: they already require verified TLS.
//! No policy, or a service that cannot be asked, means delivery as without MTA-STS
//! (section 5: a missing policy is never a reason to hold mail).

use crate::dane::DaneLevel;
use crate::tls::Level;
use rostfix_mtasts::policy::{Mode, Policy};
use rostfix_mtasts::protocol::{policy_call, MtaStsReply};
use std::path::Path;
use std::time::Duration;

/// The domain's policy, when it has one in force (mode none counts as none).
pub fn lookup(domain: &str, timeout: Duration, queue_id: &str) -> Option<Policy> {
    match policy_call(Path::new("."), domain, timeout) {
        Ok(MtaStsReply::Policy { policy, id }) if policy.mode != Mode::None => {
            log::debug!(
                "{queue_id}: {domain}: MTA-STS policy id {id}, mode {}",
                policy.mode.name()
            );
            Some(policy)
        }
        Ok(MtaStsReply::Policy { .. }) => None,
        Ok(MtaStsReply::NoPolicy { why }) => {
            log::debug!("{queue_id}: {domain}: no MTA-STS policy: {why}");
            None
        }
        Err(e) => {
            log::warn!("{queue_id}: {domain}: cannot ask for an MTA-STS policy: {e}");
            None
        }
    }
}

/// Whether a policy is consulted for a host to be reached at `level` (after the
/// DANE decision): not when DANE authenticates it (`dane`: usable TLSA records), and
/// not at verify or secure, which already require verified TLS.
pub fn applies(level: Level, dane: bool) -> bool {
    !dane && level < Level::Dane(DaneLevel::Dane)
}

/// What the policy does for one MX host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// enforce: TLS is mandatory and the certificate must be valid for the host.
    Enforce,
    /// enforce, and the host is not one of the policy's MX: it is skipped.
    Skip(String),
    /// testing: deliver as without the policy; report what enforce would refuse
    /// (`mismatch`: the host is not a policy MX).
    Test { mismatch: Option<String> },
}

/// The action for `host`, an MX host of `domain`.
pub fn for_host(policy: &Policy, domain: &str, host: &str) -> Action {
    let mismatch = (!policy.allows_mx(host))
        .then(|| format!("MX host {host} does not match the MTA-STS policy of {domain}"));
    match (policy.mode, mismatch) {
        (Mode::Enforce, Some(text)) => Action::Skip(text),
        (Mode::Enforce, None) => Action::Enforce,
        (_, mismatch) => Action::Test { mismatch },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: Mode) -> Policy {
        Policy {
            mode,
            mx: vec!["*.sts.example".into(), "mx.other.example".into()],
            max_age: 86400,
        }
    }

    #[test]
    fn enforce_uses_matching_hosts_and_skips_others() {
        let p = policy(Mode::Enforce);
        assert_eq!(
            for_host(&p, "sts.example", "mx1.sts.example"),
            Action::Enforce
        );
        assert_eq!(
            for_host(&p, "sts.example", "MX.OTHER.example."),
            Action::Enforce
        );
        assert_eq!(
            for_host(&p, "sts.example", "evil.example"),
            Action::Skip(
                "MX host evil.example does not match the MTA-STS policy of sts.example".into()
            )
        );
        assert!(matches!(
            for_host(&p, "sts.example", "a.b.sts.example"),
            Action::Skip(_)
        ));
    }

    #[test]
    fn dane_and_explicit_verification_win() {
        assert!(applies(Level::None, false));
        assert!(applies(Level::May, false));
        assert!(applies(Level::Encrypt, false));
        // DANE with usable TLSA records: RFC 8461 section 2.
        assert!(!applies(Level::Dane(DaneLevel::Dane), true));
        assert!(!applies(Level::Dane(DaneLevel::DaneOnly), true));
        // DANE that fell back is passed as the may or encrypt it became (above).
        assert!(!applies(Level::Verify, false));
        assert!(!applies(Level::Secure, false));
    }

    #[test]
    fn testing_never_skips() {
        let p = policy(Mode::Testing);
        assert_eq!(
            for_host(&p, "sts.example", "mx1.sts.example"),
            Action::Test { mismatch: None }
        );
        assert!(matches!(
            for_host(&p, "sts.example", "evil.example"),
            Action::Test { mismatch: Some(_) }
        ));
    }
}
