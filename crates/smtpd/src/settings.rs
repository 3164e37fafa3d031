//! The main.cf parameters smtpd uses, read once before confinement and validated.
//!
//! [`Settings::from_lookup`] takes a `name -> expanded value` function (main.rs passes
//! `MainCf::get`) so that the parsing is testable without a configuration file, and so
//! that a parameter the configuration library does not (yet) know, which expands to
//! the empty string, falls back to Postfix's default here.

use crate::cidr::{Cidr, CidrError, NetworkList};
use crate::limits::ProtoSettings;
use crate::policy::normalize_domain;
use crate::tls::{SecurityLevel, TlsError, TlsSettings};
use std::time::Duration;

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("bad {name} value: {value}")]
    BadValue { name: &'static str, value: String },
    #[error("mynetworks: {0}")]
    Networks(#[from] CidrError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("myhostname is empty and the system host name is unknown")]
    NoHostname,
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error(transparent)]
    Restrictions(#[from] crate::restrictions::config::ConfigError),
}

/// What smtpd needs from main.cf.
#[derive(Debug, Clone)]
pub struct Settings {
    pub myhostname: String,
    /// The greeting text after `220 `.
    pub banner: String,
    /// Lowercased, trailing dot removed.
    pub mydestination: Vec<String>,
    pub mynetworks: NetworkList,
    /// Bytes; 0 means no limit.
    pub message_size_limit: u64,
    /// queue_minfree: bytes that must stay free in the queue file system.
    pub queue_minfree: u64,
    pub timeout: Duration,
    /// smtpd_per_record_deadline: `timeout` bounds a whole record, not each read
    /// (Postfix's default turns it on under stress).
    pub per_record_deadline: bool,
    pub recipient_limit: usize,
    pub line_length_limit: usize,
    pub hopcount_limit: u32,
    pub hard_error_limit: u32,
    pub junk_command_limit: u32,
    pub tls: TlsSettings,
    /// Protocol safety and abuse limits (limits.rs).
    pub proto: ProtoSettings,
    /// SMTP AUTH (auth.rs).
    pub auth: crate::auth::AuthSettings,
    /// The restriction lists (restrictions/config.rs), shared: tables are not Clone.
    pub restrictions: std::sync::Arc<crate::restrictions::config::RestrictionConfig>,
}

impl Settings {
    /// Postfix's defaults for `myhostname`, with mynetworks = loopback.
    pub fn defaults(myhostname: &str) -> Settings {
        let mynetworks = NetworkList::parse(["127.0.0.0/8", "[::1]/128"]).unwrap_or_default();
        Settings {
            proto: ProtoSettings::defaults(&mynetworks),
            auth: crate::auth::AuthSettings::default(),
            restrictions: std::sync::Arc::new(
                crate::restrictions::config::RestrictionConfig::defaults(),
            ),
            myhostname: myhostname.to_string(),
            banner: format!("{myhostname} ESMTP Rostfix"),
            mydestination: vec![normalize_domain(myhostname), "localhost".into()],
            mynetworks: NetworkList::parse(["127.0.0.0/8", "[::1]/128"]).unwrap_or_default(),
            message_size_limit: 10_240_000,
            queue_minfree: 0,
            timeout: Duration::from_secs(300),
            per_record_deadline: false,
            recipient_limit: 1000,
            line_length_limit: 2048,
            hopcount_limit: 50,
            hard_error_limit: 20,
            junk_command_limit: 100,
            tls: TlsSettings {
                level: SecurityLevel::None,
                cert_file: String::new(),
                key_file: String::new(),
                wrappermode: false,
                protocols: ">=TLSv1.2".into(),
                protocols_param: "smtpd_tls_protocols",
                ciphers: crate::tls_ciphers::CipherPolicy::unrestricted(),
            },
        }
    }

    /// Reads every parameter through `get`. Returns the settings and warnings to log
    /// (table lookups in mydestination/mynetworks are not supported yet and skipped).
    pub fn from_lookup(
        get: impl Fn(&str) -> String,
        system_hostname: Option<String>,
    ) -> Result<(Settings, Vec<String>), SettingsError> {
        let mut warnings = Vec::new();
        let myhostname = match get("myhostname").trim() {
            "" => system_hostname
                .filter(|h| !h.is_empty())
                .ok_or(SettingsError::NoHostname)?,
            h => h.to_string(),
        };
        let mut s = Settings::defaults(&myhostname);
        let banner = get("smtpd_banner");
        if !banner.trim().is_empty() {
            s.banner = banner.trim().to_string();
        }
        let dest = get("mydestination");
        if !dest.trim().is_empty() {
            s.mydestination = Vec::new();
            for item in split_list(&dest) {
                if is_table(item) {
                    warnings.push(format!(
                        "mydestination: lookup table {item} is not supported yet; ignored"
                    ));
                } else {
                    s.mydestination.push(normalize_domain(item));
                }
            }
        }
        let nets = get("mynetworks");
        if !nets.trim().is_empty() {
            let mut patterns = Vec::new();
            for item in split_list(&nets) {
                if Cidr::parse(item).is_err() && is_table(item) {
                    warnings.push(format!(
                        "mynetworks: lookup table {item} is not supported yet; ignored"
                    ));
                } else {
                    patterns.push(item);
                }
            }
            s.mynetworks = NetworkList::parse(patterns)?;
        }
        s.message_size_limit = int_param(&get, "message_size_limit", s.message_size_limit)?;
        s.queue_minfree = int_param(&get, "queue_minfree", s.queue_minfree)?;
        s.timeout = time_param(&get, "smtpd_timeout", s.timeout)?;
        s.per_record_deadline = bool_param(&get, "smtpd_per_record_deadline", false)?;
        s.recipient_limit =
            int_param(&get, "smtpd_recipient_limit", s.recipient_limit as u64)? as usize;
        s.line_length_limit =
            int_param(&get, "line_length_limit", s.line_length_limit as u64)?.max(64) as usize;
        s.hopcount_limit = clamp_u32(int_param(
            &get,
            "hopcount_limit",
            u64::from(s.hopcount_limit),
        )?);
        s.hard_error_limit = clamp_u32(int_param(
            &get,
            "smtpd_hard_error_limit",
            u64::from(s.hard_error_limit),
        )?);
        s.junk_command_limit = clamp_u32(int_param(
            &get,
            "smtpd_junk_command_limit",
            u64::from(s.junk_command_limit),
        )?);
        s.tls = TlsSettings::from_lookup(&get)?;
        s.proto = ProtoSettings::from_lookup(&get, &s.mynetworks, &mut warnings)?;
        let (auth, w) =
            crate::auth::AuthSettings::from_lookup(&get, s.tls.level == SecurityLevel::Encrypt)?;
        s.auth = auth;
        warnings.extend(w);
        let (rc, w) = crate::restrictions::config::RestrictionConfig::from_lookup(&get)?;
        s.restrictions = std::sync::Arc::new(rc);
        warnings.extend(w);
        Ok((s, warnings))
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Postfix list syntax: commas and white space separate.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|i| !i.is_empty())
}

/// `type:name` lookup tables and `/file` patterns.
fn is_table(item: &str) -> bool {
    if item.starts_with('/') {
        return true;
    }
    match item.split_once(':') {
        Some((ty, _)) => {
            !ty.is_empty()
                && ty
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }
        None => false,
    }
}

pub(crate) fn int_param(
    get: &impl Fn(&str) -> String,
    name: &'static str,
    default: u64,
) -> Result<u64, SettingsError> {
    let v = get(name);
    let v = v.trim();
    if v.is_empty() {
        return Ok(default);
    }
    v.parse().map_err(|_| SettingsError::BadValue {
        name,
        value: v.to_string(),
    })
}

pub(crate) fn bool_param(
    get: &impl Fn(&str) -> String,
    name: &'static str,
    default: bool,
) -> Result<bool, SettingsError> {
    let v = get(name);
    match v.trim().to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        other => Err(SettingsError::BadValue {
            name,
            value: other.to_string(),
        }),
    }
}

