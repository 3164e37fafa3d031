//! SMTP AUTH (RFC 4954) settings and per-session state; the command itself runs in
//! session/auth.rs (a child of session/mod.rs, so it can use the session's I/O).
//!
//! Parameters: smtpd_sasl_auth_enable, smtpd_sasl_type (`dovecot` or `rostfix`),
//! smtpd_sasl_path, smtpd_sasl_service, smtpd_sasl_authenticated_header,
//! smtpd_sasl_local_domain (the realm of logins without one, built-in type only),
//! smtpd_tls_auth_only (implied by smtpd_tls_security_level = encrypt) and
//! smtpd_error_sleep_time (the pause after a failed AUTH).

use crate::sasl::passwd::PasswdDb;
use crate::sasl::{SaslConfig, SaslServer};
use rostfix_config::MainCf;
use std::sync::Arc;
use std::time::Duration;

/// Why the AUTH settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error(
        "smtpd_sasl_type = {0}: unsupported SASL server implementation (use dovecot or rostfix)"
    )]
    Type(String),
    #[error("smtpd_sasl_type = rostfix: {0}")]
    Passwd(crate::sasl::SaslError),
}

/// What AUTH needs from main.cf.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// None: AUTH is off (smtpd_sasl_auth_enable = no).
    pub backend: Option<SaslConfig>,
    pub authenticated_header: bool,
    /// smtpd_tls_auth_only: no AUTH before TLS.
    pub tls_auth_only: bool,
    /// Pause after a failed AUTH (smtpd_error_sleep_time).
    pub failure_delay: Duration,
}

impl Default for AuthSettings {
    fn default() -> AuthSettings {
        AuthSettings {
            backend: None,
            authenticated_header: false,
            tls_auth_only: false,
            failure_delay: Duration::from_secs(1),
        }
    }
}

impl AuthSettings {
    /// Reads the parameters; opens the passwd-file of the built-in type now (before
    /// confinement). Returns warnings to log.
    pub fn from_config(
        cf: &MainCf,
        tls_encrypt: bool,
    ) -> Result<(AuthSettings, Vec<String>), AuthConfigError> {
        let mut warnings = Vec::new();
        let mut s = AuthSettings {
            authenticated_header: cf.get_bool("smtpd_sasl_authenticated_header"),
            tls_auth_only: tls_encrypt || cf.get_bool("smtpd_tls_auth_only"),
            failure_delay: cf.get_time("smtpd_error_sleep_time"),
            ..AuthSettings::default()
        };
        let get = |name: &str| cf.get(name);
        if !cf.get_bool("smtpd_sasl_auth_enable") {
            return Ok((s, warnings));
        }
        let path = get("smtpd_sasl_path").trim().to_string();
        let service = match get("smtpd_sasl_service").trim() {
            "" => "smtp".to_string(),
            v => v.to_string(),
        };
        let kind = get("smtpd_sasl_type").trim().to_ascii_lowercase();
        s.backend = Some(match kind.as_str() {
            "dovecot" => SaslConfig::Dovecot {
                path: if path.is_empty() {
                    "private/auth".into()
                } else {
                    path
                },
                service,
            },
            "rostfix" => {
                let (db, w) = PasswdDb::load(&path).map_err(AuthConfigError::Passwd)?;
                warnings.extend(w);
                // Dovecot ignores the realm Postfix passes it; so does our Dovecot
                // client, and only the built-in table applies it.
                let db = db.with_realm(&get("smtpd_sasl_local_domain"));
                SaslConfig::Rostfix(Arc::new(db))
            }
            other => return Err(AuthConfigError::Type(other.to_string())),
        });
        Ok((s, warnings))
    }
}

/// One session's AUTH state.
#[derive(Default)]
pub struct AuthState {
    /// The back end, opened on first use.
    pub server: Option<Box<dyn SaslServer>>,
    /// Set after a successful AUTH.
    pub username: Option<String>,
    pub method: Option<String>,
}

