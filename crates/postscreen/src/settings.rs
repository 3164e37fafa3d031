//! postscreen's main.cf parameters, read and checked once before the chroot (tables
//! are opened there too): a bad action, site or table stops the daemon with a
//! `fatal:` naming the parameter, as Postfix's postscreen does.

use crate::access::{AccessError, AccessList};
use crate::action::{Action, ActionError};
use crate::dnsbl::{parse_sites, Site, SiteError};
use rostfix_config::MainCf;
use rostfix_maps::Map;
use rostfix_smtpd::cidr::{Cidr, NetworkList};
use std::time::Duration;

/// A setting postscreen cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("postscreen_dnsbl_sites: {0}")]
    Site(#[from] SiteError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("mynetworks: {0}")]
    Mynetworks(String),
    #[error("{param}: \"{value}\" is not an integer")]
    Number { param: &'static str, value: String },
    #[error("postscreen_dnsbl_reply_map: {0}")]
    ReplyMap(rostfix_maps::MapError),
    #[error("unsupported postscreen_upstream_proxy_protocol: \"{0}\" (want haproxy or empty)")]
    ProxyProtocol(String),
    #[error("postscreen TLS: {0}")]
    Tls(#[from] rostfix_smtpd::TlsError),
    #[error(transparent)]
    EhloDiscard(#[from] rostfix_smtpd::ehlo_discard::EhloDiscardError),
}

/// One deep (after-greeting) protocol test: whether it is on, its action (also used
/// when it is off but forced on for a client under enforcement, as in Postfix) and
/// how long a pass lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeepTest {
    pub enabled: bool,
    pub action: Action,
    pub ttl: u64,
}

/// Everything the screening reads from main.cf.
pub struct Settings {
    pub access: AccessList,
    pub denylist_action: Action,
    /// Empty: no pregreet test (Postfix's rule: the test is on when the banner is set).
    pub greet_banner: String,
    pub greet_wait: Duration,
    pub greet_action: Action,
    pub greet_ttl: u64,
    pub dnsbl_sites: Vec<Site>,
    pub dnsbl_threshold: i32,
    /// Negative: a client scoring this or lower skips the other tests; 0 = off.
    pub dnsbl_allowlist_threshold: i32,
    pub dnsbl_action: Action,
    pub dnsbl_reply_map: Option<Box<dyn Map>>,
    pub dnsbl_timeout: Duration,
    pub dnsbl_min_ttl: u64,
    pub dnsbl_max_ttl: u64,
    pub pipelining: DeepTest,
    pub non_smtp: DeepTest,
    pub bare_newline: DeepTest,
    pub forbidden_commands: Vec<String>,
    pub command_time_limit: Duration,
    pub command_count_limit: u32,
    pub connection_count_limit: u32,
    /// Clients screened at once; more are told 421 (0 = no limit).
    pub pre_queue_limit: u32,
    /// Clients being handed to smtpd (sent, not yet taken by an smtpd process) at
    /// once; a new client beyond it is told 421 (0 = no limit).
    pub post_queue_limit: u32,
    /// STARTTLS in the engine (postscreen_tls_security_level).
    pub tls: crate::tls::PostscreenTls,
    pub cache_map: String,
    pub cache_retention: u64,
    pub cache_cleanup: u64,
    /// The full greeting postscreen's own engine sends (`220 ` + smtpd_banner).
    pub smtpd_banner: String,
    pub myhostname: String,
    pub message_size_limit: u64,
    pub disable_vrfy: bool,
    /// postscreen_helo_required: MAIL before HELO/EHLO gets 503.
    pub helo_required: bool,
    /// postscreen_discard_ehlo_keywords and postscreen_discard_ehlo_keyword_address_maps.
    pub discard_ehlo: rostfix_smtpd::ehlo_discard::EhloDiscard,
    pub line_length_limit: usize,
    /// The `pass` service that takes clients: private/NAME.
    pub smtpd_service: String,
    pub dns_servers: Vec<String>,
    /// Some(postscreen_upstream_proxy_timeout) with postscreen_upstream_proxy_protocol
    /// = haproxy: every connection starts with a PROXY header naming the real client.
    pub upstream_proxy: Option<Duration>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Settings")
    }
}

fn action(cf: &MainCf, param: &'static str) -> Result<Action, ActionError> {
    Action::parse(param, &cf.get(param))
}

fn number(cf: &MainCf, param: &'static str) -> Result<i32, SettingsError> {
    let value = cf.get(param);
    value
        .trim()
        .parse()
        .map_err(|_| SettingsError::Number { param, value })
}

fn deep(
    cf: &MainCf,
    enable: &'static str,
    act: &'static str,
    ttl: &'static str,
) -> Result<DeepTest, SettingsError> {
    Ok(DeepTest {
        enabled: cf.get_bool(enable),
        action: action(cf, act)?,
        ttl: cf.get_time(ttl).as_secs(),
    })
}

impl Settings {
    /// Reads the parameters; warnings (mynetworks tables, which are not read here)
    /// are returned for the caller to log.
    pub fn from_config(cf: &MainCf) -> Result<(Settings, Vec<String>), SettingsError> {
        let mut warnings = Vec::new();
        let mut nets = Vec::new();
        for item in cf.get_list("mynetworks") {
            if Cidr::parse(&item).is_err() && item.contains(':') && !item.starts_with('[') {
                warnings.push(format!(
                    "mynetworks: lookup table {item} is not supported by postscreen; ignored"
                ));
            } else {
                nets.push(item);
            }
        }
        let mynetworks = NetworkList::parse(nets.iter().map(String::as_str))
            .map_err(|e| SettingsError::Mynetworks(e.0))?;
        let access_items = cf.get_list("postscreen_access_list");
        let access = AccessList::new(access_items.iter().map(String::as_str), mynetworks)?;
        let sites_items = cf.get_list("postscreen_dnsbl_sites");
        let dnsbl_sites = parse_sites(sites_items.iter().map(String::as_str))?;
        let reply_map = cf.get("postscreen_dnsbl_reply_map");
        let dnsbl_reply_map = if reply_map.trim().is_empty() {
            None
        } else {
            Some(rostfix_maps::open_map(reply_map.trim()).map_err(SettingsError::ReplyMap)?)
        };
        let forbidden_commands = cf
            .get_list("postscreen_forbidden_commands")
            .into_iter()
            .filter(|c| {
                // Tables (Postfix's regexp:{{/^[^A-Z]/ Bogus}}) are not matched here.
                let table = c.contains(':');
                if table {
                    warnings.push(format!(
                        "postscreen_forbidden_commands: table {c} is not supported; ignored"
                    ));
                }
                !table
            })
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let upstream_proxy = match cf.get("postscreen_upstream_proxy_protocol").trim() {
            "" => None,
            "haproxy" => Some(cf.get_time("postscreen_upstream_proxy_timeout")),
            other => return Err(SettingsError::ProxyProtocol(other.to_string())),
        };
        let settings = Settings {
            upstream_proxy,
            access,
            denylist_action: action(cf, "postscreen_denylist_action")?,
            greet_banner: cf.get("postscreen_greet_banner").trim().to_string(),
            greet_wait: cf.get_time("postscreen_greet_wait"),
            greet_action: action(cf, "postscreen_greet_action")?,
            greet_ttl: cf.get_time("postscreen_greet_ttl").as_secs(),
            dnsbl_sites,
            dnsbl_threshold: number(cf, "postscreen_dnsbl_threshold")?,
            dnsbl_allowlist_threshold: number(cf, "postscreen_dnsbl_allowlist_threshold")?,
            dnsbl_action: action(cf, "postscreen_dnsbl_action")?,
            dnsbl_reply_map,
            dnsbl_timeout: cf.get_time("postscreen_dnsbl_timeout"),
            dnsbl_min_ttl: cf.get_time("postscreen_dnsbl_min_ttl").as_secs(),
            dnsbl_max_ttl: cf.get_time("postscreen_dnsbl_max_ttl").as_secs(),
            pipelining: deep(
                cf,
                "postscreen_pipelining_enable",
                "postscreen_pipelining_action",
                "postscreen_pipelining_ttl",
            )?,
            non_smtp: deep(
                cf,
                "postscreen_non_smtp_command_enable",
                "postscreen_non_smtp_command_action",
                "postscreen_non_smtp_command_ttl",
            )?,
            bare_newline: deep(
                cf,
                "postscreen_bare_newline_enable",
                "postscreen_bare_newline_action",
                "postscreen_bare_newline_ttl",
            )?,
            forbidden_commands,
            command_time_limit: cf.get_time("postscreen_command_time_limit"),
            command_count_limit: cf.get_u32("postscreen_command_count_limit"),
            connection_count_limit: cf.get_u32("postscreen_client_connection_count_limit"),
            pre_queue_limit: cf.get_u32("postscreen_pre_queue_limit"),
            post_queue_limit: cf.get_u32("postscreen_post_queue_limit"),
            tls: crate::tls::PostscreenTls::from_config(cf)?,
            cache_map: cf.get("postscreen_cache_map").trim().to_string(),
            cache_retention: cf.get_time("postscreen_cache_retention_time").as_secs(),
            cache_cleanup: cf.get_time("postscreen_cache_cleanup_interval").as_secs(),
            smtpd_banner: cf.get("smtpd_banner"),
            myhostname: cf.get("myhostname"),
            message_size_limit: cf.get_u64("message_size_limit"),
            disable_vrfy: cf.get_bool("postscreen_disable_vrfy_command"),
            helo_required: cf.get_bool("postscreen_helo_required"),
            discard_ehlo: rostfix_smtpd::ehlo_discard::EhloDiscard::from_config(
                cf,
                "postscreen_discard_ehlo_keywords",
                "postscreen_discard_ehlo_keyword_address_maps",
            )?,
            line_length_limit: usize::try_from(cf.get_u64("line_length_limit"))
                .unwrap_or(usize::MAX)
                .max(512),
            smtpd_service: cf.get("smtpd_service_name").trim().to_string(),
            dns_servers: cf.get_list("rostfix_dns_servers"),
        };
        Ok((settings, warnings))
    }

    /// The name shown for a DNSBL in a reject reply: postscreen_dnsbl_reply_map's
    /// value for the domain, or the domain itself.
    pub fn dnsbl_display_name(&self, domain: &str) -> String {
        match &self.dnsbl_reply_map {
            Some(map) => match map.lookup(domain) {
                Ok(Some(name)) => name,
                Ok(None) => domain.to_string(),
                Err(e) => {
                    log::warn!("postscreen_dnsbl_reply_map: {}: {e}", map.spec());
                    domain.to_string()
                }
            },
            None => domain.to_string(),
        }
    }

    /// The shortest pass any test gives (Postfix's psc_min_ttl): how long an ignored
    /// deep-test failure still counts as a pass.
    pub fn min_ttl(&self) -> u64 {
        [
            self.greet_ttl,
            self.dnsbl_min_ttl,
            self.pipelining.ttl,
            self.non_smtp.ttl,
            self.bare_newline.ttl,
        ]
        .into_iter()
        .min()
        .unwrap_or(0)
    }

    pub fn pregreet_enabled(&self) -> bool {
        !self.greet_banner.is_empty()
    }

    pub fn dnsbl_enabled(&self) -> bool {
        !self.dnsbl_sites.is_empty()
    }

    /// The TTL to cache a DNSBL result for, within the min/max bounds (an answer
    /// without a TTL gets the minimum, as in Postfix).
    pub fn dnsbl_ttl(&self, ttl: Option<u32>) -> u64 {
        let ttl = ttl.map_or(0, u64::from);
        ttl.max(self.dnsbl_min_ttl)
            .min(self.dnsbl_max_ttl.max(self.dnsbl_min_ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cf(text: &str) -> MainCf {
        MainCf::parse(text, Path::new("/etc/rostfix/main.cf")).unwrap()
    }

    #[test]
    fn defaults_are_postfix_defaults() {
        let (s, w) = Settings::from_config(&cf("myhostname = mx.example\n")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.greet_wait, Duration::from_secs(6));
        assert_eq!(s.greet_action, Action::Ignore);
        assert_eq!(s.denylist_action, Action::Ignore);
        assert_eq!(s.dnsbl_threshold, 1);
        assert_eq!(s.dnsbl_allowlist_threshold, 0);
        assert_eq!((s.dnsbl_min_ttl, s.dnsbl_max_ttl), (60, 3600));
        assert_eq!(s.greet_banner, "mx.example ESMTP Rostfix");
        assert!(s.pregreet_enabled() && !s.dnsbl_enabled());
        assert!(!s.pipelining.enabled && !s.non_smtp.enabled && !s.bare_newline.enabled);
        assert_eq!(
            (
                s.pipelining.action,
                s.non_smtp.action,
                s.bare_newline.action
            ),
            (Action::Enforce, Action::Drop, Action::Ignore)
        );
        assert_eq!(s.pipelining.ttl, 30 * 86400);
        assert_eq!(s.min_ttl(), 60);
        assert_eq!(s.greet_ttl, 86400);
        assert_eq!(
            s.cache_map,
            format!("btree:{}/postscreen_cache", "/var/lib/rostfix")
        );
        assert_eq!(s.forbidden_commands, ["CONNECT", "GET", "POST"]);
        assert_eq!(s.smtpd_service, "smtpd");
        assert_eq!(s.pre_queue_limit, 100);
    }

    #[test]
    fn old_names_feed_the_new_ones() {
        let (s, _) = Settings::from_config(&cf(
            "postscreen_blacklist_action = drop\npostscreen_dnsbl_whitelist_threshold = -2\npostscreen_dnsbl_ttl = 2h\n",
        ))
        .unwrap();
        assert_eq!(s.denylist_action, Action::Drop);
        assert_eq!(s.dnsbl_allowlist_threshold, -2);
        assert_eq!(s.dnsbl_max_ttl, 7200);
        assert_eq!(s.dnsbl_ttl(Some(5)), 60);
        assert_eq!(s.dnsbl_ttl(Some(9000)), 7200);
        assert_eq!(s.dnsbl_ttl(None), 60);
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let e = Settings::from_config(&cf("postscreen_dnsbl_action = bounce\n")).unwrap_err();
        assert!(e.to_string().starts_with("postscreen_dnsbl_action:"), "{e}");
        let e = Settings::from_config(&cf("postscreen_dnsbl_sites = zen.example*x\n")).unwrap_err();
        assert!(e.to_string().contains("bad DNSBL weight"), "{e}");
        let e = Settings::from_config(&cf("postscreen_dnsbl_threshold = lots\n")).unwrap_err();
        assert!(
            e.to_string().starts_with("postscreen_dnsbl_threshold:"),
            "{e}"
        );
    }
}
