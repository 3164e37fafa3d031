//! Canonicalization of envelope addresses (trivial-rewrite's "rewrite" half, the part
//! Postfix applies in cleanup): `user` becomes `user@$myorigin` (append_at_myorigin),
//! `user@host` becomes `user@host.$mydomain` (append_dot_mydomain), trailing dots in
//! the domain go. Only in the "local" rewrite context (submissions through sendmail or
//! pickup, mail generated here); mail from SMTP clients ("remote") only loses trailing
//! dots, as Postfix does when remote_header_rewrite_domain is empty.
//!
//! Before that, as trivial-rewrite's rewrite_tree does in every context: a source
//! route (`@a,@b:user@c`) is dropped, and an address without `@` has its first `!`
//! swapped (`site!user` -> `user@site`, swap_bangpath) or else its last `%` made the
//! `@` (`user%site` -> `user@site`, allow_percent_hack) — see [`AddressForms`]. The
//! other half of the `%`/`!` hacks, `user%site@ourdomain` routed to `site`, is
//! trivial-rewrite's resolve step: `Resolver::route_local_part`, which qmgr applies at each
//! activation (not stored in the queue file).

/// swap_bangpath and allow_percent_hack: the old address forms rewritten to `@` form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressForms {
    /// swap_bangpath.
    pub swap_bangpath: bool,
    /// allow_percent_hack.
    pub percent_hack: bool,
}

impl AddressForms {
    /// Reads swap_bangpath and allow_percent_hack.
    pub fn from_config(cfg: &rostfix_config::MainCf) -> AddressForms {
        AddressForms {
            swap_bangpath: cfg.get_bool("swap_bangpath"),
            percent_hack: cfg.get_bool("allow_percent_hack"),
        }
    }

    /// `address` without its source route and with `!`/`%` forms turned into
    /// `user@site`; None when nothing changes. Only an address without `@` (after
    /// the route) is a bang path or percent form, as in Postfix's rewrite_tree.
    pub fn apply(&self, address: &str) -> Option<String> {
        let mut a = address;
        if a.starts_with('@') {
            // `@a,@b:user@c`: the route goes, unless the colon ends the address.
            if let Some(colon) = a.find(':').filter(|c| c + 1 < a.len()) {
                a = &a[colon + 1..];
            }
        }
        let swapped = if a.contains('@') {
            None
        } else if let Some((site, user)) = a.split_once('!').filter(|_| self.swap_bangpath) {
            Some(format!("{user}@{site}"))
        } else if let Some((user, site)) = a.rsplit_once('%').filter(|_| self.percent_hack) {
            Some(format!("{user}@{site}"))
        } else {
            None
        };
        match swapped {
            Some(s) => Some(s),
            None if a.len() != address.len() => Some(a.to_string()),
            None => None,
        }
    }
}

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
    /// swap_bangpath, allow_percent_hack.
    pub forms: AddressForms,
}

impl Canonical {
    /// Reads myorigin, mydomain, append_at_myorigin, append_dot_mydomain,
    /// swap_bangpath and allow_percent_hack.
    pub fn from_config(cfg: &rostfix_config::MainCf) -> Canonical {
        use crate::domain_list::normalize_domain;
        Canonical {
            myorigin: normalize_domain(&cfg.get("myorigin")),
            mydomain: normalize_domain(&cfg.get("mydomain")),
            append_at_myorigin: cfg.get_bool("append_at_myorigin"),
            append_dot_mydomain: cfg.get_bool("append_dot_mydomain"),
            forms: AddressForms::from_config(cfg),
        }
    }

    /// The canonical form of `address`. The null address stays null.
    pub fn canonicalize(&self, address: &str, local_context: bool) -> String {
        if address.is_empty() {
            return String::new();
        }
        let rewritten = self.forms.apply(address);
        let address = rewritten.as_deref().unwrap_or(address);
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
            forms: AddressForms {
                swap_bangpath: true,
                percent_hack: true,
            },
        }
    }

    #[test]
    fn bang_path_percent_and_source_route() {
        let x = c(false);
        assert_eq!(x.canonicalize("site!joe", false), "joe@site");
        assert_eq!(x.canonicalize("a!b!joe", true), "b!joe@a");
        assert_eq!(x.canonicalize("joe%site", true), "joe@site");
        assert_eq!(x.canonicalize("joe%a%b", true), "joe%a@b");
        // With an `@`, the forms are the resolver's business: unchanged here.
        assert_eq!(
            x.canonicalize("joe%a@example.com", true),
            "joe%a@example.com"
        );
        assert_eq!(x.canonicalize("@r1,@r2:joe@d.org", false), "joe@d.org");
        assert_eq!(x.canonicalize("@r1:joe", true), "joe@example.com");
        let mut off = c(false);
        off.forms = AddressForms::default();
        assert_eq!(off.canonicalize("site!joe", true), "site!joe@example.com");
        assert_eq!(off.canonicalize("joe%site", true), "joe%site@example.com");
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
