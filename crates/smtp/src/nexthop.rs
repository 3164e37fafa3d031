//! The next hop of a delivery request in Postfix syntax: `[host]:port` or `[ip]:port`
//! (no MX lookup: connect to that host's addresses), `host:port` or `host` (MX lookup
//! for host), port 25 by default. Also the MX ordering rule: by preference, shuffled
//! among equal preferences so load spreads over equal-preference servers.
//!
//! LMTP next hops (lmtp(8)): `unix:path` (relative to queue_directory, or absolute),
//! `inet:host:port`, `inet:[host]:port`, `host:port`, `host`; port 24 by default and
//! never an MX lookup.

use thiserror::Error;

pub const SMTP_PORT: u16 = 25;

/// A parsed next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub host: String,
    pub port: u16,
    /// False for the bracketed form: the host's own addresses, no MX lookup.
    pub mx_lookup: bool,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NextHopError {
    #[error("bad next-hop destination syntax: {0}")]
    Syntax(String),
}

/// Parses `[host]:port`, `[host]`, `host:port`, `host`. IPv6 literals go in brackets
/// (`[ipv6:2001:db8::1]` or `[2001:db8::1]`).
pub fn parse(nexthop: &str) -> Result<NextHop, NextHopError> {
    let bad = || NextHopError::Syntax(nexthop.chars().filter(|c| !c.is_control()).collect());
    let s = nexthop.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let (host, rest, mx_lookup) = if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']').ok_or_else(bad)?;
        let host = &inner[..end];
        let host = host
            .strip_prefix("ipv6:")
            .or_else(|| host.strip_prefix("IPv6:"))
            .unwrap_or(host);
        (host, &inner[end + 1..], false)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, &s[h.len()..][..p.len() + 1], true),
            None => (s, "", true),
        }
    };
    let port = match rest {
        "" => SMTP_PORT,
        r => r
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(bad)?,
    };
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if host.is_empty() || !host.chars().all(valid_char) || (mx_lookup && host.contains(':')) {
        return Err(bad());
    }
    Ok(NextHop {
        host: host.trim_end_matches('.').to_ascii_lowercase(),
        port,
        mx_lookup,
    })
}

/// The LMTP default port.
pub const LMTP_PORT: u16 = 24;

/// Where an LMTP delivery goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LmtpHop {
    Unix(String),
    Inet(NextHop),
}

/// Parses an LMTP next hop (see the module doc).
pub fn parse_lmtp(nexthop: &str) -> Result<LmtpHop, NextHopError> {
    let s = nexthop.trim();
    if let Some(path) = s.strip_prefix("unix:") {
        if path.is_empty() || path.chars().any(char::is_control) {
            return Err(NextHopError::Syntax(
                nexthop.chars().filter(|c| !c.is_control()).collect(),
            ));
        }
        return Ok(LmtpHop::Unix(path.to_string()));
    }
    let rest = s.strip_prefix("inet:").unwrap_or(s);
    let mut hop = if rest.starts_with('[') {
        parse(rest)?
    } else {
        // `host:port` in LMTP names the host itself: parse it as the bracketed form.
        let (h, p) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, format!(":{p}")),
            None => (rest, String::new()),
        };
        parse(&format!("[{h}]{p}"))?
    };
    if !rest.contains(':') || rest.ends_with(']') {
        hop.port = LMTP_PORT;
    }
    hop.mx_lookup = false;
    Ok(LmtpHop::Inet(hop))
}

/// Orders MX hosts by preference, shuffling equal preferences with `rand` (a source of
/// random u64; injected so tests are deterministic).
pub fn order_mx(
    mut hosts: Vec<(u16, String)>,
    mut rand: impl FnMut() -> u64,
) -> Vec<(u16, String)> {
    // Shuffle first (Fisher-Yates), then a stable sort keeps the shuffled order among
    // equal preferences.
    for i in (1..hosts.len()).rev() {
        let j = (rand() % (i as u64 + 1)) as usize;
        hosts.swap(i, j);
    }
    hosts.sort_by_key(|(pref, _)| *pref);
    hosts
}

/// A cheap non-cryptographic random source (xorshift seeded by time and pid): only
/// used to spread load over equal-preference MX hosts.
pub fn weak_rand() -> impl FnMut() -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ (u64::from(std::process::id()) << 32);
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hop(host: &str, port: u16, mx: bool) -> NextHop {
        NextHop {
            host: host.into(),
            port,
            mx_lookup: mx,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(parse("[127.0.0.2]:25"), Ok(hop("127.0.0.2", 25, false)));
        assert_eq!(
            parse("[mail.example.com]"),
            Ok(hop("mail.example.com", 25, false))
        );
        assert_eq!(parse("Example.COM."), Ok(hop("example.com", 25, true)));
        assert_eq!(
            parse("example.com:2525"),
            Ok(hop("example.com", 2525, true))
        );
        assert_eq!(parse("[ipv6:::1]:587"), Ok(hop("::1", 587, false)));
        assert_eq!(parse("[::1]"), Ok(hop("::1", 25, false)));
    }

    #[test]
    fn lmtp_forms() {
        assert_eq!(
            parse_lmtp("unix:private/dovecot-lmtp"),
            Ok(LmtpHop::Unix("private/dovecot-lmtp".into()))
        );
        assert_eq!(
            parse_lmtp("inet:127.0.0.1:2424"),
            Ok(LmtpHop::Inet(hop("127.0.0.1", 2424, false)))
        );
        assert_eq!(
            parse_lmtp("mail.test:24"),
            Ok(LmtpHop::Inet(hop("mail.test", 24, false)))
        );
        assert_eq!(
            parse_lmtp("inet:[::1]:2424"),
            Ok(LmtpHop::Inet(hop("::1", 2424, false)))
        );
        assert_eq!(
            parse_lmtp("mail.test"),
            Ok(LmtpHop::Inet(hop("mail.test", LMTP_PORT, false)))
        );
        assert!(parse_lmtp("unix:").is_err());
        assert!(parse_lmtp("inet:").is_err());
    }

    #[test]
    fn rejects_bad_syntax() {
        for s in [
            "",
            "[x",
            "[x]:",
            "[x]:0",
            "[x]:99999",
            "x:abc",
            "a b",
            "[]",
            "x]y",
            "[x]z",
        ] {
            assert!(parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn mx_order_by_preference_and_shuffled_within() {
        let hosts = vec![
            (20, "c".to_string()),
            (10, "a".to_string()),
            (10, "b".to_string()),
            (5, "z".to_string()),
        ];
        let mut seen_b_first = false;
        let mut seen_a_first = false;
        let mut r = weak_rand();
        for _ in 0..200 {
            let o = order_mx(hosts.clone(), &mut r);
            let prefs: Vec<u16> = o.iter().map(|h| h.0).collect();
            assert_eq!(prefs, vec![5, 10, 10, 20]);
            seen_a_first |= o[1].1 == "a";
            seen_b_first |= o[1].1 == "b";
        }
        assert!(seen_a_first && seen_b_first);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
            let _ = parse_lmtp(&s);
        }
    }
}