impl AuthState {
    /// `, sasl_method=PLAIN, sasl_username=alice` for the `ID: client=` log line.
    pub fn log_suffix(&self) -> String {
        match (&self.method, &self.username) {
            (Some(m), Some(u)) => format!(", sasl_method={m}, sasl_username={}", clean(u)),
            _ => String::new(),
        }
    }

    /// Queue file attributes (Postfix's `sasl_method`, `sasl_username`).
    pub fn queue_attrs(&self) -> Vec<(String, String)> {
        match (&self.method, &self.username) {
            (Some(m), Some(u)) => vec![
                ("sasl_method".to_string(), m.clone()),
                ("sasl_username".to_string(), clean(u)),
            ],
            _ => Vec::new(),
        }
    }
}

/// A user name with control characters replaced, safe for logs, headers and the
/// NUL-separated queue file.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Adds `(Authenticated sender: USER)` to a Received: header before its `by` line, as
/// Postfix does with smtpd_sasl_authenticated_header = yes.
pub fn received_with_user(header: String, user: Option<&str>) -> String {
    let Some(user) = user else {
        return header;
    };
    match header.find("\n\tby ") {
        Some(i) => {
            let mut h = header;
            h.insert_str(
                i + 1,
                &format!("\t(Authenticated sender: {})\n", clean(user)),
            );
            h
        }
        None => header,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::test_config;

    fn load(pairs: &[(&str, &str)], enc: bool) -> Result<AuthSettings, AuthConfigError> {
        let cf = test_config(pairs).expect("valid main.cf");
        AuthSettings::from_config(&cf, enc).map(|(s, _)| s)
    }

    #[test]
    fn settings() {
        let s = load(&[], false).unwrap();
        assert!(s.backend.is_none());
        assert!(!s.tls_auth_only);
        let s = load(&[], true).unwrap();
        assert!(s.tls_auth_only);
        let s = load(
            &[
                ("smtpd_sasl_auth_enable", "yes"),
                ("smtpd_sasl_type", "dovecot"),
                ("smtpd_sasl_path", "private/auth"),
                ("smtpd_error_sleep_time", "0"),
            ],
            false,
        )
        .unwrap();
        assert!(
            matches!(s.backend, Some(SaslConfig::Dovecot { ref path, .. }) if path == "private/auth")
        );
        assert_eq!(s.failure_delay, Duration::ZERO);
        assert!(matches!(
            load(
                &[
                    ("smtpd_sasl_auth_enable", "yes"),
                    ("smtpd_sasl_type", "cyrus")
                ],
                false
            ),
            Err(AuthConfigError::Type(_))
        ));
        assert!(matches!(
            load(
                &[
                    ("smtpd_sasl_auth_enable", "yes"),
                    ("smtpd_sasl_type", "rostfix"),
                    ("smtpd_sasl_path", "/nonexistent/sasl_passwd")
                ],
                false
            ),
            Err(AuthConfigError::Passwd(_))
        ));
    }

    #[test]
    fn log_and_header_forms() {
        let st = AuthState {
            server: None,
            username: Some("al\nice".into()),
            method: Some("PLAIN".into()),
        };
        assert_eq!(st.log_suffix(), ", sasl_method=PLAIN, sasl_username=al?ice");
        assert_eq!(st.queue_attrs()[1].1, "al?ice");
        let h = "Received: from a (b [1.2.3.4])\n\tby mx (Rostfix) with ESMTPA id X;\n\tdate\n"
            .to_string();
        assert_eq!(
            received_with_user(h.clone(), Some("alice")),
            "Received: from a (b [1.2.3.4])\n\t(Authenticated sender: alice)\n\tby mx (Rostfix) with ESMTPA id X;\n\tdate\n"
        );
        assert_eq!(received_with_user(h.clone(), None), h);
    }
}
