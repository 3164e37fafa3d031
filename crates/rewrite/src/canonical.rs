//! canonical(5) table lookups, as Postfix's cleanup_map11 and mail_addr_map apply
//! them to one address.
//!
//! For `user+ext@domain` a fixed-string table is asked `user+ext@domain`,
//! `user@domain`, then `user+ext` and `user` only when the domain is one of ours
//! (myorigin, mydestination), then `@domain` (rostfix_maps::address). A pattern table
//! (regexp, pcre) is asked the full address once. The first answer wins:
//!
//! - a result `@other` keeps the local part: `user+ext@other`;
//! - a result found without the extension gets it back (`new+ext@d`) when
//!   propagate_unmatched_extensions lists `canonical` (the default);
//! - an unqualified result gets `@$myorigin`;
//! - a multi-address result uses its first address (Postfix warns the same way).
//!
//! The result is looked up again until it no longer changes, at most
//! [`MAX_RECURSION`] times (then a warning and the last result, as Postfix does).

use crate::error::RewriteError;
use rostfix_maps::address::{address_queries, split_extension};
use rostfix_maps::Map;

/// Postfix's cleanup_map11 nesting limit.
pub const MAX_RECURSION: usize = 10;

/// What a lookup needs besides the tables.
#[derive(Debug, Clone, Default)]
pub struct LookupContext {
    /// recipient_delimiter (any of its characters separates an extension).
    pub delimiters: String,
    /// propagate_unmatched_extensions lists `canonical`.
    pub propagate: bool,
    /// `$myorigin`, for unqualified results.
    pub myorigin: String,
    /// Domains whose addresses may also be looked up as bare `user` (lowercase).
    pub local_domains: Vec<String>,
}

impl LookupContext {
    fn domain_is_local(&self, domain: &str) -> bool {
        let d = domain.trim_end_matches('.').to_ascii_lowercase();
        self.local_domains.contains(&d)
    }
}

/// Splits `user@domain` at its last `@` (None for an unqualified address).
pub fn split_address(address: &str) -> (&str, Option<&str>) {
    match address.rfind('@') {
        Some(at) => (&address[..at], Some(&address[at + 1..])),
        None => (address, None),
    }
}

/// One table's answer for `address`, with the result post-processing above.
fn lookup_one(
    map: &dyn Map,
    address: &str,
    ctx: &LookupContext,
) -> Result<Option<String>, RewriteError> {
    let failed = |source| RewriteError::Lookup {
        spec: map.spec().to_string(),
        source,
    };
    let (local, domain) = split_address(address);
    let (_, ext) = split_extension(local, &ctx.delimiters);
    let queries = if map.is_pattern() {
        vec![address.to_string()]
    } else {
        let is_local = domain.is_some_and(|d| ctx.domain_is_local(d));
        address_queries(address, &ctx.delimiters, is_local)
    };
    for query in queries {
        let Some(value) = map.lookup(&query).map_err(failed)? else {
            continue;
        };
        // Split as an address list, quotes respected, each address internal.
        let parts = crate::quote::split_result(&value);
        let mut parts = parts.iter();
        let first = parts.next().cloned().unwrap_or_default();
        if parts.next().is_some() {
            log::warn!(
                "{}: multi-valued canonical lookup result for {address}: using {first}",
                map.spec()
            );
        }
        if first.is_empty() {
            return Ok(None);
        }
        // The key carried the extension when it was the full address or `user+ext`.
        let key_had_ext = query.eq_ignore_ascii_case(address) || query.eq_ignore_ascii_case(local);
        let mut result = if let Some(new_domain) = first.strip_prefix('@') {
            format!("{local}@{new_domain}")
        } else if let (Some(ext), true, false) = (ext, ctx.propagate, key_had_ext) {
            add_extension(&first, ext, &ctx.delimiters)
        } else {
            first
        };
        if !result.contains('@') && !ctx.myorigin.is_empty() {
            result = format!("{result}@{}", ctx.myorigin);
        }
        return Ok(Some(result));
    }
    Ok(None)
}

