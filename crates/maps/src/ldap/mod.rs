//! `ldap:FILE` tables: a search per lookup, FILE in Postfix's ldap_table(5) syntax
//! (see [`config`]).
//!
//! The key (folded to lower case, as Postfix does) is put into `query_filter` and
//! `search_base` with the SQL tables' `%` templates, each piece escaped for an LDAP
//! filter (RFC 4515) or a DN (RFC 4514). Every value of every `result_attribute` of
//! every entry found goes through `result_format`; the results are joined with
//! commas, as Postfix does. One connection is kept open between lookups and reopened
//! (trying the `server_host` list in order) after a failure.
//!
//! The client is the `ldap3` crate's synchronous API, which runs its own small tokio
//! runtime per connection: it is the one mature LDAP client in Rust, and
//! [`Map::lookup`] is synchronous. TLS goes through its rustls build: `ldaps://`
//! servers, and `start_tls = yes` on `ldap://` ones (the StartTLS operation before the
//! bind, so the password never crosses in clear); see [`tls`] for the certificate
//! checks.
//!
//! A server that cannot be reached, a timeout, or a search failure (other than "no
//! such object", which is "not found") is [`MapError::Lookup`], so the caller defers
//! instead of bouncing.

pub mod config;
pub mod tls;

use crate::domain::DomainFilter;
use crate::error::MapError;
use crate::sql::template::{no_quote, Needs};
use crate::Map;
use config::{LdapConfig, Scope};
use ldap3::{DerefAliases, LdapConn, LdapConnSettings, SearchEntry, SearchOptions};
use std::path::Path;
use std::sync::Mutex;

/// LDAP result code noSuchObject: the search base does not exist, which Postfix
/// treats as "not found".
const NO_SUCH_OBJECT: u32 = 32;
/// sizeLimitExceeded.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// An ldap: table.
pub struct LdapMap {
    spec: String,
    cfg: LdapConfig,
    needs: Needs,
    domains: DomainFilter,
    /// The TLS client configuration when the table uses TLS; made at open time (the
    /// files may be outside a later chroot), and a failure is kept to be reported at
    /// each lookup as a temporary error, as Postfix does when it cannot set the TLS
    /// options.
    tls: Option<Result<std::sync::Arc<rustls::ClientConfig>, String>>,
    conn: Mutex<Option<LdapConn>>,
}

/// Append `text` escaped for a search filter value.
fn filter_quote(text: &str, out: &mut String) {
    out.push_str(&ldap3::ldap_escape(text));
}

/// Append `text` escaped for a DN attribute value.
fn dn_quote(text: &str, out: &mut String) {
    out.push_str(&ldap3::dn_escape(text));
}

impl LdapMap {
    /// Open `spec` from `file`. No connection is made yet: an unreachable server is a
    /// lookup-time (temporary) error, not an open failure.
    pub fn open(spec: &str, file: &Path) -> Result<LdapMap, MapError> {
        let cfg = LdapConfig::load(file)?;
        let needs = Needs::of(&[&cfg.query_filter, &cfg.search_base, &cfg.result_format]);
        let uses_tls = cfg.start_tls || cfg.servers.iter().any(|u| u.starts_with("ldaps://"));
        let tls = uses_tls.then(|| {
            tls::client_config(&cfg.tls).map_err(|e| {
                log::warn!("{spec}: {e}");
                e.to_string()
            })
        });
        Ok(LdapMap {
            tls,
            spec: spec.to_string(),
            domains: DomainFilter::new(&cfg.domain)?,
            needs,
            cfg,
            conn: Mutex::new(None),
        })
    }

    fn lookup_error(&self, reason: String) -> MapError {
        MapError::Lookup {
            table: self.spec.clone(),
            reason,
        }
    }

    /// Connect (and bind) to the first server that answers.
    fn connect(&self) -> Result<LdapConn, MapError> {
        let mut last = String::from("no server_host");
        let tls = match &self.tls {
            Some(Err(e)) => return Err(self.lookup_error(e.clone())),
            Some(Ok(config)) => Some(config),
            None => None,
        };
        for url in &self.cfg.servers {
            let mut settings = LdapConnSettings::new().set_conn_timeout(self.cfg.timeout);
            if let Some(config) = tls {
                // StartTLS only on ldap:// URLs: ldaps:// is TLS from the start and
                // ldapi:// is a local socket (ldap3 ignores it there too).
                settings = settings
                    .set_config(config.clone())
                    .set_starttls(self.cfg.start_tls && url.starts_with("ldap://"));
            }
            let mut conn = match LdapConn::with_settings(settings, url) {
                Ok(c) => c,
                Err(e) => {
                    log::warn!("{}: cannot connect to LDAP server {url}: {e}", self.spec);
                    last = format!("cannot connect to LDAP server {url}: {e}");
                    continue;
                }
            };
            if self.cfg.bind && !self.cfg.bind_dn.is_empty() {
                let bound = conn
                    .with_timeout(self.cfg.timeout)
                    .simple_bind(&self.cfg.bind_dn, &self.cfg.bind_pw.0)
                    .and_then(|r| r.success());
                if let Err(e) = bound {
                    // The message names the DN at most, never the password.
                    log::warn!(
                        "{}: bind to {url} as {} failed: {e}",
                        self.spec,
                        self.cfg.bind_dn
                    );
                    last = format!("bind to {url} failed: {e}");
                    continue;
                }
            }
            return Ok(conn);
        }
        Err(self.lookup_error(last))
    }

