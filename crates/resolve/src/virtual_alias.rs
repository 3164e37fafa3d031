//! Virtual alias expansion (virtual(5), Postfix's cleanup_map1n): an address is replaced
//! by the addresses virtual_alias_maps gives for it, recursively.
//!
//! Rules, as Postfix applies them:
//! - the expansion is breadth first over a growing list; each list entry is looked up
//!   again after it was replaced (recursion), at most virtual_alias_recursion_limit
//!   times per entry, and the list may grow to virtual_alias_expansion_limit addresses;
//!   exceeding either is a temporary error (Postfix: "message not accepted, try again
//!   later"), never a silent truncation;
//! - an address already looked up is not looked up again but kept: `a -> a, b` delivers
//!   to `a` (expanding into itself) and `b`; loops terminate;
//! - an address with no mapping is final; duplicates in the result are removed
//!   (case-insensitively, first kept);
//! - a lookup error is a temporary error.
//!
//! The table lookup itself (the mail_addr_find key order, extension propagation,
//! qualification of unqualified results) is the caller's closure, so these rules are
//! unit-tested with plain data.

use crate::error::ResolveError;
use std::collections::HashSet;

/// Why an expansion failed (all temporary: the recipient stays queued).
#[derive(Debug, thiserror::Error)]
pub enum ExpandError {
    /// A table lookup failed.
    #[error(transparent)]
    Lookup(#[from] ResolveError),
    /// virtual_alias_recursion_limit reached.
    #[error("unreasonable virtual_alias_maps map nesting for {0}")]
    Recursion(String),
    /// virtual_alias_expansion_limit reached.
    #[error("unreasonable virtual_alias_maps map expansion size for {0}")]
    Size(String),
}

/// Limits of one expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandLimits {
    /// virtual_alias_recursion_limit (at least 1).
    pub recursion: usize,
    /// virtual_alias_expansion_limit (at least 1).
    pub expansion: usize,
}

/// The table lookup an expansion uses: `Ok(Some(addresses))` when mapped.
pub type AliasLookup<'a> = dyn FnMut(&str) -> Result<Option<Vec<String>>, ResolveError> + 'a;

/// Expands `address`. `lookup` answers `Ok(Some(addresses))` for a mapped address (the
/// addresses already qualified), `Ok(None)` when the address has no mapping.
pub fn expand(
    address: &str,
    limits: ExpandLimits,
    lookup: &mut AliasLookup<'_>,
) -> Result<Vec<String>, ExpandError> {
    let mut list = vec![address.to_string()];
    let mut seen: HashSet<String> = HashSet::new();
    let mut arg = 0;
    while arg < list.len() {
        if list.len() > limits.expansion.max(1) {
            return Err(ExpandError::Size(address.to_string()));
        }
        let mut count = 0;
        loop {
            let current = list[arg].clone();
            let key = current.to_lowercase();
            if seen.contains(&key) {
                break;
            }
            if count >= limits.recursion.max(1) {
                return Err(ExpandError::Recursion(address.to_string()));
            }
            count += 1;
            match lookup(&current)? {
                Some(results) if !results.is_empty() => {
                    seen.insert(key);
                    let mut results = results.into_iter();
                    if let Some(first) = results.next() {
                        list[arg] = first;
                    }
                    list.extend(results);
                }
                // An empty result would make the recipient vanish: keep it instead.
                _ => break,
            }
        }
        arg += 1;
    }
    let mut unique = HashSet::new();
    list.retain(|a| unique.insert(a.to_lowercase()));
    Ok(list)
}

/// Splits a table value into addresses: commas and white space separate them, except
/// inside double quotes; `<addr>` loses its brackets.
pub fn split_addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if !quoted && (c == ',' || c.is_whitespace()) => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.into_iter()
        .map(|a| {
            a.strip_prefix('<')
                .and_then(|x| x.strip_suffix('>'))
                .map_or(a.clone(), str::to_string)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const LIMITS: ExpandLimits = ExpandLimits {
        recursion: 1000,
        expansion: 1000,
    };

    fn run(
        table: &[(&str, &str)],
        addr: &str,
        limits: ExpandLimits,
    ) -> Result<Vec<String>, ExpandError> {
        let map: HashMap<String, String> = table
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        expand(addr, limits, &mut |a| {
            Ok(map.get(a).map(|v| split_addresses(v)))
        })
    }

    #[test]
    fn rewrites_to_any_addresses_recursively() {
        let t = [
            ("info@example.com", "sales@example.com, bob@remote.org"),
            ("sales@example.com", "alice@local, carol@local"),
        ];
        assert_eq!(
            run(&t, "info@example.com", LIMITS).unwrap(),
            ["alice@local", "bob@remote.org", "carol@local"]
        );
    }

    #[test]
    fn unmapped_address_is_kept() {
        assert_eq!(run(&[], "x@y", LIMITS).unwrap(), ["x@y"]);
    }

    #[test]
    fn mapping_to_itself_keeps_the_address() {
        let t = [("a@d", "a@d, b@d")];
        assert_eq!(run(&t, "a@d", LIMITS).unwrap(), ["a@d", "b@d"]);
        let t = [("a@d", "b@d, a@d")];
        assert_eq!(run(&t, "a@d", LIMITS).unwrap(), ["b@d", "a@d"]);
    }

    #[test]
    fn loops_terminate_and_duplicates_go() {
        let t = [("a@d", "b@d"), ("b@d", "a@d, c@d"), ("c@d", "b@d")];
        let r = run(&t, "a@d", LIMITS).unwrap();
        let mut sorted = r.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), r.len(), "no duplicates: {r:?}");
        assert!(r.contains(&"a@d".to_string()) || r.contains(&"b@d".to_string()));
    }

    #[test]
    fn recursion_limit_is_a_temporary_error() {
        let t = [("a1@d", "a2@d"), ("a2@d", "a3@d"), ("a3@d", "a4@d")];
        let small = ExpandLimits {
            recursion: 2,
            expansion: 100,
        };
        assert!(matches!(
            run(&t, "a1@d", small),
            Err(ExpandError::Recursion(_))
        ));
        assert_eq!(
            run(
                &t,
                "a1@d",
                ExpandLimits {
                    recursion: 4,
                    ..small
                }
            )
            .unwrap(),
            ["a4@d"]
        );
    }

    #[test]
    fn expansion_limit_is_a_temporary_error() {
        let t = [("list@d", "u1@d u2@d u3@d u4@d")];
        let small = ExpandLimits {
            recursion: 10,
            expansion: 3,
        };
        assert!(matches!(
            run(&t, "list@d", small),
            Err(ExpandError::Size(_))
        ));
        assert_eq!(run(&t, "list@d", LIMITS).unwrap().len(), 4);
    }

    #[test]
    fn lookup_errors_propagate() {
        let r = expand("a@d", LIMITS, &mut |_| {
            Err(ResolveError::BadTransport("x".into()))
        });
        assert!(matches!(r, Err(ExpandError::Lookup(_))));
    }

    #[test]
    fn splitting_respects_quotes_and_brackets() {
        assert_eq!(
            split_addresses("\"a b\"@d, <c@d>  e@d"),
            ["\"a b\"@d", "c@d", "e@d"]
        );
    }
}
