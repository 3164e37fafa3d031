//! The MTA-STS policy file (RFC 8461 section 3.2) and MX matching (section 4.1).
//!
//! The file comes from the network, so [`parse`] accepts only what the RFC's grammar
//! allows for the fields it uses (version, mode, max_age, mx), ignores unknown
//! fields as the RFC says, and never panics (a proptest checks that). A field other
//! than mx given twice keeps its first value.

use serde::{Deserialize, Serialize};

/// RFC 8461 section 3.2: max_age is at most 31557600 (about a year).
pub const MAX_MAX_AGE: u64 = 31_557_600;

/// The policy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Deliver only to matching MX hosts over TLS with a valid certificate.
    Enforce,
    /// Deliver as without a policy, but report (log) what enforce would refuse.
    Testing,
    /// The domain withdrew its policy.
    None,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub mode: Mode,
    /// MX patterns: a host name, or `*.` and a domain (one leftmost label).
    pub mx: Vec<String>,
    /// Seconds the policy may be cached.
    pub max_age: u64,
}

/// Why a policy file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy is not valid UTF-8")]
    Encoding,
    #[error("policy has no version: STSv1 field")]
    Version,
    #[error("policy has no valid mode field")]
    Mode,
    #[error("policy has no valid max_age field")]
    MaxAge,
    #[error("policy in mode {0} has no valid mx field")]
    NoMx(&'static str),
    #[error("policy line is not \"key: value\": {0:?}")]
    Line(String),
}

/// Parses a policy body (lines ending in CRLF or LF).
pub fn parse(body: &[u8]) -> Result<Policy, PolicyError> {
    let text = std::str::from_utf8(body).map_err(|_| PolicyError::Encoding)?;
    let (mut version, mut mode, mut max_age) = (None, None, None);
    let mut mx = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(PolicyError::Line(line.chars().take(80).collect()));
        };
        // sts-policy-field-delim = ":" *WSP; trailing white space is not part of values.
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        match key {
            "version" => {
                version.get_or_insert(value == "STSv1");
            }
            "mode" => {
                mode.get_or_insert(match value {
                    "enforce" => Some(Mode::Enforce),
                    "testing" => Some(Mode::Testing),
                    "none" => Some(Mode::None),
                    _ => None,
                });
            }
            "max_age" => {
                max_age.get_or_insert(parse_max_age(value));
            }
            "mx" if valid_pattern(value) => mx.push(value.to_ascii_lowercase()),
            // Unknown fields are ignored (section 3.2), extensions included.
            _ => {}
        }
    }
    if version != Some(true) {
        return Err(PolicyError::Version);
    }
    let mode = mode.flatten().ok_or(PolicyError::Mode)?;
    let max_age = max_age.flatten().ok_or(PolicyError::MaxAge)?;
    if mx.is_empty() && mode != Mode::None {
        return Err(PolicyError::NoMx(mode.name()));
    }
    Ok(Policy { mode, mx, max_age })
}

/// `max_age: 1*10DIGIT`, at most [`MAX_MAX_AGE`] (larger values are capped).
fn parse_max_age(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().map(|n| n.min(MAX_MAX_AGE))
}

/// A host name, optionally with a leading `*.`: labels of letters, digits and
/// hyphens (A-labels for internationalized names), at most 253 characters.
fn valid_pattern(p: &str) -> bool {
    let name = p.strip_prefix("*.").unwrap_or(p);
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether MX host `host` matches `pattern` (section 4.1): equal ignoring case and a
/// trailing dot, or `*.rest` where host is exactly one label followed by `rest`.
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    let (pattern, host) = (norm(pattern), norm(host));
    match pattern.strip_prefix("*.") {
        Some(rest) => match host.split_once('.') {
            Some((label, tail)) => !label.is_empty() && tail == rest,
            None => false,
        },
        None => pattern == host,
    }
}

impl Policy {
    /// Whether `host` matches one of the policy's MX patterns.
    pub fn allows_mx(&self, host: &str) -> bool {
        self.mx.iter().any(|p| mx_matches(p, host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

    #[test]
    fn rfc_example_parses() {
        let p = parse(GOOD.as_bytes()).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604800);
        assert_eq!(
            p.mx,
            ["mail.example.com", "*.example.net", "backupmx.example.com"]
        );
    }

    #[test]
    fn lf_endings_unknown_fields_and_white_space_are_accepted() {
        let p = parse(
            b"version: STSv1\nmode:testing\nfoo: bar\nmx:  MX.Example.ORG \t\nmax_age: 86400\n\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Testing);
        assert_eq!(p.mx, ["mx.example.org"]);
    }

    #[test]
    fn missing_or_bad_fields_are_refused() {
        assert_eq!(
            parse(b"mode: enforce\nmx: a.example\nmax_age: 1\n"),
            Err(PolicyError::Version)
        );
        assert_eq!(
            parse(b"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n"),
            Err(PolicyError::Version)
        );
        assert_eq!(
            parse(b"version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n"),
            Err(PolicyError::Mode)
        );
        assert_eq!(
            parse(b"version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n"),
            Err(PolicyError::MaxAge)
        );
        assert_eq!(
            parse(b"version: STSv1\nmode: enforce\nmax_age: 100\n"),
            Err(PolicyError::NoMx("enforce"))
        );
        assert!(matches!(
            parse(b"version: STSv1\n<html>\n"),
            Err(PolicyError::Line(_))
        ));
        assert_eq!(parse(b"\xff\xfe"), Err(PolicyError::Encoding));
    }

    #[test]
    fn mode_none_needs_no_mx_and_max_age_is_capped() {
        let p = parse(b"version: STSv1\nmode: none\nmax_age: 9999999999\n").unwrap();
        assert_eq!(p.mode, Mode::None);
        assert_eq!(p.max_age, MAX_MAX_AGE);
    }

    #[test]
    fn the_first_of_repeated_fields_wins() {
        let p = parse(b"version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 5\nmax_age: 6\n")
            .unwrap();
        assert_eq!((p.mode, p.max_age), (Mode::Testing, 5));
    }

    #[test]
    fn mx_matching_follows_section_4_1() {
        assert!(mx_matches("mail.example.com", "MAIL.example.com."));
        assert!(mx_matches("*.example.net", "mx1.example.net"));
        // The wildcard stands for exactly one label.
        assert!(!mx_matches("*.example.net", "a.b.example.net"));
        assert!(!mx_matches("*.example.net", "example.net"));
        assert!(!mx_matches("*.example.net", ".example.net"));
        assert!(!mx_matches("mail.example.com", "mail.example.com.evil"));
        assert!(!mx_matches("mail.example.com", "x.mail.example.com"));
        // Only a leading wildcard is a wildcard.
        assert!(!mx_matches("mx.*.example", "mx.a.example"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&body);
        }

        #[test]
        fn parse_of_field_soup_never_panics_and_keeps_valid_patterns(
            lines in proptest::collection::vec(
                ("(version|mode|max_age|mx|x)", "[ -~\t]{0,20}"), 0..12)
        ) {
            let body: String = lines.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect();
            if let Ok(p) = parse(body.as_bytes()) {
                prop_assert!(p.max_age <= MAX_MAX_AGE);
                for m in &p.mx {
                    prop_assert!(valid_pattern(m));
                }
            }
        }
    }
}
