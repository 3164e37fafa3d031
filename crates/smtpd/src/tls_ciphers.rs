//! smtpd_tls_ciphers / smtpd_tls_mandatory_ciphers (the minimum cipher grade) and
//! smtpd_tls_exclude_ciphers / smtpd_tls_mandatory_exclude_ciphers (OpenSSL-style names
//! to leave out), applied to rustls's cipher suites.
//!
//! Every suite rustls offers is an ECDHE key exchange with an AEAD cipher of 128 bits or
//! more, which OpenSSL grades "HIGH"; so any grade from `export` up to `high` is met by
//! all of them and only narrows nothing. `null` (no encryption at all) cannot be had
//! and is a configuration error rather than a silent upgrade. Exclusions match the
//! OpenSSL names and aliases Postfix administrators write (`AES128`, `CHACHA20`,
//! `aRSA`, `SHA384`, a full suite name, ...); names of ciphers rustls never offers
//! (`RC4`, `3DES`, `aNULL`, `MD5`, `kRSA`, ...) exclude nothing, which is what they
//! ask for. As in Postfix (where the OpenSSL cipher list does not govern TLS 1.3),
//! exclusions apply to the TLS 1.2 suites only; TLS 1.3's three suites stay. If the
//! exclusions leave no suite at all, smtpd refuses to start with a clear error.

use rustls::crypto::CryptoProvider;
use rustls::{CipherSuite, SupportedCipherSuite};

/// The OpenSSL names a suite answers to: its OpenSSL name plus the aliases
/// (cipher, mode, MAC, key exchange, authentication) used in exclusion lists.
fn aliases(suite: CipherSuite) -> &'static [&'static str] {
    match suite {
        CipherSuite::TLS13_AES_256_GCM_SHA384 => &[
            "TLS_AES_256_GCM_SHA384",
            "AES256",
            "AES",
            "AESGCM",
            "SHA384",
            "TLSv1.3",
        ],
        CipherSuite::TLS13_AES_128_GCM_SHA256 => &[
            "TLS_AES_128_GCM_SHA256",
            "AES128",
            "AES",
            "AESGCM",
            "SHA256",
            "TLSv1.3",
        ],
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => &[
            "TLS_CHACHA20_POLY1305_SHA256",
            "CHACHA20",
            "SHA256",
            "TLSv1.3",
        ],
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => &[
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "AES256",
            "AES",
            "AESGCM",
            "SHA384",
            "ECDHE",
            "kECDHE",
            "EECDH",
            "aECDSA",
            "ECDSA",
            "TLSv1.2",
        ],
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => &[
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "AES128",
            "AES",
            "AESGCM",
            "SHA256",
            "ECDHE",
            "kECDHE",
            "EECDH",
            "aECDSA",
            "ECDSA",
            "TLSv1.2",
        ],
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => &[
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "CHACHA20",
            "SHA256",
            "ECDHE",
            "kECDHE",
            "EECDH",
            "aECDSA",
            "ECDSA",
            "TLSv1.2",
        ],
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => &[
            "ECDHE-RSA-AES256-GCM-SHA384",
            "AES256",
            "AES",
            "AESGCM",
            "SHA384",
            "ECDHE",
            "kECDHE",
            "EECDH",
            "aRSA",
            "TLSv1.2",
        ],
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => &[
            "ECDHE-RSA-AES128-GCM-SHA256",
            "AES128",
            "AES",
            "AESGCM",
            "SHA256",
            "ECDHE",
            "kECDHE",
            "EECDH",
            "aRSA",
            "TLSv1.2",
        ],
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => &[
            "ECDHE-RSA-CHACHA20-POLY1305",
            "CHACHA20",
            "SHA256",
            "ECDHE",
            "kECDHE",
            "EECDH",
            "aRSA",
            "TLSv1.2",
        ],
        _ => &[],
    }
}

/// A bad cipher setting, named by parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error(
        "{param} = {value}: unknown cipher grade (expected export, low, medium, high or null)"
    )]
    BadGrade { param: &'static str, value: String },
    #[error("{param} = null: null ciphers (no encryption) are not available with rustls")]
    NullGrade { param: &'static str },
    #[error("{params}: the exclusions leave no cipher suite")]
    NothingLeft { params: String },
}

/// The cipher settings for one smtpd: the grade parameter it obeys and the names to
/// exclude (from both exclusion parameters that apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherPolicy {
    pub grade_param: &'static str,
    pub exclude: Vec<String>,
    pub exclude_params: String,
}

impl CipherPolicy {
    /// Postfix's defaults: grade medium, nothing excluded.
    pub fn unrestricted() -> CipherPolicy {
        CipherPolicy {
            grade_param: "smtpd_tls_ciphers",
            exclude: Vec::new(),
            exclude_params: "smtpd_tls_exclude_ciphers".to_string(),
        }
    }

