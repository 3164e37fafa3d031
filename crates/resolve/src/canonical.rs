//! Canonicalization of envelope addresses (trivial-rewrite's "rewrite" half, the part
//! Postfix applies in cleanup): `user` becomes `user@$myorigin` (append_at_myorigin),
//! `user@host` becomes `user@host.$mydomain` (append_dot_mydomain), trailing dots in
//! the domain go. Only in the "local" rewrite context (submissions through sendmail or
//! pickup, mail generated here); mail from SMTP clients ("remote") only loses trailing
//! dots, as Postfix does when remote_header_rewrite_domain is empty.
//!
//! Not done (partial): source routes (`@a:user@b`), `%` and `!` (bang path) forms
//! (swap_bangpath, allow_percent_hack): such addresses pass unchanged.

/// The parameters canonicalization reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// `$myorigin` (expanded).
    pub myorigin: String,
    /// `$mydomain`.
    pub mydomain: String,
    /// append_at_myorigin.
    pub append_at_myorigin: bool,
    /// append_dot_mydomain.
    pub append_dot_mydomain: bool,
}

impl Canonical {
    /// The canonical form of `address`. The null address stays null.
    pub fn canonicalize(&self, address: &str, local_context: bool) -> String {
        if address.is_empty() {
            return String::new();
        }
        match address.rfind('@') {
            None if local_context && self.append_at_myorigin && !self.myorigin.is_empty() => {
                format!("{address}@{}", self.myorigin)
            }
            None => address.to_string(),
            Some(at) => {
                let local = &address[..at];
                let mut domain = address[at + 1..].trim_end_matches('.').to_string();
                if domain.is_empty() {
                    return if local_context && self.append_at_myorigin {
                        format!("{local}@{}", self.myorigin)
                    } else {
                        local.to_string()
                    };
                }
                if local_context
                    && self.append_dot_mydomain
                    && !domain.contains('.')
                    && !domain.starts_with('[')
                    && !self.mydomain.is_empty()
                    && !domain.eq_ignore_ascii_case("localhost")
                {
                    domain = format!("{domain}.{}", self.mydomain);
                }
                format!("{local}@{domain}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(dot: bool) -> Canonical {
        Canonical {
            myorigin: "example.com".into(),
            mydomain: "example.com".into(),
            append_at_myorigin: true,
            append_dot_mydomain: dot,
        }
    }

    #[test]
    fn unqualified_gets_myorigin_in_local_context() {
        assert_eq!(c(false).canonicalize("joe", true), "joe@example.com");
        assert_eq!(c(false).canonicalize("joe", false), "joe");
        assert_eq!(c(false).canonicalize("joe@", true), "joe@example.com");
        assert_eq!(c(false).canonicalize("", true), "");
    }

    #[test]
    fn append_dot_mydomain_only_when_enabled() {
        assert_eq!(
            c(true).canonicalize("joe@host", true),
            "joe@host.example.com"
        );
        assert_eq!(c(false).canonicalize("joe@host", true), "joe@host");
        assert_eq!(
            c(true).canonicalize("joe@[127.0.0.1]", true),
            "joe@[127.0.0.1]"
        );
        assert_eq!(c(true).canonicalize("joe@host", false), "joe@host");
    }

    #[test]
    fn trailing_dots_go() {
        assert_eq!(c(false).canonicalize("joe@a.org.", false), "joe@a.org");
    }

    #[test]
    fn append_at_myorigin_off_keeps_bare_user() {
        let mut x = c(false);
        x.append_at_myorigin = false;
        assert_eq!(x.canonicalize("joe", true), "joe");
    }
}