pub(crate) fn time_param(
    get: &impl Fn(&str) -> String,
    name: &'static str,
    default: Duration,
) -> Result<Duration, SettingsError> {
    let v = get(name);
    let v = v.trim();
    if v.is_empty() {
        return Ok(default);
    }
    parse_time(v).ok_or_else(|| SettingsError::BadValue {
        name,
        value: v.to_string(),
    })
}

/// `300`, `300s`, `5m`, `1h`, `1d`, `1w` (bare numbers are seconds).
pub fn parse_time(v: &str) -> Option<Duration> {
    let (num, unit) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], c),
        _ => (v, 's'),
    };
    let n: u64 = num.parse().ok()?;
    let mult = match unit.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(mult)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<(Settings, Vec<String>), SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(
            |n| map.get(n).cloned().unwrap_or_default(),
            Some("sys.example".into()),
        )
    }

    #[test]
    fn defaults_when_unset() {
        let (s, w) = load(&[]).unwrap();
        assert!(w.is_empty());
        assert_eq!(s.myhostname, "sys.example");
        assert_eq!(s.banner, "sys.example ESMTP Rostfix");
        assert_eq!(s.mydestination, vec!["sys.example", "localhost"]);
        assert_eq!(s.message_size_limit, 10_240_000);
        assert_eq!(s.timeout, Duration::from_secs(300));
        assert_eq!(s.hard_error_limit, 20);
        assert!(!s.per_record_deadline);
        assert!(s.mynetworks.contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn per_record_deadline_is_read() {
        let (s, _) = load(&[("smtpd_per_record_deadline", "yes")]).unwrap();
        assert!(s.per_record_deadline);
        assert!(load(&[("smtpd_per_record_deadline", "maybe")]).is_err());
    }

    #[test]
    fn explicit_values() {
        let (s, w) = load(&[
            ("myhostname", "mx.example.com"),
            ("smtpd_banner", "mx.example.com ESMTP hi"),
            ("mydestination", "MX.Example.com., localhost hash:/etc/x"),
            ("mynetworks", "192.0.2.0/24, [2001:db8::]/32 cidr:/etc/y"),
            ("message_size_limit", "1000"),
            ("smtpd_timeout", "10s"),
            ("smtpd_recipient_limit", "5"),
            ("hopcount_limit", "3"),
        ])
        .unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(s.banner, "mx.example.com ESMTP hi");
        assert_eq!(s.mydestination, vec!["mx.example.com", "localhost"]);
        assert!(s.mynetworks.contains("192.0.2.9".parse().unwrap()));
        assert!(!s.mynetworks.contains("127.0.0.1".parse().unwrap()));
        assert_eq!(s.message_size_limit, 1000);
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.recipient_limit, 5);
        assert_eq!(s.hopcount_limit, 3);
    }

    #[test]
    fn bad_values() {
        assert!(load(&[("message_size_limit", "lots")]).is_err());
        assert!(load(&[("smtpd_timeout", "5x")]).is_err());
        assert!(load(&[("mynetworks", "300.0.0.0/8")]).is_err());
        assert!(Settings::from_lookup(|_| String::new(), None).is_err());
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("300"), Some(Duration::from_secs(300)));
        assert_eq!(parse_time("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_time("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_time("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_time("s"), None);
        assert_eq!(parse_time(""), None);
    }
}