    /// Reads the parameters: `mandatory` (security level encrypt) uses the mandatory
    /// grade and adds smtpd_tls_mandatory_exclude_ciphers, as Postfix does.
    pub fn from_lookup(
        get: &impl Fn(&str) -> String,
        mandatory: bool,
    ) -> Result<CipherPolicy, CipherError> {
        let grade_param = if mandatory {
            "smtpd_tls_mandatory_ciphers"
        } else {
            "smtpd_tls_ciphers"
        };
        let grade = get(grade_param).trim().to_ascii_lowercase();
        match grade.as_str() {
            "" | "export" | "low" | "medium" | "high" => {}
            "null" => return Err(CipherError::NullGrade { param: grade_param }),
            _ => {
                return Err(CipherError::BadGrade {
                    param: grade_param,
                    value: grade,
                })
            }
        }
        let mut params = vec!["smtpd_tls_exclude_ciphers"];
        if mandatory {
            params.push("smtpd_tls_mandatory_exclude_ciphers");
        }
        let exclude = params
            .iter()
            .flat_map(|p| rostfix_config::split_list(&get(p)))
            .map(|name| name.trim_start_matches(['!', '-']).to_string())
            .filter(|name| !name.is_empty())
            .collect();
        Ok(CipherPolicy {
            grade_param,
            exclude,
            exclude_params: params.join(", "),
        })
    }

    /// The suites of `all` that the exclusions leave, in rustls's preference order.
    pub fn filter(
        &self,
        all: &[SupportedCipherSuite],
    ) -> Result<Vec<SupportedCipherSuite>, CipherError> {
        let kept: Vec<SupportedCipherSuite> = all
            .iter()
            .copied()
            .filter(|s| {
                if s.tls13().is_some() {
                    return true;
                }
                let names = aliases(s.suite());
                !self
                    .exclude
                    .iter()
                    .any(|x| names.iter().any(|n| n.eq_ignore_ascii_case(x)))
            })
            .collect();
        if kept.is_empty() {
            return Err(CipherError::NothingLeft {
                params: self.exclude_params.clone(),
            });
        }
        Ok(kept)
    }

    /// A crypto provider offering only the suites this policy leaves.
    pub fn provider(&self, base: CryptoProvider) -> Result<CryptoProvider, CipherError> {
        let cipher_suites = self.filter(&base.cipher_suites)?;
        Ok(CryptoProvider {
            cipher_suites,
            ..base
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn policy(pairs: &[(&str, &str)], mandatory: bool) -> Result<CipherPolicy, CipherError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        CipherPolicy::from_lookup(
            &|n: &str| map.get(n).copied().unwrap_or("").to_string(),
            mandatory,
        )
    }

    fn ring() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    #[test]
    fn every_rustls_suite_has_names() {
        for s in ring().cipher_suites {
            assert!(!aliases(s.suite()).is_empty(), "{:?}", s.suite());
        }
    }

    #[test]
    fn grades_up_to_high_keep_every_suite() {
        for g in ["", "export", "low", "medium", "high", "HIGH"] {
            let p = policy(&[("smtpd_tls_ciphers", g)], false).unwrap();
            assert_eq!(
                p.filter(&ring().cipher_suites).unwrap().len(),
                ring().cipher_suites.len()
            );
        }
    }

    #[test]
    fn null_and_unknown_grades_are_errors_naming_the_parameter() {
        let e = policy(&[("smtpd_tls_mandatory_ciphers", "null")], true).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("smtpd_tls_mandatory_ciphers = null"));
        let e = policy(&[("smtpd_tls_ciphers", "strong")], false).unwrap_err();
        assert!(e.to_string().contains("smtpd_tls_ciphers = strong"));
    }

    #[test]
    fn exclusions_remove_matching_suites_only() {
        let p = policy(
            &[("smtpd_tls_exclude_ciphers", "aNULL, RC4, CHACHA20, AES128")],
            false,
        )
        .unwrap();
        let kept = p.filter(&ring().cipher_suites).unwrap();
        assert!(!kept.is_empty());
        for s in kept.iter().filter(|s| s.tls13().is_none()) {
            let names = aliases(s.suite());
            assert!(names.contains(&"AES256"), "{:?} kept", s.suite());
        }
        // TLS 1.3's suites are not governed by the exclusions, as in Postfix.
        assert_eq!(kept.iter().filter(|s| s.tls13().is_some()).count(), 3);
    }

    #[test]
    fn mandatory_exclusions_apply_only_at_encrypt() {
        let pairs = [("smtpd_tls_mandatory_exclude_ciphers", "AES256")];
        let may = policy(&pairs, false).unwrap();
        assert_eq!(
            may.filter(&ring().cipher_suites).unwrap().len(),
            ring().cipher_suites.len()
        );
        let encrypt = policy(&pairs, true).unwrap();
        let kept = encrypt.filter(&ring().cipher_suites).unwrap();
        assert!(kept
            .iter()
            .filter(|s| s.tls13().is_none())
            .all(|s| !aliases(s.suite()).contains(&"AES256")));
    }

    #[test]
    fn excluding_everything_is_an_error() {
        let p = policy(&[("smtpd_tls_exclude_ciphers", "AES, CHACHA20")], false).unwrap();
        let tls12_only: Vec<SupportedCipherSuite> = ring()
            .cipher_suites
            .into_iter()
            .filter(|s| s.tls13().is_none())
            .collect();
        let e = p.filter(&tls12_only).unwrap_err();
        assert_eq!(
            e.to_string(),
            "smtpd_tls_exclude_ciphers: the exclusions leave no cipher suite"
        );
        // With TLS 1.3 available, its suites remain.
        assert_eq!(p.filter(&ring().cipher_suites).unwrap().len(), 3);
    }
}
