//! Postfix's domain lists (match_list(3) for host names): the value of mydestination,
//! relay_domains, virtual_alias_domains and virtual_mailbox_domains.
//!
//! Entries, tried in order, the first match deciding:
//! - `example.com`: that domain; also its subdomains when the parameter is listed in
//!   parent_domain_matches_subdomains (relay_domains is, by default);
//! - `.example.com`: any subdomain of example.com;
//! - `!entry`: a match of `entry` means "not in the list" (stops the search);
//! - `/file/name`: the file's white-space separated entries, `#` comments;
//! - `type:name`: a lookup table queried with the domain (any value counts as found),
//!   then, with parent matching, `example.com`, `com`; without it `.example.com`, `.com`.
//!
//! Names compare case-insensitively without a trailing dot.

use crate::error::ResolveError;
use rostfix_maps::{open_map, Map};
use std::sync::Arc;

/// One entry of a list.
enum Entry {
    Name(String),
    Subdomains(String),
    Table(Arc<dyn Map>),
}

/// A parsed domain list.
pub struct DomainList {
    /// The parameter it came from, for error messages.
    param: String,
    parent_matches: bool,
    entries: Vec<(bool, Entry)>,
}

impl std::fmt::Debug for DomainList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DomainList({}, {} entries)",
            self.param,
            self.entries.len()
        )
    }
}

/// Lower case without a trailing dot: how domains are compared.
pub fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Splits a list value on commas and white space, keeping `{ ... }` groups (inline:
/// tables) whole: the config crate's splitter, which every list parameter uses.
pub use rostfix_config::split_list;

/// True for `type:name` (a table), false for a plain domain or `[ip]`.
fn is_table(entry: &str) -> bool {
    match entry.split_once(':') {
        Some((t, _)) => !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()),
        None => false,
    }
}

impl DomainList {
    /// Parses `items` (already split) for parameter `param`.
    pub fn new(param: &str, items: &[String], parent_matches: bool) -> Result<Self, ResolveError> {
        let mut entries = Vec::new();
        for item in items {
            Self::add(param, item, &mut entries, 0)?;
        }
        Ok(DomainList {
            param: param.to_string(),
            parent_matches,
            entries,
        })
    }

    /// An empty list (matches nothing).
    pub fn empty(param: &str) -> Self {
        DomainList {
            param: param.to_string(),
            parent_matches: false,
            entries: Vec::new(),
        }
    }

    fn add(
        param: &str,
        item: &str,
        entries: &mut Vec<(bool, Entry)>,
        depth: usize,
    ) -> Result<(), ResolveError> {
        let (negated, item) = match item.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, item),
        };
        if item.starts_with('/') && depth == 0 {
            let text = std::fs::read_to_string(item).map_err(|e| ResolveError::Open {
                param: param.to_string(),
                source: rostfix_maps::MapError::Io {
                    path: item.into(),
                    source: e,
                },
            })?;
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or("");
                for word in split_list(line) {
                    // A negation in front of a file applies to each of its entries.
                    let w = if negated { format!("!{word}") } else { word };
                    Self::add(param, &w, entries, depth + 1)?;
                }
            }
            return Ok(());
        }
        let entry = if is_table(item) {
            let map = open_map(item).map_err(|source| ResolveError::Open {
                param: param.to_string(),
                source,
            })?;
            Entry::Table(Arc::from(map))
        } else if let Some(rest) = item.strip_prefix('.') {
            Entry::Subdomains(normalize_domain(rest))
        } else {
            Entry::Name(normalize_domain(item))
        };
        entries.push((negated, entry));
        Ok(())
    }

    /// True if the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Does `domain` match? A table lookup error is an error, never "no".
    pub fn matches(&self, domain: &str) -> Result<bool, ResolveError> {
        let d = normalize_domain(domain);
        if d.is_empty() {
            return Ok(false);
        }
        for (negated, entry) in &self.entries {
            let hit = match entry {
                Entry::Name(n) => *n == d || (self.parent_matches && d.ends_with(&format!(".{n}"))),
                Entry::Subdomains(n) => d.ends_with(&format!(".{n}")),
                Entry::Table(map) => self.table_hit(map.as_ref(), &d)?,
            };
            if hit {
                return Ok(!negated);
            }
        }
        Ok(false)
    }

    fn table_hit(&self, map: &dyn Map, d: &str) -> Result<bool, ResolveError> {
        let err = |source| ResolveError::Lookup {
            param: self.param.clone(),
            source,
        };
        if map.lookup(d).map_err(err)?.is_some() {
            return Ok(true);
        }
        let mut rest = d;
        while let Some(i) = rest.find('.') {
            let parent = &rest[i..];
            let key = if self.parent_matches {
                &parent[1..]
            } else {
                parent
            };
            if !key.is_empty() && map.lookup(key).map_err(err)?.is_some() {
                return Ok(true);
            }
            rest = &parent[1..];
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &str, parent: bool) -> DomainList {
        DomainList::new("test", &split_list(v), parent).expect("list")
    }

    #[test]
    fn split_keeps_braces_whole() {
        assert_eq!(
            split_list("a.org, inline:{ x=1, y=2 } b.org"),
            ["a.org", "inline:{ x=1, y=2 }", "b.org"]
        );
    }

    #[test]
    fn plain_names_match_exactly_unless_parent_matching() {
        let l = list("Example.COM.", false);
        assert!(l.matches("example.com").unwrap());
        assert!(l.matches("EXAMPLE.com.").unwrap());
        assert!(!l.matches("sub.example.com").unwrap());
        let p = list("example.com", true);
        assert!(p.matches("sub.example.com").unwrap());
        assert!(!p.matches("badexample.com").unwrap());
    }

    #[test]
    fn dot_pattern_matches_subdomains_only() {
        let l = list(".example.com", false);
        assert!(l.matches("a.b.example.com").unwrap());
        assert!(!l.matches("example.com").unwrap());
    }

    #[test]
    fn negation_stops_the_search() {
        let l = list("!secret.example.com, .example.com", false);
        assert!(!l.matches("secret.example.com").unwrap());
        assert!(l.matches("open.example.com").unwrap());
    }

    #[test]
    fn tables_are_looked_up_with_parents() {
        let l = list("inline:{ example.com=x, .example.net=y }", false);
        assert!(l.matches("example.com").unwrap());
        assert!(!l.matches("a.example.com").unwrap());
        assert!(l.matches("a.example.net").unwrap());
        let p = list("inline:{ example.com=x }", true);
        assert!(p.matches("a.b.example.com").unwrap());
    }

    #[test]
    fn files_hold_entries() {
        let dir = std::env::temp_dir().join(format!("resolve-dl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("domains");
        std::fs::write(&f, "# ours\none.org two.org\n.three.org # subs\n").unwrap();
        let l = list(f.to_str().unwrap(), false);
        assert!(l.matches("two.org").unwrap());
        assert!(l.matches("x.three.org").unwrap());
        assert!(!l.matches("three.org").unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_table_is_an_open_error() {
        assert!(DomainList::new("p", &["hash:/nonexistent/x".into()], false).is_err());
    }
}