    /// Search on `conn`: the result attributes' values in entry order, or None when the
    /// base does not exist.
    fn search(&self, conn: &mut LdapConn, base: &str, filter: &str) -> Result<Vec<String>, String> {
        let scope = match self.cfg.scope {
            Scope::Sub => ldap3::Scope::Subtree,
            Scope::One => ldap3::Scope::OneLevel,
            Scope::Base => ldap3::Scope::Base,
        };
        let deref = match self.cfg.dereference {
            1 => DerefAliases::Searching,
            2 => DerefAliases::Finding,
            3 => DerefAliases::Always,
            _ => DerefAliases::Never,
        };
        let size = i32::try_from(self.cfg.size_limit).unwrap_or(i32::MAX);
        let result = conn
            .with_search_options(SearchOptions::new().sizelimit(size).deref(deref))
            .with_timeout(self.cfg.timeout)
            .search(base, scope, filter, &self.cfg.result_attributes)
            .map_err(|e| e.to_string())?;
        let (entries, res) = (result.0, result.1);
        match res.rc {
            0 => {}
            NO_SUCH_OBJECT => return Ok(Vec::new()),
            SIZE_LIMIT_EXCEEDED => {
                return Err(format!(
                    "search returned more than size_limit = {} entries",
                    self.cfg.size_limit
                ))
            }
            rc => return Err(format!("search failed: rc={rc} {}", res.text)),
        }
        let mut values = Vec::new();
        for entry in entries {
            let entry = SearchEntry::construct(entry);
            // Attribute names are case-insensitive; keep the configured order.
            for want in &self.cfg.result_attributes {
                for (name, vals) in &entry.attrs {
                    if name.eq_ignore_ascii_case(want) {
                        values.extend(vals.iter().cloned());
                    }
                }
            }
        }
        Ok(values)
    }

    /// Run the search, on the open connection or a new one; one retry on a fresh
    /// connection when a kept one fails (the server may have restarted).
    fn run(&self, base: &str, filter: &str) -> Result<Vec<String>, MapError> {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let had_conn = guard.is_some();
        for attempt in 0..2 {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => guard.insert(self.connect()?),
            };
            match self.search(conn, base, filter) {
                Ok(values) => return Ok(values),
                Err(e) => {
                    *guard = None;
                    log::warn!("{}: {e}", self.spec);
                    if attempt == 1 || !had_conn || e.contains("size_limit") {
                        return Err(self.lookup_error(e));
                    }
                }
            }
        }
        Err(self.lookup_error("search failed".into()))
    }
}

impl Map for LdapMap {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        let key = key.to_lowercase();
        if key.is_empty() || key.contains('\0') || !self.domains.allows(&key)? {
            return Ok(None);
        }
        let Some(filter) = self
            .cfg
            .query_filter
            .expand(&self.needs, &key, &key, &filter_quote)
        else {
            return Ok(None);
        };
        let Some(base) = self
            .cfg
            .search_base
            .expand(&self.needs, &key, &key, &dn_quote)
        else {
            return Ok(None);
        };
        let values = self.run(&base, &filter)?;
        let mut out = String::new();
        let mut count = 0usize;
        for value in values {
            if value.is_empty() {
                continue;
            }
            let Some(formatted) =
                self.cfg
                    .result_format
                    .expand(&self.needs, &value, &key, &no_quote)
            else {
                continue;
            };
            count += 1;
            if self.cfg.expansion_limit > 0 && count > self.cfg.expansion_limit {
                log::warn!(
                    "{}: {}: Expansion limit exceeded for key: '{key}'",
                    self.spec,
                    self.cfg.file
                );
                return Err(self.lookup_error(format!("expansion limit exceeded for key '{key}'")));
            }
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&formatted);
        }
        Ok((!out.is_empty()).then_some(out))
    }

    fn spec(&self) -> &str {
        &self.spec
    }
}
