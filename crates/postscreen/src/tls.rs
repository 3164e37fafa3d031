//! STARTTLS in postscreen's own SMTP engine (Postfix's postscreen_starttls.c, which
//! hands the handshake to tlsproxy): postscreen_tls_security_level (default
//! $smtpd_tls_security_level, with the legacy postscreen_use_tls and
//! postscreen_enforce_tls) decides whether the engine offers STARTTLS and whether it
//! insists on it before MAIL. The certificate, protocols and ciphers are smtpd's
//! (smtpd_tls_*), so a client sees the same TLS server on either side of the hand-off.
//!
//! Why it matters: a sending MTA that requires TLS for our domain (MTA-STS enforce,
//! DANE, or a policy table) will not talk in clear to postscreen's engine, so without
//! STARTTLS it could never reach RCPT, never pass the deep protocol tests and never
//! deliver.

use rostfix_config::MainCf;
use rostfix_smtpd::{SecurityLevel, TlsError, TlsSettings};

/// The TLS part of postscreen's settings.
#[derive(Debug, Clone)]
pub struct PostscreenTls {
    /// smtpd's TLS settings with postscreen's level; None when the level is none.
    pub settings: Option<TlsSettings>,
    /// Level encrypt: every command but EHLO/HELO/STARTTLS/NOOP/QUIT needs TLS first.
    pub enforce: bool,
    /// smtpd_tls_loglevel (Postfix's tlsproxy_tls_loglevel default): 1 logs each
    /// handshake.
    pub loglevel: u32,
}

impl PostscreenTls {
    /// Reads postscreen's level into a copy of main.cf so smtpd's own parser applies
    /// it (legacy names, protocol and cipher checks included). Client certificates are
    /// never asked for: no mail is accepted here, so there is nothing to grant.
    pub fn from_config(cf: &MainCf) -> Result<PostscreenTls, TlsError> {
        let mut ours = cf.clone();
        let overrides = [
            (
                "smtpd_tls_security_level",
                cf.get("postscreen_tls_security_level"),
            ),
            ("smtpd_use_tls", cf.get("postscreen_use_tls")),
            ("smtpd_enforce_tls", cf.get("postscreen_enforce_tls")),
            ("smtpd_tls_ask_ccert", "no".to_string()),
            ("smtpd_tls_req_ccert", "no".to_string()),
            ("smtpd_tls_wrappermode", "no".to_string()),
        ];
        for (name, value) in overrides {
            ours.set_override(name, &value)
                .map_err(|_| TlsError::BadValue {
                    name: "postscreen_tls_security_level",
                    value: value.clone(),
                })?;
        }
        let settings = TlsSettings::from_config(&ours)?;
        let enforce = settings.level == SecurityLevel::Encrypt;
        Ok(PostscreenTls {
            settings: (settings.level != SecurityLevel::None).then_some(settings),
            enforce,
            loglevel: cf.get_u32("smtpd_tls_loglevel"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> PostscreenTls {
        let cf = MainCf::parse(text, Path::new("/etc/rostfix/main.cf")).unwrap();
        PostscreenTls::from_config(&cf).unwrap()
    }

    #[test]
    fn level_follows_smtpd_unless_set() {
        assert!(load("").settings.is_none());
        let t = load("smtpd_tls_security_level = may\n");
        assert!(t.settings.is_some() && !t.enforce);
        let t = load("smtpd_tls_security_level = may\npostscreen_tls_security_level = none\n");
        assert!(t.settings.is_none());
        let t = load("postscreen_tls_security_level = encrypt\n");
        assert!(t.settings.is_some() && t.enforce);
        // The legacy names count when no level is set anywhere.
        let t = load("smtpd_use_tls = yes\n");
        assert!(t.settings.is_some() && !t.enforce);
        let t = load("postscreen_enforce_tls = yes\n");
        assert!(t.enforce);
    }

    #[test]
    fn client_certificates_are_never_asked_for() {
        let t = load("smtpd_tls_security_level = may\nsmtpd_tls_ask_ccert = yes\n");
        assert!(!t.settings.unwrap().ask_ccert);
    }

    #[test]
    fn a_bad_level_is_an_error() {
        let cf = MainCf::parse(
            "postscreen_tls_security_level = sometimes\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap();
        assert!(PostscreenTls::from_config(&cf).is_err());
    }
}
