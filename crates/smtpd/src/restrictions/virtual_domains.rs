//! The virtual domains that permit_auth_destination and reject_unauth_destination
//! count as final destinations besides mydestination: virtual_alias_domains (by
//! default the domains of virtual_alias_maps) and virtual_mailbox_domains, Postfix's
//! RESOLVE_CLASS_FINAL. Without them an Internet client could not send to a virtual
//! domain (iRedMail, Mailu, ISPConfig host only such domains). The lists are read as
//! trivial-rewrite reads them (rostfix-resolve's domain lists), so smtpd and qmgr agree
//! on which domains are ours.

use rostfix_resolve::domain_list::{split_list, DomainList};
use rostfix_resolve::ResolveError;
use std::sync::Arc;

/// virtual_alias_domains and virtual_mailbox_domains, opened at start.
#[derive(Debug, Clone, Default)]
pub struct VirtualDomains {
    lists: Vec<Arc<DomainList>>,
}

impl VirtualDomains {
    /// Opens both lists; a table that cannot be opened is a start-up error, as in
    /// Postfix's trivial-rewrite (routing without it would be wrong).
    pub fn from_config(cf: &rostfix_config::MainCf) -> Result<VirtualDomains, ResolveError> {
        let parent = cf.get_list("parent_domain_matches_subdomains");
        let mut lists = Vec::new();
        for param in ["virtual_alias_domains", "virtual_mailbox_domains"] {
            let items = split_list(&cf.get(param));
            if !items.is_empty() {
                let parent_matches = parent.iter().any(|p| p == param);
                lists.push(Arc::new(DomainList::new(param, &items, parent_matches)?));
            }
        }
        Ok(VirtualDomains { lists })
    }

    /// Whether `domain` is a virtual alias or virtual mailbox domain. `Err` for a
    /// failed lookup: the caller answers with a temporary error.
    pub fn matches(&self, domain: &str) -> Result<bool, ResolveError> {
        for list in &self.lists {
            if list.matches(domain)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(text: &str) -> VirtualDomains {
        let cf = rostfix_config::MainCf::parse(text, std::path::Path::new("/etc/rostfix/main.cf"))
            .expect("main.cf parses");
        VirtualDomains::from_config(&cf).expect("lists open")
    }

    #[test]
    fn both_virtual_classes_are_ours() {
        let v = domains(
            "virtual_mailbox_domains = inline:{ mbox.test=OK }\n\
             virtual_alias_domains = alias.test\n",
        );
        assert!(v.matches("MBOX.test.").unwrap());
        assert!(v.matches("alias.test").unwrap());
        assert!(!v.matches("sub.mbox.test").unwrap());
        assert!(!v.matches("elsewhere.test").unwrap());
    }

    #[test]
    fn alias_domains_default_to_the_alias_maps_domains() {
        let v = domains("virtual_alias_maps = inline:{ alias.test=x, info@alias.test=joe }\n");
        assert!(v.matches("alias.test").unwrap());
        assert!(!v.matches("other.test").unwrap());
        assert!(!domains("").matches("alias.test").unwrap());
    }
}