/// `new@d` with extension `ext` -> `new+ext@d` (the delimiter the address used is
/// not known here: the first of recipient_delimiter, as Postfix uses).
fn add_extension(address: &str, ext: &str, delimiters: &str) -> String {
    let Some(delim) = delimiters.chars().next() else {
        return address.to_string();
    };
    let (local, domain) = split_address(address);
    if split_extension(local, delimiters).1.is_some() {
        // The result has an extension of its own: it wins.
        return address.to_string();
    }
    match domain {
        Some(d) => format!("{local}{delim}{ext}@{d}"),
        None => format!("{local}{delim}{ext}"),
    }
}

/// `address` rewritten by the first table of `maps` that answers, repeated until
/// the result is stable. The null address is never rewritten.
pub fn map11(
    maps: &[Box<dyn Map>],
    address: &str,
    ctx: &LookupContext,
) -> Result<String, RewriteError> {
    let mut current = address.to_string();
    if current.is_empty() || maps.is_empty() {
        return Ok(current);
    }
    for _ in 0..MAX_RECURSION {
        let mut found = None;
        for map in maps {
            if let Some(v) = lookup_one(map.as_ref(), &current, ctx)? {
                found = Some(v);
                break;
            }
        }
        match found {
            Some(v) if v != current => current = v,
            _ => return Ok(current),
        }
    }
    log::warn!("unreasonable canonical map nesting for {address}");
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_maps::open_map;

    fn ctx() -> LookupContext {
        LookupContext {
            delimiters: "+".into(),
            propagate: true,
            myorigin: "example.com".into(),
            local_domains: vec!["example.com".into()],
        }
    }

    fn maps(spec: &str) -> Vec<Box<dyn Map>> {
        vec![open_map(spec).expect("test table")]
    }

    #[test]
    fn lookup_order_and_forms() {
        let m = maps(
            "inline:{ joe@example.com=Joe.Smith@example.com, bob=robert, @old.test=@new.test }",
        );
        let r = |a: &str| map11(&m, a, &ctx()).expect("lookup");
        assert_eq!(r("joe@example.com"), "Joe.Smith@example.com");
        // Extension: matched without it, propagated onto the result.
        assert_eq!(r("joe+lists@example.com"), "Joe.Smith+lists@example.com");
        // Bare user only in our domains; an unqualified result gets @myorigin.
        assert_eq!(r("bob@example.com"), "robert@example.com");
        assert_eq!(r("bob@elsewhere.test"), "bob@elsewhere.test");
        // @domain -> @domain keeps the local part.
        assert_eq!(r("ann+x@old.test"), "ann+x@new.test");
        assert_eq!(r(""), "");
    }

    #[test]
    fn no_propagation_when_disabled() {
        let m = maps("inline:{ joe@example.com=js@example.com }");
        let mut c = ctx();
        c.propagate = false;
        assert_eq!(
            map11(&m, "joe+x@example.com", &c).expect("lookup"),
            "js@example.com"
        );
    }

    #[test]
    fn recursion_until_stable_and_bounded() {
        let m = maps("inline:{ a@example.com=b@example.com, b@example.com=c@example.com }");
        assert_eq!(
            map11(&m, "a@example.com", &ctx()).expect("lookup"),
            "c@example.com"
        );
        // A loop ends after MAX_RECURSION lookups with the last result.
        let l = maps("inline:{ x@example.com=y@example.com, y@example.com=x@example.com }");
        let out = map11(&l, "x@example.com", &ctx()).expect("lookup");
        assert!(out == "x@example.com" || out == "y@example.com");
    }

    #[test]
    fn first_table_with_an_answer_wins() {
        let m = vec![
            open_map("inline:{ a@example.com=first@example.com }").expect("t1"),
            open_map("inline:{ a@example.com=second@example.com }").expect("t2"),
        ];
        assert_eq!(
            map11(&m, "a@example.com", &ctx()).expect("l"),
            "first@example.com"
        );
    }
}
