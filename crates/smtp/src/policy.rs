//! The TLS policy of one delivery: the default smtp_tls_security_level, overridden per
//! next hop by smtp_tls_policy_maps (`destination level [match=a:b] ...`), and the
//! names a certificate must match at `verify` (smtp_tls_verify_cert_match, default the
//! server host name) or `secure` (smtp_tls_secure_cert_match, the next-hop domain).
//!
//! Lookup keys are Postfix's: the next hop exactly as in the request (`example.com`,
//! `[mail.example.com]:587`), then for a domain each parent as `.parent`. A lookup error
//! or a value with an unknown level is a temporary failure (the mail waits) rather than
//! a silent downgrade. `dot-nexthop` (any subdomain) is not supported: only exact names
//! are matched (partial, documented). Other attributes (`ciphers=`, `protocols=`,
//! `exclude=`) are ignored.

use crate::tls::Level;
use rostfix_maps::Map;
use thiserror::Error;

/// The level and match names for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub level: Level,
    /// `match=` names from the policy table, if any (colon-separated in the table).
    pub matches: Option<Vec<String>>,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    #[error("TLS policy lookup for {0} failed: {1}")]
    Lookup(String, String),
    #[error("invalid TLS security level \"{1}\" for destination {0}")]
    BadLevel(String, String),
}

/// Finds the policy for `nexthop` (as in the delivery request).
pub fn lookup(maps: &[Box<dyn Map>], nexthop: &str, default: Level) -> Result<Policy, PolicyError> {
    for key in keys(nexthop) {
        for map in maps {
            match map.lookup(&key) {
                Ok(Some(value)) => return parse_value(nexthop, &value),
                Ok(None) => {}
                Err(e) => return Err(PolicyError::Lookup(nexthop.to_string(), e.to_string())),
            }
        }
    }
    Ok(Policy {
        level: default,
        matches: None,
    })
}

/// The keys in lookup order.
pub fn keys(nexthop: &str) -> Vec<String> {
    let hop = nexthop.trim().to_ascii_lowercase();
    let mut keys = vec![hop.clone()];
    if !hop.starts_with('[') && !hop.contains(':') {
        let mut rest = hop.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            keys.push(format!(".{parent}"));
            rest = parent;
        }
    }
    keys
}

/// Parses `level attr=value ...`.
pub fn parse_value(nexthop: &str, value: &str) -> Result<Policy, PolicyError> {
    let mut words = value.split_whitespace();
    let level_word = words.next().unwrap_or("");
    let level = Level::parse(level_word)
        .ok_or_else(|| PolicyError::BadLevel(nexthop.to_string(), level_word.to_string()))?;
    let mut matches = None;
    for w in words {
        if let Some(m) = w.strip_prefix("match=") {
            matches = Some(
                m.split(':')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    Ok(Policy { level, matches })
}

/// Expands match keywords into names: `hostname` is the server's host name, `nexthop`
/// the next-hop domain; other words are literal names. `dot-nexthop` is dropped.
pub fn match_names(patterns: &[String], hostname: &str, nexthop_domain: &str) -> Vec<String> {
    let mut names = Vec::new();
    for p in patterns {
        let name = match p.to_ascii_lowercase().as_str() {
            "hostname" => hostname.to_string(),
            "nexthop" => nexthop_domain.to_string(),
            "dot-nexthop" => continue,
            other => other.trim_start_matches('.').to_string(),
        };
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rostfix_maps::open_map;

    #[test]
    fn key_order() {
        assert_eq!(
            keys("mx.b.example.com"),
            vec![".b.example.com", ".example.com", ".com"]
                .into_iter()
                .fold(vec!["mx.b.example.com".to_string()], |mut v, k| {
                    v.push(k.to_string());
                    v
                })
        );
        assert_eq!(keys("[127.0.0.1]:2587"), vec!["[127.0.0.1]:2587"]);
    }

    #[test]
    fn lookups_from_a_table() {
        let maps = vec![open_map(
            "inline:{ [127.0.0.1]:2587=encrypt, {.example.com = verify match=hostname:nexthop}, bad.test=maybe }",
        )
        .unwrap()];
        assert_eq!(
            lookup(&maps, "[127.0.0.1]:2587", Level::May).unwrap().level,
            Level::Encrypt
        );
        let p = lookup(&maps, "a.example.com", Level::None).unwrap();
        assert_eq!(p.level, Level::Verify);
        assert_eq!(p.matches, Some(vec!["hostname".into(), "nexthop".into()]));
        assert_eq!(
            lookup(&maps, "other.test", Level::May).unwrap(),
            Policy {
                level: Level::May,
                matches: None
            }
        );
        assert!(matches!(
            lookup(&maps, "bad.test", Level::May),
            Err(PolicyError::BadLevel(_, _))
        ));
    }

    #[test]
    fn dane_levels_per_destination() {
        use crate::dane::DaneLevel;
        let maps = vec![open_map("inline:{ a.test=dane, b.test=dane-only }").unwrap()];
        assert_eq!(
            lookup(&maps, "a.test", Level::May).unwrap().level,
            Level::Dane(DaneLevel::Dane)
        );
        assert_eq!(
            lookup(&maps, "b.test", Level::May).unwrap().level,
            Level::Dane(DaneLevel::DaneOnly)
        );
    }

    #[test]
    fn match_keywords() {
        let pats: Vec<String> = ["hostname", "nexthop", "dot-nexthop", "mx.x.test"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            match_names(&pats, "mx1.b.test", "b.test"),
            vec!["mx1.b.test", "b.test", "mx.x.test"]
        );
    }

    proptest! {
        #[test]
        fn parse_value_never_panics(v in "\\PC{0,60}") {
            let _ = parse_value("x", &v);
            let _ = keys(&v);
        }
    }
}
