//! The settings of verification on receipt (crates/authverify): which mail is
//! checked (rostfix_auth_verify), the deadline of one check
//! (rostfix_auth_verify_timeout), the public suffix list, and what is done with a
//! DMARC failure (rostfix_dmarc_reject_policy, rostfix_dmarc_quarantine_policy, with
//! the exception tables rostfix_dmarc_exception_maps). Read once, before the chroot: the suffix list and
//! /etc/resolv.conf are not readable afterwards. The session side is
//! session/authverify.rs.

use rostfix_authverify::Verifier;
use rostfix_config::MainCf;
use rostfix_maps::{Map, MapError};
use std::sync::Arc;
use std::time::Duration;

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthVerifyError {
    #[error("rostfix_auth_verify: {0:?}: want no, outside or all")]
    Scope(String),
    #[error("rostfix_auth_verify: {0}")]
    Setup(#[from] rostfix_authverify::VerifyError),
    #[error("rostfix_dmarc_exception_maps: {0}")]
    Table(#[from] MapError),
}

/// Which mail gets an Authentication-Results header and the DMARC policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Mail from clients outside mynetworks that did not authenticate: mail from
    /// elsewhere, which is what a receiver verifies (our own mail is signed instead).
    Outside,
    /// Every message, also from mynetworks and authenticated clients.
    All,
}

/// Verification of received mail.
pub struct AuthVerify {
    pub verifier: Arc<Verifier>,
    pub scope: Scope,
    /// rostfix_dmarc_reject_policy: answer a p=reject failure with 550 5.7.1.
    pub dmarc_reject: bool,
    /// rostfix_dmarc_quarantine_policy: a p=quarantine failure goes to hold/.
    pub dmarc_quarantine: bool,
    exceptions: Vec<Box<dyn Map>>,
}

impl std::fmt::Debug for AuthVerify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthVerify")
            .field("scope", &self.scope)
            .field("dmarc_reject", &self.dmarc_reject)
            .finish()
    }
}

/// The verification settings when on, and the verifier when anything uses it.
pub type Configured = (Option<Arc<AuthVerify>>, Option<Arc<Verifier>>);

/// The per-query DNS timeout: each query is also bounded by the whole check's
/// deadline, whichever comes first.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

impl AuthVerify {
    /// The verification settings (None when rostfix_auth_verify = no) and the
    /// verifier, which reject_spf_fail uses even then (`spf_restriction`).
    pub fn from_config(
        cf: &MainCf,
        myhostname: &str,
        spf_restriction: bool,
    ) -> Result<Configured, AuthVerifyError> {
        let value = cf.get("rostfix_auth_verify");
        let scope = match value.trim().to_ascii_lowercase().as_str() {
            "no" | "" => None,
            "outside" | "yes" => Some(Scope::Outside),
            "all" => Some(Scope::All),
            other => return Err(AuthVerifyError::Scope(other.to_string())),
        };
        if scope.is_none() && !spf_restriction {
            return Ok((None, None));
        }
        let servers = cf.get_list("rostfix_dns_servers");
        let deadline = cf
            .get_time("rostfix_auth_verify_timeout")
            .max(Duration::from_secs(1));
        let verifier = Arc::new(Verifier::new(
            &servers,
            QUERY_TIMEOUT.min(deadline),
            deadline,
            cf.get("rostfix_public_suffix_list").trim(),
            myhostname,
        )?);
        let Some(scope) = scope else {
            return Ok((None, Some(verifier)));
        };
        let mut exceptions = Vec::new();
        for spec in cf.get_list("rostfix_dmarc_exception_maps") {
            exceptions.push(rostfix_maps::open_map(&spec)?);
        }
        let settings = AuthVerify {
            verifier: verifier.clone(),
            scope,
            dmarc_reject: cf.get_bool("rostfix_dmarc_reject_policy"),
            dmarc_quarantine: cf.get_bool("rostfix_dmarc_quarantine_policy"),
            exceptions,
        };
        Ok((Some(Arc::new(settings)), Some(verifier)))
    }

    /// The From: domain or its organisational domain is listed in
    /// rostfix_dmarc_exception_maps (any value: OpenDMARC's IgnoreDomains). A lookup
    /// error is an Err: the caller does not reject on a table it cannot read.
    pub fn exempt(&self, from_domain: &str, org_domain: &str) -> Result<bool, MapError> {
        for table in &self.exceptions {
            for key in [from_domain, org_domain] {
                if table.lookup(key)?.is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{test_config, Settings, SettingsError};

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let mut all = vec![
            ("myhostname", "mx.example.net"),
            ("local_recipient_maps", ""),
        ];
        all.extend_from_slice(pairs);
        Settings::from_config(&test_config(&all)?, None).map(|(s, _)| s)
    }

    /// A suffix list file of our own, so the test does not depend on the host's.
    fn suffix_list() -> String {
        let path = std::env::temp_dir().join(format!("rostfix-psl-{}.dat", std::process::id()));
        std::fs::write(
            &path,
            "// ===BEGIN ICANN DOMAINS===\ncom\n// ===END ICANN DOMAINS===\n",
        )
        .unwrap();
        path.display().to_string()
    }

    #[test]
    fn off_by_default_and_no_verifier_without_a_user() {
        let s = settings(&[]).unwrap();
        assert!(s.auth_verify.is_none());
        assert!(s.restrictions.auth_verifier.is_none());
    }

    #[test]
    fn scopes_and_the_spf_restriction_alone() {
        let psl = suffix_list();
        let dns = ("rostfix_dns_servers", "127.0.0.1:9");
        let s = settings(&[
            ("rostfix_auth_verify", "outside"),
            ("rostfix_public_suffix_list", &psl),
            dns,
        ])
        .unwrap();
        let av = s.auth_verify.expect("verification on");
        assert_eq!(av.scope, Scope::Outside);
        assert!(!av.dmarc_reject && !av.dmarc_quarantine);
        assert_eq!(av.verifier.authserv_id(), "mx.example.net");
        assert!(s.restrictions.auth_verifier.is_some());
        let s = settings(&[
            ("rostfix_auth_verify", "all"),
            ("rostfix_public_suffix_list", &psl),
            dns,
        ])
        .unwrap();
        assert_eq!(s.auth_verify.map(|a| a.scope), Some(Scope::All));
        // reject_spf_fail alone: the verifier without header writing.
        let s = settings(&[
            ("smtpd_sender_restrictions", "reject_spf_fail"),
            ("rostfix_public_suffix_list", &psl),
            dns,
        ])
        .unwrap();
        assert!(s.auth_verify.is_none());
        assert!(s.restrictions.auth_verifier.is_some());
    }

    #[test]
    fn bad_values_stop_smtpd_naming_the_parameter() {
        let e = settings(&[("rostfix_auth_verify", "sometimes")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("rostfix_auth_verify: \"sometimes\""),
            "{e}"
        );
        let e = settings(&[
            ("rostfix_auth_verify", "outside"),
            ("rostfix_public_suffix_list", "/nonexistent/psl.dat"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/psl.dat"), "{e}");
    }
}
