//! The configuration file of an `ldap:` table (Postfix's ldap_table(5)): `name =
//! value` lines in main.cf's shape, read into [`LdapConfig`]. The bind password is
//! kept out of `Debug` output so it never reaches a log line.

use crate::domain::DomainFilter;
use crate::error::MapError;
use crate::sql::config::{parse_settings, Secret};
use crate::sql::template::Template;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// How far below `search_base` a search looks (`scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `sub` (Postfix's default): the base and the whole tree below it.
    Sub,
    /// `one`: the entries right below the base.
    One,
    /// `base`: the base entry alone.
    Base,
}

/// Everything one ldap: table's file says.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    /// The file, for messages.
    pub file: String,
    /// `server_host` (with `server_port` filled in), as `ldap://host:port` or
    /// `ldapi://...` URLs, tried in order.
    pub servers: Vec<String>,
    /// `search_base`: a template (`%s`... expanded, DN-escaped).
    pub search_base: Template,
    /// `query_filter`, default `(mailacceptinggeneralid=%s)` (values filter-escaped).
    pub query_filter: Template,
    /// `result_attribute`, default `maildrop`.
    pub result_attributes: Vec<String>,
    /// `result_format` (or the older `result_filter`), default `%s`.
    pub result_format: Template,
    /// `scope`.
    pub scope: Scope,
    /// `bind = yes` (default): a simple bind as `bind_dn` (none when it is empty).
    pub bind: bool,
    /// `bind_dn`.
    pub bind_dn: String,
    /// `bind_pw`.
    pub bind_pw: Secret,
    /// `version` (2 or 3, default 2). Rostfix's client always speaks version 3, which
    /// every server of the last twenty years answers; 2 is accepted for old files.
    pub version: u8,
    /// `timeout`: connect and per-operation timeout (default 10 s).
    pub timeout: Duration,
    /// `domain` words.
    pub domain: Vec<String>,
    /// `expansion_limit` (0: no limit).
    pub expansion_limit: usize,
    /// `size_limit`: entries the server may return (default: expansion_limit).
    pub size_limit: usize,
    /// `dereference` (0-3).
    pub dereference: u8,
    /// `start_tls`: StartTLS on each `ldap://` connection before the bind.
    pub start_tls: bool,
    /// The TLS settings, used by `start_tls` and `ldaps://` servers.
    pub tls: TlsSettings,
}

/// ldap_table(5)'s `tls_*` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `tls_require_cert` (default no): verify the server's certificate chain and
    /// name. With `no` the certificate is not checked at all, as OpenLDAP's
    /// TLS_REQCERT never that Postfix sets then.
    pub require_cert: bool,
    /// `tls_ca_cert_file`: PEM CA certificates.
    pub ca_cert_file: String,
    /// `tls_ca_cert_dir`: a directory of PEM CA certificates.
    pub ca_cert_dir: String,
    /// `tls_cert`: the client certificate (PEM), for servers that ask for one.
    pub cert: String,
    /// `tls_key`: its key (PEM); the certificate file when empty.
    pub key: String,
}

fn number(
    s: &HashMap<String, String>,
    name: &str,
    default: u64,
    file: &Path,
) -> Result<u64, MapError> {
    match s.get(name) {
        None => Ok(default),
        Some(text) => text.parse::<u64>().map_err(|_| MapError::BadSpec {
            spec: file.display().to_string(),
            reason: format!("bad numerical configuration: {name} = {text}"),
        }),
    }
}

/// Postfix's boolean words.
fn boolean(
    s: &HashMap<String, String>,
    name: &str,
    default: bool,
    file: &Path,
) -> Result<bool, MapError> {
    match s.get(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "yes" || v == "true" || v == "1" => Ok(true),
        Some(v) if v == "no" || v == "false" || v == "0" => Ok(false),
        Some(v) => Err(MapError::BadSpec {
            spec: file.display().to_string(),
            reason: format!("bad boolean configuration: {name} = {v}"),
        }),
    }
}

