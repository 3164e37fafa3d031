//! reject_unlisted_recipient for local domains: is the recipient in
//! `local_recipient_maps` (default `proxy:unix:passwd.byname $alias_maps`)?
//!
//! smtpd runs chrooted, where getpwnam cannot see /etc/passwd, so the system user
//! list (`unix:passwd.byname`) is read once before confinement (getpwent: local files
//! and whatever NSS serves); a user created later needs `rostfix reload`. Other
//! tables are opened before confinement too; one that cannot be opened (say
//! `hash:/etc/aliases` without its `.rdb`) is skipped with a warning rather than
//! making every local recipient fail. An empty local_recipient_maps turns the check
//! off, as in Postfix.
//!
//! As Postfix's check_rcpt_maps, an address that canonical_maps,
//! sender_canonical_maps, recipient_canonical_maps or virtual_alias_maps has a key
//! for is known too: it is rewritten before delivery, so the table vouches for it
//! ([`LocalRecipients::add_mapping_tables`]). Partial: the sender and recipient
//! tables are both asked for either class.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use rostfix_maps::{address::split_extension, Map, MapError};
use std::collections::HashSet;
use std::sync::Arc;

/// The tables and user list.
#[derive(Clone, Default)]
pub struct LocalRecipients {
    /// None: the check is off (empty local_recipient_maps).
    enabled: bool,
    users: Option<Arc<HashSet<String>>>,
    tables: Vec<Arc<dyn Map>>,
    /// Address rewriting tables whose keys count as known addresses.
    mapping: Vec<Arc<dyn Map>>,
    delimiter: String,
}

impl std::fmt::Debug for LocalRecipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LocalRecipients(enabled={}, users={}, tables={})",
            self.enabled,
            self.users.as_ref().map_or(0, |u| u.len()),
            self.tables.len()
        )
    }
}

/// Every user name the system knows, read with getpwent.
fn system_users() -> HashSet<String> {
    let mut out = HashSet::new();
    // SAFETY: setpwent/getpwent/endpwent are called from one thread at start-up
    // (before smtpd serves anyone or starts threads of its own); the returned pointer
    // is only read before the next getpwent call, and pw_name is a NUL-terminated
    // string owned by libc for that long.
    unsafe {
        libc::setpwent();
        loop {
            let pw = libc::getpwent();
            if pw.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*pw).pw_name);
            out.insert(name.to_string_lossy().to_lowercase());
        }
        libc::endpwent();
    }
    out
}

