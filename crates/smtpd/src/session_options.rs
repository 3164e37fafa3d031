//! Session settings real configurations set, read once from main.cf:
//! smtpd_helo_required, smtpd_forbidden_commands, smtpd_discard_ehlo_keywords (and the
//! per-client smtpd_discard_ehlo_keyword_address_maps), smtpd_sasl_security_options /
//! smtpd_sasl_tls_security_options, smtpd_upstream_proxy_protocol with its timeout,
//! smtpd_authorized_xclient_hosts / smtpd_authorized_xforward_hosts,
//! smtpd_tls_received_header and smtpd_tls_loglevel.

use crate::cidr::{CidrError, NetworkList};
use rostfix_config::MainCf;
use rostfix_maps::regexp::{Dialect, RegexpTable};
use rostfix_maps::{open_map, Map, MapError};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why a session setting is unusable.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("unsupported smtpd_upstream_proxy_protocol value: {0}")]
    ProxyProtocol(String),
    #[error("{param}: {source}")]
    Table {
        param: &'static str,
        source: MapError,
    },
    #[error("{param}: {source}")]
    Networks {
        param: &'static str,
        source: CidrError,
    },
    #[error("{param}: unknown SASL security option: {option}")]
    SaslOption { param: &'static str, option: String },
}

/// What smtpd_sasl_(tls_)security_options exclude (Postfix's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaslSecurity {
    /// noplaintext: no PLAIN or LOGIN.
    pub noplaintext: bool,
    /// noanonymous: no ANONYMOUS (never offered by our backends anyway).
    pub noanonymous: bool,
    /// noactive, nodictionary: PLAIN and LOGIN are open to both attacks.
    pub noactive: bool,
    pub nodictionary: bool,
    /// mutual_auth: only mechanisms that authenticate the server too (none of ours).
    pub mutual_auth: bool,
}

impl SaslSecurity {
    fn parse(param: &'static str, value: &str) -> Result<SaslSecurity, OptionsError> {
        let mut s = SaslSecurity::default();
        for word in split_list(value) {
            match word.to_ascii_lowercase().as_str() {
                "noplaintext" => s.noplaintext = true,
                "noanonymous" => s.noanonymous = true,
                "noactive" => s.noactive = true,
                "nodictionary" => s.nodictionary = true,
                "mutual_auth" => s.mutual_auth = true,
                // Postfix's "forward_secrecy" is a Cyrus-only property no mechanism
                // we have satisfies; refuse it like the other exclusions.
                "forward_secrecy" => s.mutual_auth = true,
                _ => {
                    return Err(OptionsError::SaslOption {
                        param,
                        option: word.to_string(),
                    })
                }
            }
        }
        Ok(s)
    }

    /// Whether `mechanism` (upper case) may be offered and used. PLAIN and LOGIN are
    /// plaintext mechanisms, open to active and dictionary attacks, and do not
    /// authenticate the server; ANONYMOUS is anonymous.
    pub fn allows(&self, mechanism: &str) -> bool {
        match mechanism {
            "PLAIN" | "LOGIN" => {
                !(self.noplaintext || self.noactive || self.nodictionary || self.mutual_auth)
            }
            "ANONYMOUS" => !self.noanonymous,
            _ => true,
        }
    }
}

/// smtpd_forbidden_commands: names (case-insensitive) and lookup tables whose hit
/// (any value) marks the command as forbidden.
pub struct ForbiddenCommands {
    names: Vec<String>,
    tables: Vec<Box<dyn Map>>,
    /// `regexp:{{/re/ result}, ...}` and `pcre:{...}`: rules written inline, as in
    /// Postfix's default `regexp:{{/^[^A-Z]/ Bogus}}`.
    inline: Vec<RegexpTable>,
}

impl std::fmt::Debug for ForbiddenCommands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForbiddenCommands")
            .field("names", &self.names)
            .field("tables", &self.tables.len())
            .field("inline", &self.inline.len())
            .finish()
    }
}

impl ForbiddenCommands {
    /// Whether the verb of an unknown command is forbidden. A table lookup error is
    /// ignored, as Postfix does (a non-critical feature).
    pub fn matches(&self, verb: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(verb))
            || self
                .tables
                .iter()
                .any(|t| matches!(t.lookup(verb), Ok(Some(_))))
            || self.inline.iter().any(|t| t.find(verb).is_some())
    }
}

/// A client list (smtpd_authorized_x*_hosts, ..._address_maps keys): networks and
/// addresses; host names need reverse DNS and are skipped with a warning.
#[derive(Debug, Clone, Default)]
pub struct HostList(NetworkList);

impl HostList {
    fn parse(
        param: &'static str,
        value: &str,
        warnings: &mut Vec<String>,
    ) -> Result<HostList, OptionsError> {
        let mut patterns = Vec::new();
        for item in split_list(value) {
            if crate::cidr::Cidr::parse(item).is_ok() {
                patterns.push(item);
            } else {
                warnings.push(format!(
                    "{param}: {item} is not an address or network; ignored"
                ));
            }
        }
        NetworkList::parse(patterns)
            .map(HostList)
            .map_err(|source| OptionsError::Networks { param, source })
    }

    pub fn contains(&self, ip: Option<IpAddr>) -> bool {
        ip.is_some_and(|ip| self.0.contains(ip))
    }
}

