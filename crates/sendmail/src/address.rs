//! Address syntax checks for envelope addresses (command-line and -t recipients, the
//! -f sender, SMTP MAIL FROM/RCPT TO in -bs mode). Postfix's sendmail hands anything to
//! cleanup, which rejects what it cannot parse; we refuse such an address up front with
//! EX_DATAERR so a typo never becomes a bounce later.
//!
//! Accepted: `local` (a local user, qualified later by pickup) or `local@domain`,
//! where the local part is a dot-atom or a quoted string and the domain a dot-separated
//! list of letters, digits and hyphens, or an address literal `[...]`.

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad address syntax: <{}>", .0.escape_default())]
pub struct BadAddress(pub String);

/// Characters RFC 5322 allows in an atom besides letters and digits.
const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~";

fn dot_atom_ok(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_alphanumeric() || ATEXT.contains(c) || !c.is_ascii())
        })
}

fn quoted_ok(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return false;
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return false,
            '\\' => {}
            '"' => return false,
            c if c.is_control() => return false,
            _ => {}
        }
    }
    true
}

fn domain_ok(d: &str) -> bool {
    if let Some(lit) = d.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return !lit.is_empty()
            && lit
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '[' && c != ']');
    }
    d.len() <= 255
        && d.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || !c.is_ascii())
        })
}

/// Checks one envelope address (the null sender is the caller's business).
pub fn check_address(addr: &str) -> Result<(), BadAddress> {
    let bad = || BadAddress(addr.to_string());
    if addr.is_empty() || addr.len() > 320 || addr.chars().any(char::is_control) {
        return Err(bad());
    }
    // The domain starts after the last '@' outside a quoted local part.
    let (local, domain) = if let Some(after) = addr.strip_prefix('"') {
        let close = after.rfind('"').map(|p| p + 1).ok_or_else(bad)?;
        let (l, rest) = addr.split_at(close + 1);
        match rest.strip_prefix('@') {
            Some(d) => (l, Some(d)),
            None if rest.is_empty() => (l, None),
            None => return Err(bad()),
        }
    } else {
        match addr.rsplit_once('@') {
            Some((l, d)) => (l, Some(d)),
            None => (addr, None),
        }
    };
    let local_ok = if local.starts_with('"') {
        quoted_ok(local)
    } else {
        dot_atom_ok(local)
    };
    if !local_ok || domain.is_some_and(|d| !domain_ok(d)) {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn good_addresses() {
        for a in [
            "joe",
            "joe@example.org",
            "j.o+e@sub.example.org",
            "\"joe smith\"@example.org",
            "joe@[127.0.0.1]",
            "joe@example.org.",
            "üser@exämple.org",
            "owner-list@x-y.example",
        ] {
            assert_eq!(check_address(a), Ok(()), "{a}");
        }
    }

    #[test]
    fn bad_addresses() {
        for a in [
            "",
            "joe@",
            "@example.org",
            "a@b@c",
            "joe smith@example.org",
            "joe..x@example.org",
            ".joe@example.org",
            "joe@-x.org",
            "joe@exa mple.org",
            "joe@ex..org",
            "<joe@example.org>",
            "a\nb@x",
            "\"unterminated@x",
        ] {
            assert!(check_address(a).is_err(), "{a:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = check_address(&s);
        }

        #[test]
        fn simple_addresses_pass(l in "[a-z][a-z0-9.+_-]{0,10}[a-z]", d in "[a-z]{1,10}\\.[a-z]{2,5}") {
            prop_assume!(!l.contains(".."));
            let addr = format!("{l}@{d}");
            prop_assert_eq!(check_address(&addr), Ok(()));
        }
    }
}
