//! masquerade_domains (Postfix's cleanup_masquerade): `user@host.sub.example.com`
//! becomes `user@example.com` when `example.com` is listed. The list is walked in
//! order and the first entry that is the domain itself or a parent of it decides:
//! the domain itself means no change, a `!name` entry means no change for `name` and
//! its subdomains, a plain parent entry replaces the domain. Local parts listed in
//! masquerade_exceptions (compared case-insensitively) are never masqueraded.

/// The masquerading parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masquerade {
    /// masquerade_domains, in order, as written (`!` prefix kept).
    pub domains: Vec<String>,
    /// masquerade_exceptions, lower case.
    pub exceptions: Vec<String>,
}

impl Masquerade {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// `address` masqueraded, or unchanged.
    pub fn apply(&self, address: &str) -> String {
        let Some(at) = address.rfind('@') else {
            return address.to_string();
        };
        let (local, domain) = (&address[..at], &address[at + 1..]);
        if domain.is_empty() || self.exceptions.contains(&local.to_ascii_lowercase()) {
            return address.to_string();
        }
        let domain_lc = domain.to_ascii_lowercase();
        for entry in &self.domains {
            let (negated, name) = match entry.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, entry.as_str()),
            };
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if domain_lc == name {
                return address.to_string();
            }
            if domain_lc.ends_with(&format!(".{name}")) {
                return if negated {
                    address.to_string()
                } else {
                    format!("{local}@{name}")
                };
            }
        }
        address.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(domains: &[&str], exceptions: &[&str]) -> Masquerade {
        Masquerade {
            domains: domains.iter().map(|s| s.to_string()).collect(),
            exceptions: exceptions.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn parent_domain_replaces_subdomains() {
        let x = m(&["example.com"], &[]);
        assert_eq!(x.apply("joe@host.sub.example.com"), "joe@example.com");
        assert_eq!(x.apply("joe@Example.COM"), "joe@Example.COM");
        assert_eq!(x.apply("joe@badexample.com"), "joe@badexample.com");
        assert_eq!(x.apply("joe"), "joe");
        assert_eq!(x.apply(""), "");
    }

    #[test]
    fn negation_and_order() {
        // canonical(5)'s example: everything under example.com but mail.example.com.
        let x = m(&["!mail.example.com", "example.com"], &[]);
        assert_eq!(x.apply("a@mail.example.com"), "a@mail.example.com");
        assert_eq!(x.apply("a@x.mail.example.com"), "a@x.mail.example.com");
        assert_eq!(x.apply("a@web.example.com"), "a@example.com");
        // The first matching entry decides: sub.example.com, not example.com.
        let y = m(&["sub.example.com", "example.com"], &[]);
        assert_eq!(y.apply("a@h.sub.example.com"), "a@sub.example.com");
    }

    #[test]
    fn exceptions_keep_the_host() {
        let x = m(&["example.com"], &["root"]);
        assert_eq!(x.apply("Root@h.example.com"), "Root@h.example.com");
        assert_eq!(x.apply("joe@h.example.com"), "joe@example.com");
    }
}
