//! transport(5): the transport_maps lookup and the `transport:nexthop` result rules.
//!
//! Keys tried, first hit wins (a lookup error ends the search with the error):
//! `user+ext@domain`, `user@domain` (extension removed at recipient_delimiter), `domain`,
//! then each parent as `.parent` (or as `parent` when `transport_maps` is listed in
//! parent_domain_matches_subdomains, Postfix's deprecated form), then `*`. Pattern tables
//! (regexp, pcre) are asked with the full address, then the domain, then `*`. The null
//! address is looked up as `$empty_address_recipient@$myhostname`'s forms.
//!
//! A result `transport:nexthop` applies as the man page says: both empty -> nothing
//! changes; a transport with an empty nexthop -> that transport, nexthop the recipient
//! domain; an empty transport with a nexthop -> the class's transport, that nexthop.
//! A result without a colon is a transport name alone (Postfix accepts that too).

use crate::error::ResolveError;
use rostfix_maps::address::split_extension;
use rostfix_maps::Map;

/// What a transport table entry says, before it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportEntry {
    /// Empty: keep the class's transport.
    pub transport: String,
    /// Empty: see the module docs.
    pub nexthop: String,
}

/// Splits `transport:nexthop` (the nexthop may itself contain colons).
pub fn split_transport(spec: &str) -> (&str, &str) {
    match spec.split_once(':') {
        Some((t, n)) => (t.trim(), n.trim()),
        None => (spec.trim(), ""),
    }
}

/// The keys for `address` in lookup order (see the module docs).
pub fn transport_keys(address: &str, delimiter: &str, parent_matches: bool) -> Vec<String> {
    let mut keys = Vec::new();
    let (local, domain) = match address.rfind('@') {
        Some(at) => (&address[..at], address[at + 1..].to_ascii_lowercase()),
        None => (address, String::new()),
    };
    let mut push = |k: String| {
        if !k.is_empty() && !keys.contains(&k) {
            keys.push(k);
        }
    };
    if !domain.is_empty() {
        push(address.to_string());
        if let (user, Some(_)) = split_extension(local, delimiter) {
            push(format!("{user}@{domain}"));
        }
        push(domain.clone());
        let mut rest = domain.as_str();
        while let Some(i) = rest.find('.') {
            let parent = &rest[i..];
            if parent.len() > 1 {
                push(if parent_matches {
                    parent[1..].to_string()
                } else {
                    parent.to_string()
                });
            }
            rest = &parent[1..];
        }
    }
    push("*".to_string());
    keys
}

/// Looks `address` up in the tables, in order; the first entry found.
pub fn lookup(
    maps: &[Box<dyn Map>],
    address: &str,
    delimiter: &str,
    parent_matches: bool,
) -> Result<Option<TransportEntry>, ResolveError> {
    if maps.is_empty() {
        return Ok(None);
    }
    let keys = transport_keys(address, delimiter, parent_matches);
    let domain = address.rfind('@').map(|at| &address[at + 1..]);
    for map in maps {
        let err = |source| ResolveError::Lookup {
            param: "transport_maps".into(),
            source,
        };
        let found = if map.is_pattern() {
            let mut v = map.lookup(address).map_err(err)?;
            if v.is_none() {
                if let Some(d) = domain.filter(|d| !d.is_empty()) {
                    v = map.lookup(d).map_err(err)?;
                }
            }
            v
        } else {
            let mut v = None;
            for k in &keys {
                v = map.lookup(k).map_err(err)?;
                if v.is_some() {
                    break;
                }
            }
            v
        };
        if let Some(value) = found {
            let (t, n) = split_transport(&value);
            return Ok(Some(TransportEntry {
                transport: t.to_string(),
                nexthop: n.to_string(),
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_maps::open_map;

    #[test]
    fn key_order() {
        assert_eq!(
            transport_keys("u+x@A.Example.com", "+", false),
            [
                "u+x@A.Example.com",
                "u@a.example.com",
                "a.example.com",
                ".example.com",
                ".com",
                "*"
            ]
        );
        assert_eq!(
            transport_keys("u@a.example.com", "+", true),
            [
                "u@a.example.com",
                "a.example.com",
                "example.com",
                "com",
                "*"
            ]
        );
        assert_eq!(transport_keys("u", "+", false), ["*"]);
    }

    #[test]
    fn first_hit_and_wildcard() {
        let m = vec![open_map(
            "inline:{ example.com=smtp:[10.0.0.1]:2525, .example.com=slow:, *=relay:[gw] }",
        )
        .unwrap()];
        let l = |a| lookup(&m, a, "+", false).unwrap().unwrap();
        assert_eq!(
            l("a@example.com"),
            TransportEntry {
                transport: "smtp".into(),
                nexthop: "[10.0.0.1]:2525".into()
            }
        );
        assert_eq!(l("a@sub.example.com").transport, "slow");
        assert_eq!(l("a@sub.example.com").nexthop, "");
        assert_eq!(l("a@other.org").nexthop, "[gw]");
    }

    #[test]
    fn user_entries_beat_domain_entries() {
        let m =
            vec![
                open_map("inline:{ { bob@example.com = error:5.1.1 gone }, example.com=smtp }")
                    .unwrap(),
            ];
        let e = lookup(&m, "bob+tag@example.com", "+", false)
            .unwrap()
            .unwrap();
        assert_eq!(e.transport, "error");
        assert_eq!(e.nexthop, "5.1.1 gone");
    }

    #[test]
    fn split_forms() {
        assert_eq!(split_transport("smtp:[h]:25"), ("smtp", "[h]:25"));
        assert_eq!(split_transport(":[h]"), ("", "[h]"));
        assert_eq!(split_transport("local"), ("local", ""));
        assert_eq!(split_transport(":"), ("", ""));
    }
}