/// Settings Postfix has that change what a lookup answers and Rostfix does not do:
/// refusing them beats answering differently from Postfix.
const NOT_DONE: &[&str] = &[
    "special_result_attribute",
    "leaf_result_attribute",
    "terminal_result_attribute",
];

/// TLS settings of OpenLDAP that have no meaning with rustls: accepted, logged, unused.
const IGNORED: &[&str] = &["tls_cipher_suite", "tls_random_file"];

/// The `server_host` words as URLs (`host`, `host:port`, `ldap://host:port`, ...).
fn server_urls(hosts: &str, port: u16) -> Vec<String> {
    hosts
        .split([',', ' ', '\t'])
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains("://") {
                h.to_string()
            } else if h
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                format!("ldap://{h}")
            } else {
                format!("ldap://{h}:{port}")
            }
        })
        .collect()
}

impl LdapConfig {
    /// Read and check `file`.
    pub fn load(file: &Path) -> Result<LdapConfig, MapError> {
        let text = std::fs::read(file).map_err(|e| MapError::io(file, e))?;
        LdapConfig::parse(&text, file)
    }

    /// Check already-read text.
    pub fn parse(text: &[u8], file: &Path) -> Result<LdapConfig, MapError> {
        let s = parse_settings(text, file)?;
        let bad = |reason: String| MapError::BadSpec {
            spec: file.display().to_string(),
            reason,
        };
        let get =
            |name: &str, default: &str| s.get(name).map_or(default, String::as_str).to_string();
        for name in NOT_DONE {
            if s.get(*name).is_some_and(|v| !v.is_empty()) {
                return Err(bad(format!("{name} is not implemented by Rostfix")));
            }
        }
        let start_tls = boolean(&s, "start_tls", false, file)?;
        for name in IGNORED {
            if s.get(*name).is_some_and(|v| !v.is_empty()) {
                log::warn!(
                    "{}: {name} is ignored: rustls chooses among its own strong suites \
                     and needs no random file",
                    file.display()
                );
            }
        }
        let bind = match get("bind", "yes").to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" => true,
            "no" | "false" | "0" => false,
            other => return Err(bad(format!("bind = {other} is not implemented by Rostfix"))),
        };
        let port = number(&s, "server_port", 389, file)?;
        let port = u16::try_from(port).map_err(|_| bad(format!("bad server_port {port}")))?;
        let servers = server_urls(&get("server_host", "localhost"), port);
        if let Some(url) = servers.iter().find(|u| {
            !["ldap://", "ldaps://", "ldapi://"]
                .iter()
                .any(|p| u.starts_with(p))
        }) {
            return Err(bad(format!(
                "server_host {url}: only ldap://, ldaps:// and ldapi:// are implemented"
            )));
        }
        let scope = match get("scope", "sub").to_ascii_lowercase().as_str() {
            "sub" => Scope::Sub,
            "one" => Scope::One,
            "base" => Scope::Base,
            other => return Err(bad(format!("unknown scope {other}"))),
        };
        let version = match number(&s, "version", 2, file)? {
            v @ (2 | 3) => v as u8,
            v => return Err(bad(format!("unsupported LDAP version {v}"))),
        };
        let dereference = match number(&s, "dereference", 0, file)? {
            d @ 0..=3 => d as u8,
            d => return Err(bad(format!("bad dereference {d}"))),
        };
        let template = |name: &str, text: &str, is_query| {
            Template::parse(text, is_query).map_err(|e| bad(format!("{name}: {e}")))
        };
        let result_format = s
            .get("result_format")
            .or_else(|| s.get("result_filter"))
            .map_or("%s", String::as_str);
        let result_attributes: Vec<String> = get("result_attribute", "maildrop")
            .split([',', ' ', '\t'])
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if result_attributes.is_empty() {
            return Err(bad("result_attribute is empty".into()));
        }
        let expansion_limit = number(&s, "expansion_limit", 0, file)? as usize;
        Ok(LdapConfig {
            file: file.display().to_string(),
            servers,
            search_base: template("search_base", &get("search_base", ""), true)?,
            query_filter: template(
                "query_filter",
                &get("query_filter", "(mailacceptinggeneralid=%s)"),
                true,
            )?,
            result_attributes,
            result_format: template("result_format", result_format, false)?,
            scope,
            bind,
            bind_dn: get("bind_dn", ""),
            bind_pw: Secret(get("bind_pw", "")),
            version,
            timeout: Duration::from_secs(number(&s, "timeout", 10, file)?.max(1)),
            domain: DomainFilter::words(&get("domain", "")),
            expansion_limit,
            size_limit: number(&s, "size_limit", expansion_limit as u64, file)? as usize,
            dereference,
            start_tls,
            tls: TlsSettings {
                require_cert: boolean(&s, "tls_require_cert", false, file)?,
                ca_cert_file: get("tls_ca_cert_file", ""),
                ca_cert_dir: get("tls_ca_cert_dir", ""),
                cert: get("tls_cert", ""),
                key: get("tls_key", ""),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LdapConfig, MapError> {
        LdapConfig::parse(text.as_bytes(), Path::new("/etc/l.cf"))
    }

    #[test]
    fn defaults_and_servers() {
        let c = parse(
            "server_host = ldap1 ldap2:3389, ldap://ldap3:4389/\nsearch_base = dc=example,dc=com\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.servers,
            [
                "ldap://ldap1:389",
                "ldap://ldap2:3389",
                "ldap://ldap3:4389/"
            ]
        );
        assert_eq!(c.query_filter.text(), "(mailacceptinggeneralid=%s)");
        assert_eq!(c.result_attributes, ["maildrop"]);
        assert_eq!(c.scope, Scope::Sub);
        assert!(c.bind);
        assert_eq!(c.version, 2);
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.size_limit, 0);
    }

    #[test]
    fn full_file_and_secret() {
        let c = parse(
            "server_host = 127.0.0.1\nserver_port = 3890\nsearch_base = ou=people,dc=x\n\
             query_filter = (&(mail=%s)(active=TRUE))\nresult_attribute = uid, mailRoutingAddress\n\
             result_format = %u@mail.x\nscope = one\nbind_dn = cn=admin,dc=x\nbind_pw = hunter2\n\
             version = 3\ntimeout = 3\ndomain = x, y\nexpansion_limit = 4\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.servers, ["ldap://127.0.0.1:3890"]);
        assert_eq!(c.result_attributes, ["uid", "mailRoutingAddress"]);
        assert_eq!((c.scope, c.version, c.size_limit), (Scope::One, 3, 4));
        assert_eq!(c.domain, ["x", "y"]);
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn tls_settings() {
        let c = parse(
            "server_host = ldaps://ldap.x:636 ldap://ldap.y\nstart_tls = yes\n\
             tls_require_cert = yes\ntls_ca_cert_file = /etc/ca.pem\ntls_ca_cert_dir = /etc/cas\n\
             tls_cert = /etc/c.pem\ntls_key = /etc/c.key\ntls_cipher_suite = HIGH\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.servers, ["ldaps://ldap.x:636", "ldap://ldap.y"]);
        assert!(c.start_tls);
        assert_eq!(
            c.tls,
            TlsSettings {
                require_cert: true,
                ca_cert_file: "/etc/ca.pem".into(),
                ca_cert_dir: "/etc/cas".into(),
                cert: "/etc/c.pem".into(),
                key: "/etc/c.key".into(),
            }
        );
        let d = parse("server_host = ldap.x\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(!d.start_tls && !d.tls.require_cert);
    }

    #[test]
    fn refuses_what_is_not_done() {
        assert!(parse("special_result_attribute = member\n").is_err());
        assert!(parse("bind = sasl\n").is_err());
        assert!(parse("server_host = ldapx://x\n").is_err());
        assert!(parse("tls_require_cert = maybe\n").is_err());
        assert!(parse("scope = deep\n").is_err());
        assert!(parse("version = 4\n").is_err());
        assert!(parse("query_filter = (x=%q)\n").is_err());
    }
}
