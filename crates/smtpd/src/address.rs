//! Parsing the path of MAIL FROM / RCPT TO (RFC 5321 4.1.2) into the address we keep.
//!
//! Input is what stood between the angle brackets. A source route (`@a,@b:user@dom`)
//! is accepted and dropped, as RFC 5321 tells servers to. Local parts may be dot-atoms
//! (with UTF-8 allowed, as Postfix does) or quoted strings; the address keeps its case
//! and its quoting as the client wrote it. Control characters (NUL, CR, LF, TAB, DEL
//! ...) are refused anywhere, even escaped inside quotes, so nothing downstream (queue
//! records, logs, headers) can be injected into.
//!
//! Limits: the whole address at most [`MAX_PATH_LEN`] bytes (RFC 5321 path limit) and a
//! domain at most 255. The 64-byte local-part limit of RFC 5321 is deliberately NOT
//! enforced: VERP/SRS addresses exceed it in practice and Postfix accepts them too.

/// Longest address accepted, in bytes (RFC 5321 4.5.3.1.3).
pub const MAX_PATH_LEN: usize = 256;
/// Longest domain accepted, in bytes.
const MAX_DOMAIN_LEN: usize = 255;

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address too long")]
    TooLong,
    #[error("control character in address")]
    ControlChar,
    #[error("bad source route")]
    BadRoute,
    #[error("bad local part")]
    BadLocalPart,
    #[error("bad domain")]
    BadDomain,
}

/// Parses the inside of `<...>`. The empty string (null path) is returned as "".
pub fn parse_path(inner: &str) -> Result<String, AddressError> {
    if inner.chars().any(char::is_control) {
        return Err(AddressError::ControlChar);
    }
    if inner.len() > MAX_PATH_LEN {
        return Err(AddressError::TooLong);
    }
    if inner.is_empty() {
        return Ok(String::new());
    }
    let mailbox = strip_source_route(inner)?;
    let (local, domain) = split_mailbox(mailbox);
    check_local_part(local)?;
    if let Some(domain) = domain {
        check_domain(domain)?;
    }
    Ok(mailbox.to_string())
}

/// Splits at the last `@` outside a quoted string: `("a", Some("b"))`, or the whole
/// thing as local part when there is no domain.
pub fn split_mailbox(mailbox: &str) -> (&str, Option<&str>) {
    match last_unquoted_at(mailbox) {
        Some(i) => (&mailbox[..i], Some(&mailbox[i + 1..])),
        None => (mailbox, None),
    }
}

/// Byte index of the last `@` that is not inside quotes or escaped.
fn last_unquoted_at(s: &str) -> Option<usize> {
    let mut in_quote = false;
    let mut escaped = false;
    let mut last = None;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '@' if !in_quote => last = Some(i),
            _ => {}
        }
    }
    last
}

/// `@a,@b:user@dom` -> `user@dom`; the route's domains must look like domains.
fn strip_source_route(s: &str) -> Result<&str, AddressError> {
    if !s.starts_with('@') {
        return Ok(s);
    }
    let colon = s.find(':').ok_or(AddressError::BadRoute)?;
    for hop in s[..colon].split(',') {
        let domain = hop.strip_prefix('@').ok_or(AddressError::BadRoute)?;
        check_domain(domain).map_err(|_| AddressError::BadRoute)?;
    }
    let rest = &s[colon + 1..];
    if rest.is_empty() {
        return Err(AddressError::BadRoute);
    }
    Ok(rest)
}

/// A dot-atom-like local part (lenient: any printable non-special character, dots
/// anywhere, as real mail needs) or a quoted string.
fn check_local_part(local: &str) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::BadLocalPart);
    }
    if local.starts_with('"') {
        return check_quoted(local);
    }
    // '@' is allowed here (a@b@c): syntactically odd but routable, and the relay check
    // treats such a local part as foreign.
    const SPECIALS: &[char] = &['<', '>', '(', ')', '[', ']', ',', ';', ':', '\\', '"', ' '];
    if local.chars().any(|c| SPECIALS.contains(&c)) {
        return Err(AddressError::BadLocalPart);
    }
    Ok(())
}

/// `"..."` with backslash escapes, nothing after the closing quote.
fn check_quoted(local: &str) -> Result<(), AddressError> {
    let body = &local[1..];
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => {
                return if i + 1 == body.len() {
                    Ok(())
                } else {
                    Err(AddressError::BadLocalPart)
                };
            }
            _ => {}
        }
    }
    Err(AddressError::BadLocalPart)
}

