//! reject_unlisted_recipient / reject_unlisted_sender for the address classes besides
//! local (local.rs), as Postfix's check_rcpt_maps: an address in a virtual alias
//! domain must be a key of virtual_alias_maps ("User unknown in virtual alias table"),
//! one in a virtual mailbox domain a key of virtual_mailbox_maps or
//! virtual_alias_maps when virtual_mailbox_maps is set ("... virtual mailbox table"),
//! one in relay_domains a key of relay_recipient_maps when that is set ("... relay
//! recipient table"). An unset (or unopenable, warned at start) table means no check,
//! as an unset one does in Postfix. Other
//! domains are not ours to judge. Without this, a virtual-hosting server accepts mail
//! for any user of its domains and bounces it later: backscatter.
//!
//! Keys are tried in Postfix's order for a non-local domain (`user+ext@domain`,
//! `user@domain`, `@domain`); pattern tables get the address. A table that fails
//! answers a temporary error (the caller's 4xx), never "unknown".

use rostfix_maps::{address::lookup_address, Map, MapError};
use rostfix_resolve::domain_list::{split_list, DomainList};
use rostfix_resolve::ResolveError;
use std::sync::Arc;

/// What the tables say about an address outside the local domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A table knows it, or its domain is not one whose users we list.
    Known,
    /// Its domain is ours but no table has it; names the table as Postfix's reply.
    Unknown(&'static str),
}

/// A failed domain-list or table lookup.
#[derive(Debug, thiserror::Error)]
pub enum UnlistedError {
    #[error(transparent)]
    Domain(#[from] ResolveError),
    #[error(transparent)]
    Table(#[from] MapError),
}

/// The domain lists and recipient tables of the non-local classes.
#[derive(Clone, Default)]
pub struct ClassTables {
    alias_domains: Option<Arc<DomainList>>,
    mailbox_domains: Option<Arc<DomainList>>,
    alias_maps: Vec<Arc<dyn Map>>,
    mailbox_maps: Vec<Arc<dyn Map>>,
    relay_recipient_maps: Vec<Arc<dyn Map>>,
    delimiter: String,
}

impl std::fmt::Debug for ClassTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClassTables(alias {}, mailbox {}, relay {})",
            self.alias_maps.len(),
            self.mailbox_maps.len(),
            self.relay_recipient_maps.len()
        )
    }
}

fn open_tables(param: &str, value: &str, warnings: &mut Vec<String>) -> Vec<Arc<dyn Map>> {
    let mut out = Vec::new();
    for spec in split_list(value) {
        match rostfix_maps::open_map(&spec) {
            Ok(m) => out.push(Arc::from(m)),
            Err(e) => warnings.push(format!(
                "{param}: cannot open {spec}: {e}; not used by reject_unlisted_*"
            )),
        }
    }
    out
}

fn domain_list(
    cf: &rostfix_config::MainCf,
    param: &str,
) -> Result<Option<Arc<DomainList>>, ResolveError> {
    let items = split_list(&cf.get(param));
    if items.is_empty() {
        return Ok(None);
    }
    let parent = cf
        .get_list("parent_domain_matches_subdomains")
        .iter()
        .any(|p| p == param);
    Ok(Some(Arc::new(DomainList::new(param, &items, parent)?)))
}

impl ClassTables {
    /// Opens the lists and tables (before confinement). A domain list that cannot be
    /// opened is a start-up error, as for routing; a recipient table that cannot be
    /// opened is skipped with a warning, as local_recipient_maps tables are.
    pub fn from_config(
        cf: &rostfix_config::MainCf,
        warnings: &mut Vec<String>,
    ) -> Result<ClassTables, ResolveError> {
        Ok(ClassTables {
            alias_domains: domain_list(cf, "virtual_alias_domains")?,
            mailbox_domains: domain_list(cf, "virtual_mailbox_domains")?,
            alias_maps: open_tables(
                "virtual_alias_maps",
                &cf.get("virtual_alias_maps"),
                warnings,
            ),
            mailbox_maps: open_tables(
                "virtual_mailbox_maps",
                &cf.get("virtual_mailbox_maps"),
                warnings,
            ),
            relay_recipient_maps: open_tables(
                "relay_recipient_maps",
                &cf.get("relay_recipient_maps"),
                warnings,
            ),
            delimiter: cf.get("recipient_delimiter"),
        })
    }

