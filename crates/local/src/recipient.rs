//! From a recipient address to the local user name: the local part (everything before
//! the last `@`), lowercased, with an address extension split off at the first
//! `recipient_delimiter` character, following Postfix's split_addr().
//!
//! The domain is not checked again here: qmgr's resolver sent this recipient to `local`
//! because its domain is in mydestination (or it has none).

/// A recipient as the local delivery agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRecipient {
    /// The lowercased local part without extension: the user name to look up.
    pub user: String,
    /// The address extension (after the delimiter), if any; kept for later use by
    /// `.forward+ext` handling.
    pub extension: Option<String>,
}

/// The local part of `address`: before the last `@`, or all of it without a domain.
pub fn local_part(address: &str) -> &str {
    match address.rfind('@') {
        Some(at) => &address[..at],
        None => address,
    }
}

/// Splits `address` into user and extension. `delimiters` is the recipient_delimiter
/// value: a set of characters, the first one found in the local part splits it.
/// Like Postfix, never splits postmaster, mailer-daemon, `owner-*` or `*-request`, nor
/// at the first character (an empty user name).
pub fn parse_recipient(address: &str, delimiters: &str) -> LocalRecipient {
    let local = local_part(address).to_lowercase();
    if delimiters.is_empty() || is_special(&local) {
        return LocalRecipient {
            user: local,
            extension: None,
        };
    }
    match local.char_indices().find(|(_, c)| delimiters.contains(*c)) {
        Some((pos, c)) if pos > 0 => LocalRecipient {
            user: local[..pos].to_string(),
            extension: Some(local[pos + c.len_utf8()..].to_string()),
        },
        _ => LocalRecipient {
            user: local,
            extension: None,
        },
    }
}

/// Names whose delimiter characters are part of the name (split_addr's exceptions;
/// owner_request_special = yes is Postfix's default).
fn is_special(local: &str) -> bool {
    local == "postmaster"
        || local == "mailer-daemon"
        || local.starts_with("owner-")
        || local.ends_with("-request")
}

/// True when `name` can be a passwd user name used in a file name: no `/`, no NUL,
/// not `.`/`..`, not empty. Anything else is reported as an unknown user.
pub fn plausible_user_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(user: &str, ext: Option<&str>) -> LocalRecipient {
        LocalRecipient {
            user: user.into(),
            extension: ext.map(Into::into),
        }
    }

    #[test]
    fn local_part_uses_last_at() {
        assert_eq!(local_part("\"a@b\"@example.org"), "\"a@b\"");
        assert_eq!(local_part("alice"), "alice");
        assert_eq!(local_part("alice@"), "alice");
    }

    #[test]
    fn lowercases_and_strips_domain() {
        assert_eq!(parse_recipient("Alice@Example.ORG", ""), r("alice", None));
    }

    #[test]
    fn splits_at_first_delimiter() {
        assert_eq!(
            parse_recipient("bob+lists+x@h", "+"),
            r("bob", Some("lists+x"))
        );
        assert_eq!(
            parse_recipient("bob-foo+bar@h", "+-"),
            r("bob", Some("foo+bar"))
        );
        assert_eq!(parse_recipient("bob+@h", "+"), r("bob", Some("")));
        assert_eq!(parse_recipient("bob@h", "+"), r("bob", None));
    }

    #[test]
    fn no_split_without_delimiter_setting() {
        assert_eq!(parse_recipient("bob+x@h", ""), r("bob+x", None));
    }

    #[test]
    fn never_splits_specials_or_leading_delimiter() {
        assert_eq!(parse_recipient("+bob@h", "+"), r("+bob", None));
        assert_eq!(
            parse_recipient("MAILER-DAEMON@h", "-"),
            r("mailer-daemon", None)
        );
        assert_eq!(parse_recipient("owner-list@h", "-"), r("owner-list", None));
        assert_eq!(
            parse_recipient("list-request@h", "-"),
            r("list-request", None)
        );
    }

    #[test]
    fn plausible_names() {
        assert!(plausible_user_name("alice"));
        assert!(!plausible_user_name("../etc"));
        assert!(!plausible_user_name(".."));
        assert!(!plausible_user_name(""));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_user_is_prefix(addr in ".{0,64}", delim in "[-+=.]{0,3}") {
            let p = parse_recipient(&addr, &delim);
            let local = local_part(&addr).to_lowercase();
            prop_assert!(local.starts_with(&p.user));
            if let Some(ext) = &p.extension {
                prop_assert!(local.ends_with(ext.as_str()));
                prop_assert!(!p.user.is_empty());
            }
        }
    }
}