/// A domain name (labels of letters, digits, `-`, `_`, UTF-8; one trailing dot allowed)
/// or an address literal `[...]`.
fn check_domain(domain: &str) -> Result<(), AddressError> {
    if domain.is_empty() || domain.len() > MAX_DOMAIN_LEN {
        return Err(AddressError::BadDomain);
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let inner = literal.strip_suffix(']').ok_or(AddressError::BadDomain)?;
        if inner.is_empty() || inner.contains(['[', ']', '\\', ' ']) {
            return Err(AddressError::BadDomain);
        }
        return Ok(());
    }
    let name = domain.strip_suffix('.').unwrap_or(domain);
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || !c.is_ascii());
        if !ok {
            return Err(AddressError::BadDomain);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_addresses_keep_case() {
        assert_eq!(parse_path("User@Example.COM").unwrap(), "User@Example.COM");
        assert_eq!(parse_path("postmaster").unwrap(), "postmaster");
        assert_eq!(parse_path("").unwrap(), "");
        assert_eq!(
            parse_path("a.b+tag@sub.example.org.").unwrap(),
            "a.b+tag@sub.example.org."
        );
        assert_eq!(parse_path("müller@bücher.de").unwrap(), "müller@bücher.de");
    }

    #[test]
    fn source_route_is_dropped() {
        assert_eq!(
            parse_path("@a.example,@b.example:user@dom.example").unwrap(),
            "user@dom.example"
        );
        assert_eq!(parse_path("@a.example:user@dom").unwrap(), "user@dom");
        assert_eq!(parse_path("@a.example:"), Err(AddressError::BadRoute));
        assert_eq!(
            parse_path("@a.example,b:user@dom"),
            Err(AddressError::BadRoute)
        );
        assert_eq!(parse_path("@:user@dom"), Err(AddressError::BadRoute));
    }

    #[test]
    fn quoted_local_parts() {
        assert_eq!(
            parse_path("\"john doe\"@example.com").unwrap(),
            "\"john doe\"@example.com"
        );
        assert_eq!(
            parse_path("\"a@b\"@example.com").unwrap(),
            "\"a@b\"@example.com"
        );
        assert_eq!(parse_path("\"a\\\"b\"@x").unwrap(), "\"a\\\"b\"@x");
        assert_eq!(
            split_mailbox("\"a@b\"@example.com"),
            ("\"a@b\"", Some("example.com"))
        );
        assert_eq!(
            parse_path("\"unterminated@x"),
            Err(AddressError::BadLocalPart)
        );
        assert_eq!(parse_path("\"a\"b@x"), Err(AddressError::BadLocalPart));
    }

    #[test]
    fn controls_and_specials_refused() {
        assert_eq!(parse_path("a\0b@x"), Err(AddressError::ControlChar));
        assert_eq!(parse_path("a\r\nb@x"), Err(AddressError::ControlChar));
        assert_eq!(parse_path("\"a\tb\"@x"), Err(AddressError::ControlChar));
        assert_eq!(parse_path("a b@x"), Err(AddressError::BadLocalPart));
        assert_eq!(parse_path("a<b@x"), Err(AddressError::BadLocalPart));
        assert_eq!(parse_path("@x"), Err(AddressError::BadRoute));
        assert_eq!(parse_path("a@"), Err(AddressError::BadDomain));
        assert_eq!(parse_path("a@x..y"), Err(AddressError::BadDomain));
        assert_eq!(parse_path("a@x y"), Err(AddressError::BadDomain));
    }

    #[test]
    fn address_literals() {
        assert_eq!(parse_path("a@[192.0.2.1]").unwrap(), "a@[192.0.2.1]");
        assert_eq!(parse_path("a@[IPv6:::1]").unwrap(), "a@[IPv6:::1]");
        assert_eq!(parse_path("a@[1.2"), Err(AddressError::BadDomain));
        assert_eq!(parse_path("a@[]"), Err(AddressError::BadDomain));
    }

    #[test]
    fn length_limit() {
        let long = format!("{}@example.com", "a".repeat(244));
        assert_eq!(long.len(), 256);
        assert!(parse_path(&long).is_ok());
        let longer = format!("{}@example.com", "a".repeat(245));
        assert_eq!(parse_path(&longer), Err(AddressError::TooLong));
    }

    #[test]
    fn second_at_in_local_part_parses() {
        assert_eq!(parse_path("a@b@c.example").unwrap(), "a@b@c.example");
        assert_eq!(split_mailbox("a@b@c.example"), ("a@b", Some("c.example")));
    }

    proptest! {
        #[test]
        fn accepted_addresses_have_no_controls(s in ".{0,300}") {
            if let Ok(a) = parse_path(&s) {
                prop_assert!(!a.chars().any(char::is_control));
                prop_assert!(a.len() <= MAX_PATH_LEN);
            }
        }
    }
}
