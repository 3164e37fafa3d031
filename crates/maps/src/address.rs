//! Postfix's address lookup order (mail_addr_find): how one address becomes a
//! sequence of table queries, stopping at the first hit or the first lookup error.
//!
//! For `user+ext@domain` with recipient delimiter `+`, a fixed-string table
//! (hash, btree, texthash, inline, unix) is asked, in order:
//!
//! 1. `user+ext@domain` (the full address),
//! 2. `user@domain` (only when there is an extension),
//! 3. `user+ext` then `user` — only when the domain is local (the caller says so,
//!    e.g. it is in `mydestination`), as virtual(5) and canonical(5) describe,
//! 4. `@domain`.
//!
//! A pattern table (regexp, pcre, cidr, static) is asked once with the full address:
//! virtual(5) says "user@domain mail addresses are not broken up". A lookup error
//! ends the search with the error, never falling through to a later query, because
//! Postfix turns that into a temporary failure.

use crate::error::MapError;
use crate::Map;

/// Split `local` at the first recipient delimiter character, Postfix-style: with a
/// `-` delimiter, `owner-list` and `list-request` are not split (they are list
/// conventions, not extensions). Returns (user, Some(ext)) or (local, None).
pub fn split_extension<'a>(local: &'a str, delimiters: &str) -> (&'a str, Option<&'a str>) {
    if delimiters.is_empty() {
        return (local, None);
    }
    if delimiters.contains('-') {
        let lower = local.to_ascii_lowercase();
        if lower.starts_with("owner-") || lower.ends_with("-request") {
            return (local, None);
        }
    }
    match local.find(|c| delimiters.contains(c)) {
        Some(pos) if pos > 0 => (&local[..pos], Some(&local[pos + 1..])),
        _ => (local, None),
    }
}

/// The queries tried for `address`, in order (see the module documentation).
pub fn address_queries(address: &str, delimiters: &str, domain_is_local: bool) -> Vec<String> {
    let (local, domain) = match address.rfind('@') {
        Some(at) => (&address[..at], Some(&address[at + 1..])),
        None => (address, None),
    };
    let (user, ext) = split_extension(local, delimiters);
    let mut out = vec![address.to_string()];
    let mut push = |q: String| {
        if !out.contains(&q) {
            out.push(q);
        }
    };
    match domain {
        Some(domain) => {
            if ext.is_some() {
                push(format!("{user}@{domain}"));
            }
            if domain_is_local {
                push(local.to_string());
                push(user.to_string());
            }
            if !domain.is_empty() {
                push(format!("@{domain}"));
            }
        }
        None => push(user.to_string()),
    }
    out
}

/// Look `address` up in `map` in Postfix's order. Returns the first value found.
pub fn lookup_address(
    map: &dyn Map,
    address: &str,
    delimiters: &str,
    domain_is_local: bool,
) -> Result<Option<String>, MapError> {
    if map.is_pattern() {
        return map.lookup(address);
    }
    for q in address_queries(address, delimiters, domain_is_local) {
        if let Some(v) = map.lookup(&q)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::open_map;

    #[test]
    fn query_order() {
        assert_eq!(
            address_queries("user+ext@dom", "+", true),
            ["user+ext@dom", "user@dom", "user+ext", "user", "@dom"]
        );
        assert_eq!(
            address_queries("user+ext@dom", "+", false),
            ["user+ext@dom", "user@dom", "@dom"]
        );
        assert_eq!(
            address_queries("user@dom", "", true),
            ["user@dom", "user", "@dom"]
        );
        assert_eq!(
            address_queries("owner-list@d", "-", false),
            ["owner-list@d", "@d"]
        );
        assert_eq!(
            address_queries("a-b@d", "+-", false),
            ["a-b@d", "a@d", "@d"]
        );
        assert_eq!(address_queries("bare+x", "+", true), ["bare+x", "bare"]);
    }

    #[test]
    fn lookup_walks_order() {
        let m = open_map("inline:{ user@dom=exact, @dom=catchall, bob=local-bob }").unwrap();
        let l = |a: &str, local| lookup_address(m.as_ref(), a, "+", local).unwrap();
        assert_eq!(l("user+x@dom", false).as_deref(), Some("exact"));
        assert_eq!(l("other@dom", false).as_deref(), Some("catchall"));
        assert_eq!(l("bob+y@else", true).as_deref(), Some("local-bob"));
        assert_eq!(l("bob+y@else", false), None);
        let r = open_map("static:X").unwrap();
        assert_eq!(
            lookup_address(r.as_ref(), "a@b", "+", true)
                .unwrap()
                .as_deref(),
            Some("X")
        );
    }
}
