//! The `domain` setting of the network tables (ldap, memcache, pgsql, mysql, sqlite):
//! a list of domain names and tables; only keys of the form `user@domain` whose
//! domain is listed (or found in a listed table) are looked up, so the server is not
//! asked about bare names or other domains.

use crate::error::MapError;
use crate::{open_map, Map};

/// One entry of the `domain` list.
enum DomainItem {
    Name(String),
    Table(Box<dyn Map>),
}

/// A parsed `domain` list (empty: every key is looked up).
#[derive(Default)]
pub struct DomainFilter {
    items: Vec<DomainItem>,
}

impl DomainFilter {
    /// Build from the setting's words; a word with a colon is a `type:name` table.
    pub fn new(words: &[String]) -> Result<DomainFilter, MapError> {
        let mut items = Vec::new();
        for item in words {
            if item.contains(':') {
                items.push(DomainItem::Table(open_map(item)?));
            } else {
                items.push(DomainItem::Name(item.to_lowercase()));
            }
        }
        Ok(DomainFilter { items })
    }

    /// Split a `domain` setting's value into words (commas and white space).
    pub fn words(value: &str) -> Vec<String> {
        value
            .split([',', ' ', '\t'])
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Ok(false) when `key` (already folded) is not to be looked up.
    pub fn allows(&self, key: &str) -> Result<bool, MapError> {
        if self.items.is_empty() {
            return Ok(true);
        }
        let Some(at) = key.rfind('@') else {
            return Ok(false);
        };
        if at == 0 {
            return Ok(false);
        }
        let domain = &key[at + 1..];
        for item in &self.items {
            match item {
                DomainItem::Name(name) if name == domain => return Ok(true),
                DomainItem::Name(_) => {}
                DomainItem::Table(t) => {
                    if t.lookup(domain)?.is_some() {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tables() {
        let f = DomainFilter::new(&DomainFilter::words("example.com, inline:{b.org=1}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(f.allows("u@example.com").unwrap_or(false));
        assert!(f.allows("u@b.org").unwrap_or(false));
        assert!(!f.allows("u@c.net").unwrap_or(true));
        assert!(!f.allows("example.com").unwrap_or(true));
        assert!(!f.allows("@example.com").unwrap_or(true));
        assert!(DomainFilter::default().allows("anything").unwrap_or(false));
    }
}