impl LocalRecipients {
    /// From the local_recipient_maps value. Returns warnings.
    pub fn from_param(value: &str, delimiter: &str) -> (LocalRecipients, Vec<String>) {
        let mut warnings = Vec::new();
        let mut lr = LocalRecipients {
            enabled: false,
            users: None,
            tables: Vec::new(),
            mapping: Vec::new(),
            delimiter: delimiter.to_string(),
        };
        for spec in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            lr.enabled = true;
            let bare = spec.strip_prefix("proxy:").unwrap_or(spec);
            if bare == "unix:passwd.byname" {
                lr.users = Some(Arc::new(system_users()));
                continue;
            }
            match rostfix_maps::open_map(spec) {
                Ok(m) => lr.tables.push(Arc::from(m)),
                Err(e) => warnings.push(format!(
                    "local_recipient_maps: cannot open {spec}: {e}; table skipped"
                )),
            }
        }
        (lr, warnings)
    }

    /// A list for tests: these users, these tables.
    #[cfg(test)]
    pub fn fixed(users: &[&str], tables: Vec<Arc<dyn Map>>) -> LocalRecipients {
        LocalRecipients {
            enabled: true,
            users: Some(Arc::new(users.iter().map(|u| u.to_string()).collect())),
            tables,
            mapping: Vec::new(),
            delimiter: "+".into(),
        }
    }

    #[cfg(test)]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Opens the rewriting tables (`(param, value)` pairs) whose keys are known
    /// addresses too. Returns warnings for tables that cannot be opened (skipped, as
    /// local_recipient_maps tables are).
    pub fn add_mapping_tables(&mut self, params: &[(&str, String)]) -> Vec<String> {
        let mut warnings = Vec::new();
        for (param, value) in params {
            for spec in rostfix_config::split_list(value) {
                match rostfix_maps::open_map(&spec) {
                    Ok(m) => self.mapping.push(Arc::from(m)),
                    Err(e) => warnings.push(format!(
                        "{param}: cannot open {spec}: {e}; not used by reject_unlisted_*"
                    )),
                }
            }
        }
        warnings
    }

    /// Does a rewriting table have `address` (of a local domain) as a key? Fixed
    /// tables are asked `user+ext@domain`, `user@domain`, `user+ext`, `user`,
    /// `@domain`; pattern tables the address.
    pub fn mapped(&self, address: &str) -> Result<bool, MapError> {
        for t in &self.mapping {
            let queries = if t.is_pattern() {
                vec![address.to_string()]
            } else {
                rostfix_maps::address::address_queries(address, &self.delimiter, true)
            };
            for q in queries {
                if t.lookup(&q)?.is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Is `local@domain` (domain already known to be local) a known recipient?
    pub fn known(&self, local: &str, domain: Option<&str>) -> Result<bool, MapError> {
        if !self.enabled || local.eq_ignore_ascii_case("postmaster") {
            return Ok(true);
        }
        let lower = local.to_lowercase();
        let (user, _) = split_extension(&lower, &self.delimiter);
        if let Some(users) = &self.users {
            if users.contains(&lower) || users.contains(user) {
                return Ok(true);
            }
        }
        let mut keys = Vec::new();
        if let Some(d) = domain {
            keys.push(format!("{lower}@{}", d.to_lowercase()));
        }
        keys.push(lower.clone());
        keys.push(user.to_string());
        for t in &self.tables {
            for k in &keys {
                if t.lookup(k)?.is_some() {
                    return Ok(true);
                }
            }
        }
        self.mapped(&keys[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_tables_and_extensions() {
        let aliases: Arc<dyn Map> =
            Arc::from(rostfix_maps::open_map("inline:{abuse=root, info=alice}").unwrap());
        let lr = LocalRecipients::fixed(&["alice", "bob"], vec![aliases]);
        assert!(lr.known("alice", Some("mx.test")).unwrap());
        assert!(lr.known("Alice+tag", Some("mx.test")).unwrap());
        assert!(lr.known("abuse", Some("mx.test")).unwrap());
        assert!(lr.known("INFO", None).unwrap());
        assert!(lr.known("postmaster", None).unwrap());
        assert!(!lr.known("mallory", Some("mx.test")).unwrap());
    }

    #[test]
    fn empty_param_disables() {
        let (lr, w) = LocalRecipients::from_param("", "+");
        assert!(w.is_empty());
        assert!(!lr.enabled());
        assert!(lr.known("anyone", None).unwrap());
    }

    #[test]
    fn system_users_include_root() {
        let (lr, w) =
            LocalRecipients::from_param("proxy:unix:passwd.byname texthash:/nonexistent/x", "+");
        assert_eq!(w.len(), 1);
        assert!(lr.known("root", Some("mx.test")).unwrap());
        assert!(!lr.known("no-such-user-xyzzy", Some("mx.test")).unwrap());
    }

    #[test]
    fn rewriting_table_keys_are_known() {
        let mut lr = LocalRecipients::fixed(&["alice"], Vec::new());
        let w = lr.add_mapping_tables(&[
            (
                "recipient_canonical_maps",
                "inline:{ info@mx.test=alice@mx.test }".to_string(),
            ),
            (
                "virtual_alias_maps",
                "inline:{ sales=alice, @alias.test=alice }".to_string(),
            ),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert!(lr.known("info", Some("mx.test")).unwrap());
        assert!(lr.known("Sales+x", Some("mx.test")).unwrap());
        assert!(lr.known("anyone", Some("alias.test")).unwrap());
        assert!(!lr.known("nobody", Some("mx.test")).unwrap());
    }
}
