//! Host name patterns of the shaping rules: `*.google.com` (or `.google.com`) matches
//! every name below google.com, a bare name matches itself. Case and a final dot are
//! ignored, as DNS ignores them.

/// One pattern, normalised when parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*.suffix` or `.suffix`: any name ending in `.suffix` (not `suffix` itself).
    Below(String),
    Exact(String),
}

fn norm(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl HostPattern {
    /// None for an empty pattern or a wildcard anywhere but in front.
    pub fn parse(text: &str) -> Option<HostPattern> {
        let t = norm(text);
        let (below, rest) = match t.strip_prefix("*.").or_else(|| t.strip_prefix('.')) {
            Some(rest) => (true, rest.to_string()),
            None => (false, t),
        };
        if rest.is_empty() || rest.contains('*') || rest.contains(char::is_whitespace) {
            return None;
        }
        Some(if below {
            HostPattern::Below(rest)
        } else {
            HostPattern::Exact(rest)
        })
    }

    pub fn matches(&self, host: &str) -> bool {
        let h = norm(host);
        match self {
            HostPattern::Exact(name) => h == *name,
            HostPattern::Below(suffix) => h
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_names_below_only() {
        let p = HostPattern::parse("*.google.com").unwrap();
        assert!(p.matches("aspmx.l.google.com"));
        assert!(p.matches("ALT1.ASPMX.L.Google.Com."));
        assert!(!p.matches("google.com"));
        assert!(!p.matches("evilgoogle.com"));
        assert!(!p.matches("google.com.evil.test"));
        assert_eq!(HostPattern::parse(".google.com"), Some(p));
    }

    #[test]
    fn bare_names_match_exactly() {
        let p = HostPattern::parse("mx1.provider-a.test.").unwrap();
        assert!(p.matches("MX1.provider-a.test"));
        assert!(!p.matches("mx2.provider-a.test"));
        assert!(!p.matches("x.mx1.provider-a.test"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["", "*.", "a.*.com", "*", "a b"] {
            assert_eq!(HostPattern::parse(bad), None, "{bad:?}");
        }
    }
}