    fn in_any(&self, tables: &[Arc<dyn Map>], address: &str) -> Result<bool, MapError> {
        for t in tables {
            if lookup_address(t.as_ref(), address, &self.delimiter, false)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Judges `address` (lower-cased `local@domain`, domain not local). `relay`
    /// answers whether the domain is in relay_domains.
    pub fn check(
        &self,
        address: &str,
        domain: &str,
        relay: impl FnOnce(&str) -> Result<bool, MapError>,
    ) -> Result<Verdict, UnlistedError> {
        if let Some(list) = &self.alias_domains {
            if list.matches(domain)? {
                return Ok(if self.in_any(&self.alias_maps, address)? {
                    Verdict::Known
                } else {
                    Verdict::Unknown("virtual alias table")
                });
            }
        }
        if let Some(list) = &self.mailbox_domains {
            if list.matches(domain)? {
                if self.mailbox_maps.is_empty() {
                    return Ok(Verdict::Known);
                }
                let known = self.in_any(&self.mailbox_maps, address)?
                    || self.in_any(&self.alias_maps, address)?;
                return Ok(if known {
                    Verdict::Known
                } else {
                    Verdict::Unknown("virtual mailbox table")
                });
            }
        }
        if !self.relay_recipient_maps.is_empty() && relay(domain)? {
            let known = self.in_any(&self.relay_recipient_maps, address)?
                || self.in_any(&self.alias_maps, address)?;
            return Ok(if known {
                Verdict::Known
            } else {
                Verdict::Unknown("relay recipient table")
            });
        }
        Ok(Verdict::Known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(text: &str) -> ClassTables {
        let cf = rostfix_config::MainCf::parse(text, std::path::Path::new("/etc/rostfix/main.cf"))
            .expect("main.cf parses");
        let mut warnings = Vec::new();
        let t = ClassTables::from_config(&cf, &mut warnings).expect("lists open");
        assert!(warnings.is_empty(), "{warnings:?}");
        t
    }

    fn no_relay(_: &str) -> Result<bool, MapError> {
        Ok(false)
    }

    #[test]
    fn virtual_mailbox_domain_users_must_be_listed() {
        let t = tables(
            "virtual_mailbox_domains = mbox.test\n\
             virtual_mailbox_maps = inline:{ alice@mbox.test=alice/ }\n\
             virtual_alias_maps = inline:{ team@mbox.test=alice@mbox.test }\n\
             recipient_delimiter = +\n",
        );
        let check = |a: &str, d: &str| t.check(a, d, no_relay).expect("lookups work");
        assert_eq!(check("alice@mbox.test", "mbox.test"), Verdict::Known);
        assert_eq!(check("alice+tag@mbox.test", "mbox.test"), Verdict::Known);
        assert_eq!(check("team@mbox.test", "mbox.test"), Verdict::Known);
        assert_eq!(
            check("mallory@mbox.test", "mbox.test"),
            Verdict::Unknown("virtual mailbox table")
        );
        assert_eq!(
            check("anyone@elsewhere.test", "elsewhere.test"),
            Verdict::Known
        );
    }

    #[test]
    fn catch_all_and_alias_domains() {
        let t = tables(
            "virtual_alias_domains = alias.test\n\
             virtual_alias_maps = inline:{ info@alias.test=bob@example.org }\n\
             virtual_mailbox_domains = catch.test\n\
             virtual_mailbox_maps = inline:{ @catch.test=all/ }\n",
        );
        let check = |a: &str, d: &str| t.check(a, d, no_relay).expect("lookups work");
        assert_eq!(check("info@alias.test", "alias.test"), Verdict::Known);
        assert_eq!(
            check("x@alias.test", "alias.test"),
            Verdict::Unknown("virtual alias table")
        );
        assert_eq!(check("whoever@catch.test", "catch.test"), Verdict::Known);
        // No virtual_mailbox_maps: Postfix does not check the virtual mailbox class.
        let unset = tables("virtual_mailbox_domains = mbox.test\n");
        assert_eq!(
            unset.check("x@mbox.test", "mbox.test", no_relay).unwrap(),
            Verdict::Known
        );
    }

    #[test]
    fn relay_recipients_only_when_listed() {
        let t = tables("relay_recipient_maps = inline:{ a@relay.test=OK }\n");
        let relay = |d: &str| -> Result<bool, MapError> { Ok(d == "relay.test") };
        assert_eq!(
            t.check("a@relay.test", "relay.test", relay).unwrap(),
            Verdict::Known
        );
        assert_eq!(
            t.check("b@relay.test", "relay.test", relay).unwrap(),
            Verdict::Unknown("relay recipient table")
        );
        assert_eq!(
            t.check("b@other.test", "other.test", relay).unwrap(),
            Verdict::Known
        );
        let none = tables("");
        assert_eq!(
            none.check("b@relay.test", "relay.test", relay).unwrap(),
            Verdict::Known
        );
    }
}