/// The session settings of this module.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub helo_required: bool,
    pub forbidden_commands: Arc<ForbiddenCommands>,
    /// smtpd_discard_ehlo_keywords and smtpd_discard_ehlo_keyword_address_maps.
    pub discard_ehlo: Arc<crate::ehlo_discard::EhloDiscard>,
    pub sasl_plain: SaslSecurity,
    pub sasl_tls: SaslSecurity,
    /// Some(timeout) with smtpd_upstream_proxy_protocol = haproxy.
    pub upstream_proxy: Option<Duration>,
    pub xclient_hosts: HostList,
    pub xforward_hosts: HostList,
    /// smtpd_authorized_verp_clients: who may send MAIL FROM ... XVERP.
    pub verp_clients: HostList,
    /// default_verp_delimiters and verp_delimiter_filter.
    pub verp_default: String,
    pub verp_filter: String,
    pub tls_received_header: bool,
    pub tls_loglevel: u32,
}

impl SessionOptions {
    pub fn from_config(
        cf: &MainCf,
        warnings: &mut Vec<String>,
    ) -> Result<SessionOptions, OptionsError> {
        let upstream_proxy = match cf.get("smtpd_upstream_proxy_protocol").trim() {
            "" => None,
            "haproxy" => Some(cf.get_time("smtpd_upstream_proxy_timeout")),
            other => return Err(OptionsError::ProxyProtocol(other.to_string())),
        };
        let mut names = Vec::new();
        let mut tables = Vec::new();
        let mut inline = Vec::new();
        for item in list_with_braces(&cf.get("smtpd_forbidden_commands")) {
            if let Some(table) = inline_regexp(&item) {
                inline.push(table.map_err(|source| OptionsError::Table {
                    param: "smtpd_forbidden_commands",
                    source,
                })?);
            } else if is_table(&item) {
                tables.push(open_map(&item).map_err(|source| OptionsError::Table {
                    param: "smtpd_forbidden_commands",
                    source,
                })?);
            } else {
                names.push(item);
            }
        }
        let discard_ehlo = crate::ehlo_discard::EhloDiscard::from_config(
            cf,
            "smtpd_discard_ehlo_keywords",
            "smtpd_discard_ehlo_keyword_address_maps",
        )
        .map_err(|e| OptionsError::Table {
            param: e.param,
            source: e.source,
        })?;
        Ok(SessionOptions {
            helo_required: cf.get_bool("smtpd_helo_required"),
            forbidden_commands: Arc::new(ForbiddenCommands {
                names,
                tables,
                inline,
            }),
            discard_ehlo: Arc::new(discard_ehlo),
            sasl_plain: SaslSecurity::parse(
                "smtpd_sasl_security_options",
                &cf.get("smtpd_sasl_security_options"),
            )?,
            sasl_tls: SaslSecurity::parse(
                "smtpd_sasl_tls_security_options",
                &cf.get("smtpd_sasl_tls_security_options"),
            )?,
            upstream_proxy,
            xclient_hosts: HostList::parse(
                "smtpd_authorized_xclient_hosts",
                &cf.get("smtpd_authorized_xclient_hosts"),
                warnings,
            )?,
            xforward_hosts: HostList::parse(
                "smtpd_authorized_xforward_hosts",
                &cf.get("smtpd_authorized_xforward_hosts"),
                warnings,
            )?,
            verp_clients: HostList::parse(
                "smtpd_authorized_verp_clients",
                &cf.get("smtpd_authorized_verp_clients"),
                warnings,
            )?,
            verp_default: cf.get("default_verp_delimiters"),
            verp_filter: cf.get("verp_delimiter_filter"),
            tls_received_header: cf.get_bool("smtpd_tls_received_header"),
            tls_loglevel: cf.get_u32("smtpd_tls_loglevel"),
        })
    }

    /// The EHLO keywords to hide from the client at `ip`.
    pub fn discarded_keywords(&self, ip: Option<IpAddr>) -> Vec<String> {
        self.discard_ehlo.for_client(ip)
    }
}

/// Postfix list syntax: commas and white space separate.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|i| !i.is_empty())
}

/// Like [`split_list`], but a `{ ... }` group (inline tables such as
/// `regexp:{{/^[^A-Z]/ Bogus}}` or `inline:{ a=b }`) stays one item with its spaces.
pub(crate) fn list_with_braces(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            c if depth == 0 && (c == ',' || c.is_whitespace()) => {
                if !cur.is_empty() {
                    items.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        items.push(cur);
    }
    items
}

/// `regexp:{{rule}, {rule}}` / `pcre:{...}`: the rules between the inner braces,
/// one per line, parsed as a regexp table; None when `item` is not of that form.
fn inline_regexp(item: &str) -> Option<Result<RegexpTable, MapError>> {
    let (kind, name) = item.split_once(':')?;
    let dialect = match kind {
        "regexp" => Dialect::Regexp,
        "pcre" => Dialect::Pcre,
        _ => return None,
    };
    let body = name.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut rules = String::new();
    for rule in list_with_braces(body) {
        let rule = rule
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or(&rule);
        rules.push_str(rule.trim());
        rules.push('\n');
    }
    Some(RegexpTable::parse(
        rules.as_bytes(),
        std::path::Path::new(item),
        dialect,
    ))
}

/// `type:name` items (as opposed to plain command names).
fn is_table(item: &str) -> bool {
    item.split_once(':')
        .is_some_and(|(ty, _)| !ty.is_empty() && ty.bytes().all(|b| b.is_ascii_lowercase()))
}

#[cfg(test)]
#[path = "session_options_tests.rs"]
mod tests;
