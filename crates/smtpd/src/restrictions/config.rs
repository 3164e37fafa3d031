//! Everything the restrictions need from main.cf (and the `-o` overrides of the
//! master.cf entry), read and opened once before smtpd confines itself: the eight
//! smtpd_*_restrictions lists (client, helo, sender, relay, recipient, data,
//! end_of_data, etrn), smtpd_delay_reject, relay_domains, the virtual domain lists,
//! the recipient tables of reject_unlisted_* and the resolver.

use super::dns::Dns;
use super::local::LocalRecipients;
use super::login_maps::SenderLoginMaps;
use super::policy_service::PolicySpec;
use super::{parse_list, parse_list_in, split_words, ParseContext, Restriction, RestrictionError};
use crate::restrictions::access::domain_keys;
use rostfix_maps::Map;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Postfix's default for smtpd_relay_restrictions.
pub const DEFAULT_RELAY: &str =
    "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination";

/// Domains we relay to (relay_domains): names (matching their subdomains too, as
/// parent_domain_matches_subdomains says by default) and tables.
#[derive(Clone, Default)]
pub struct DomainList {
    names: Vec<String>,
    tables: Vec<Arc<dyn Map>>,
}

impl std::fmt::Debug for DomainList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DomainList({:?}, {} tables)",
            self.names,
            self.tables.len()
        )
    }
}

impl DomainList {
    /// `Err` only for a failed table lookup (the caller answers 4xx).
    pub fn matches(&self, domain: &str) -> Result<bool, rostfix_maps::MapError> {
        let keys = domain_keys(domain);
        if keys.iter().any(|k| self.names.contains(k)) {
            return Ok(true);
        }
        for t in &self.tables {
            for k in &keys {
                if t.lookup(k)?.is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// A list of names, `type:table`s and `/file`s (as texthash); a table that does
    /// not open is skipped with a warning.
    fn parse(param: &str, value: &str, warnings: &mut Vec<String>) -> DomainList {
        let mut list = DomainList::default();
        for item in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            if item.contains(':') || item.starts_with('/') {
                let spec = if item.starts_with('/') {
                    format!("texthash:{item}")
                } else {
                    item.to_string()
                };
                match open_table(&spec) {
                    Ok(t) => list.tables.push(t),
                    Err(e) => warnings.push(format!("{param}: {spec}: {e}; skipped")),
                }
            } else {
                list.names
                    .push(item.trim_end_matches('.').to_ascii_lowercase());
            }
        }
        list
    }

    #[cfg(test)]
    pub fn from_names(names: &[&str]) -> DomainList {
        DomainList {
            names: names
                .iter()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            tables: Vec::new(),
        }
    }
}

/// relay_clientcerts' tables (Debug shows their names).
#[derive(Clone, Default)]
pub struct ClientCertMaps(pub Vec<Arc<dyn Map>>);

impl std::fmt::Debug for ClientCertMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|t| t.spec()))
            .finish()
    }
}

/// The lists and what evaluating them needs.
#[derive(Debug, Clone, Default)]
pub struct RestrictionConfig {
    pub client: Vec<Restriction>,
    pub helo: Vec<Restriction>,
    pub sender: Vec<Restriction>,
    pub relay: Vec<Restriction>,
    pub recipient: Vec<Restriction>,
    pub data: Vec<Restriction>,
    pub end_of_data: Vec<Restriction>,
    /// smtpd_etrn_restrictions.
    pub etrn: Vec<Restriction>,
    /// fast_flush_domains: the domains ETRN may flush.
    pub fast_flush_domains: DomainList,
    pub delay_reject: bool,
    /// smtpd_reject_unlisted_recipient: the implicit reject_unlisted_recipient.
    pub reject_unlisted_recipient: bool,
    /// smtpd_reject_unlisted_sender: the implicit reject_unlisted_sender.
    pub reject_unlisted_sender: bool,
    pub relay_domains: DomainList,
    /// virtual_alias_domains and virtual_mailbox_domains: final destinations too.
    pub virtual_domains: super::virtual_domains::VirtualDomains,
    pub local: LocalRecipients,
    /// The virtual alias, virtual mailbox and relay recipient tables of
    /// reject_unlisted_* for non-local domains (unlisted.rs).
    pub class_tables: super::unlisted::ClassTables,
    pub dns: Option<Arc<Dns>>,
    /// SPF/DKIM/DMARC verification (crates/authverify), for reject_spf_fail; set by
    /// Settings when verification or that restriction is configured.
    pub auth_verifier: Option<Arc<rostfix_authverify::Verifier>>,
    /// smtpd_restriction_classes: lower-case name -> its list.
    pub classes: HashMap<String, Vec<Restriction>>,
    pub class_names: Vec<String>,
    /// smtpd_sender_login_maps (login_maps.rs).
    pub sender_login: SenderLoginMaps,
    /// Our own addresses (inet_interfaces) for permit_inet_interfaces.
    pub inet_interfaces: Vec<IpAddr>,
    /// plaintext_reject_code, for reject_plaintext_session.
    pub plaintext_reject_code: u16,
    /// maps_rbl_domains, for the deprecated reject_maps_rbl.
    pub maps_rbl_domains: Vec<String>,
    /// relay_clientcerts: fingerprints permit_tls_clientcerts accepts.
    pub relay_clientcerts: ClientCertMaps,
    /// permit_mx_backup_networks: the MX hosts' addresses permit_mx_backup accepts.
    pub mx_backup_networks: crate::cidr::NetworkList,
    /// For policy requests: `stress`, compatibility_level, mail_version.
    pub stress: bool,
    pub compatibility_level: String,
    pub mail_version: String,
    /// smtpd_peername_lookup: look the client's name up at connect (peer_name.rs).
    pub peername_lookup: bool,
    pub unknown_codes: super::unknown::UnknownCodes,
    pub rbl_replies: super::dnsxl::RblReplies,
    /// smtpd_proxy_filter is set: no queue file here, so HOLD, DISCARD, FILTER,
    /// REDIRECT and BCC are unavailable (queue_actions.rs).
    pub proxy_filter: bool,
    /// reject_unverified_recipient/sender (verify.rs).
    pub verify: super::verify::VerifySettings,
}

/// Why the restriction configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Restriction(#[from] RestrictionError),
    #[error("cannot set up DNS for the restrictions: {0}")]
    Dns(#[from] super::dns::DnsSetupError),
    #[error("{0}")]
    ReplyCode(String),
    #[error(transparent)]
    VirtualDomains(#[from] rostfix_resolve::ResolveError),
    #[error("rbl_reply_maps: {table}: {reason}")]
    RblReplyMap { table: String, reason: String },
    #[error("permit_mx_backup_networks: {0}")]
    BackupNetworks(#[from] crate::cidr::CidrError),
}

fn open_table(spec: &str) -> Result<Arc<dyn Map>, String> {
    rostfix_maps::open_map(spec)
        .map(Arc::from)
        .map_err(|e| e.to_string())
}

impl RestrictionConfig {
    /// Postfix's defaults (the relay list only; nothing needs DNS or tables).
    pub fn defaults() -> RestrictionConfig {
        let relay =
            parse_list("smtpd_relay_restrictions", DEFAULT_RELAY, &open_table).unwrap_or_default();
        RestrictionConfig {
            relay,
            delay_reject: true,
            ..RestrictionConfig::default()
        }
    }

    /// Reads and checks every list. Returns warnings to log.
    pub fn from_config(
        cf: &rostfix_config::MainCf,
    ) -> Result<(RestrictionConfig, Vec<String>), ConfigError> {
        let get = |name: &str| cf.get(name);
        let mut warnings = Vec::new();
        let policy = PolicySpec::from_main_cf(cf);
        let class_names: Vec<String> = cf
            .get_list("smtpd_restriction_classes")
            .into_iter()
            .map(|n| n.to_ascii_lowercase())
            .collect();
        let ctx = ParseContext {
            open: &open_table,
            classes: &class_names,
            policy: &policy,
        };
        let list = |name: &'static str| parse_list_in(name, &get(name), &ctx);
        let mut classes = HashMap::new();
        for name in &class_names {
            // The parameter name is not 'static; errors name the class list instead.
            let l = parse_list_in("smtpd_restriction_classes", &get(name), &ctx)?;
            classes.insert(name.clone(), l);
        }
        let mut relay_text = get("smtpd_relay_restrictions");
        if relay_text.trim().is_empty() {
            // Only an explicitly empty setting gets here (unset, the registry gives
            // Postfix's default). README documents that the default then applies.
            relay_text = DEFAULT_RELAY.to_string();
        }
        let relay = parse_list_in("smtpd_relay_restrictions", &relay_text, &ctx)?;
        let recipient = list("smtpd_recipient_restrictions")?;
        if !relay
            .iter()
            .chain(recipient.iter())
            .any(Restriction::restricts_relay)
        {
            return Err(RestrictionError::OpenRelay {
                param: "smtpd_relay_restrictions",
            }
            .into());
        }
        let mut rc = RestrictionConfig {
            client: list("smtpd_client_restrictions")?,
            helo: list("smtpd_helo_restrictions")?,
            sender: list("smtpd_sender_restrictions")?,
            relay,
            recipient,
            data: list("smtpd_data_restrictions")?,
            end_of_data: list("smtpd_end_of_data_restrictions")?,
            etrn: list("smtpd_etrn_restrictions")?,
            fast_flush_domains: DomainList::default(),
            delay_reject: cf.get_bool("smtpd_delay_reject"),
            reject_unlisted_recipient: cf.get_bool("smtpd_reject_unlisted_recipient"),
            reject_unlisted_sender: false,
            relay_domains: DomainList::default(),
            virtual_domains: super::virtual_domains::VirtualDomains::from_config(cf)?,
            local: LocalRecipients::default(),
            class_tables: super::unlisted::ClassTables::default(),
            dns: None,
            auth_verifier: None,
            classes,
            class_names: class_names.clone(),
            sender_login: SenderLoginMaps::default(),
            inet_interfaces: Vec::new(),
            plaintext_reject_code: 450,
            maps_rbl_domains: Vec::new(),
            mx_backup_networks: crate::cidr::NetworkList::default(),
            relay_clientcerts: ClientCertMaps::default(),
            stress: cf.get("stress") == "yes",
            compatibility_level: cf.get("compatibility_level"),
            mail_version: cf.get("mail_version"),
            peername_lookup: cf.get_bool("smtpd_peername_lookup"),
            unknown_codes: super::unknown::UnknownCodes::from_config(cf)
                .map_err(ConfigError::ReplyCode)?,
            rbl_replies: super::dnsxl::RblReplies {
                // Raw: its $rbl_* names are expanded per reply, not from main.cf.
                default_template: cf
                    .raw("default_rbl_reply")
                    .map(str::to_string)
                    .or_else(|| cf.default_raw("default_rbl_reply"))
                    .unwrap_or_default(),
                maps: Vec::new(),
                code: u16::try_from(cf.get_int("maps_rbl_reject_code"))
                    .ok()
                    .filter(|c| (400..600).contains(c))
                    .ok_or_else(|| {
                        ConfigError::ReplyCode(
                            "maps_rbl_reject_code: want a 4xx or 5xx reply code".into(),
                        )
                    })?,
            },
            proxy_filter: false,
            verify: Default::default(),
        };
        rc.proxy_filter = !cf.get("smtpd_proxy_filter").trim().is_empty();
        for spec in cf.get_list("smtpd_sender_login_maps") {
            let t = open_table(&spec).map_err(|reason| RestrictionError::Table {
                param: "smtpd_sender_login_maps",
                name: "smtpd_sender_login_maps".into(),
                table: spec.clone(),
                reason,
            })?;
            rc.sender_login.tables.push(t);
        }
        rc.plaintext_reject_code = u16::try_from(cf.get_int("plaintext_reject_code"))
            .ok()
            .filter(|c| (400..600).contains(c))
            .ok_or_else(|| {
                ConfigError::ReplyCode("plaintext_reject_code: want a 4xx or 5xx reply code".into())
            })?;
        rc.maps_rbl_domains = cf.get_list("maps_rbl_domains");
        for spec in split_words(&get("relay_clientcerts")) {
            let t = open_table(&spec).map_err(|reason| RestrictionError::Table {
                param: "relay_clientcerts",
                name: "relay_clientcerts".into(),
                table: spec.clone(),
                reason,
            })?;
            rc.relay_clientcerts.0.push(t);
        }
        let ask_ccert = cf.get_bool("smtpd_tls_ask_ccert")
            || (cf.get_bool("smtpd_tls_req_ccert")
                && cf.get("smtpd_tls_security_level").trim() == "encrypt");
        for r in rc.all() {
            if matches!(
                r,
                Restriction::PermitTlsClientcerts { .. } | Restriction::CheckCcertAccess(_)
            ) && !ask_ccert
            {
                warnings.push(format!(
                    "{} is requested, but \"smtpd_tls_ask_ccert = no\"",
                    r.name()
                ));
            }
        }
        let backup_nets = cf.get_list("permit_mx_backup_networks");
        rc.mx_backup_networks =
            crate::cidr::NetworkList::parse(backup_nets.iter().map(String::as_str))?;
        if rc.all().any(|r| {
            matches!(
                r,
                Restriction::PermitInetInterfaces | Restriction::PermitMxBackup
            )
        }) {
            rc.inet_interfaces = super::interfaces::own_addresses(&cf.get_list("inet_interfaces"));
        }
        if rc
            .all()
            .any(|r| matches!(r, Restriction::SenderLoginMismatch(_)))
            && rc.sender_login.tables.is_empty()
        {
            warnings.push(
                "restriction reject_*_sender_login_mismatch has no effect: smtpd_sender_login_maps is empty"
                    .to_string(),
            );
        }
        for spec in split_words(&get("rbl_reply_maps")) {
            let t = open_table(&spec).map_err(|reason| ConfigError::RblReplyMap {
                table: spec.clone(),
                reason,
            })?;
            rc.rbl_replies.maps.push(t);
        }
        rc.verify =
            super::verify::VerifySettings::from_config(cf).map_err(ConfigError::ReplyCode)?;
        rc.relay_domains = DomainList::parse("relay_domains", &get("relay_domains"), &mut warnings);
        rc.fast_flush_domains = DomainList::parse(
            "fast_flush_domains",
            &get("fast_flush_domains"),
            &mut warnings,
        );
        rc.reject_unlisted_sender = cf.get_bool("smtpd_reject_unlisted_sender");
        let unlisted_used = rc.reject_unlisted_recipient
            || rc.reject_unlisted_sender
            || rc.all().any(|r| {
                matches!(
                    r,
                    Restriction::RejectUnlistedRecipient | Restriction::RejectUnlistedSender
                )
            });
        if unlisted_used {
            let (local, w) = LocalRecipients::from_param(
                &get("local_recipient_maps"),
                &get("recipient_delimiter"),
            );
            rc.local = local;
            warnings.extend(w);
            let mapping: Vec<(&str, String)> = [
                "canonical_maps",
                "sender_canonical_maps",
                "recipient_canonical_maps",
                "virtual_alias_maps",
            ]
            .into_iter()
            .map(|p| (p, get(p)))
            .collect();
            warnings.extend(rc.local.add_mapping_tables(&mapping));
            rc.class_tables = super::unlisted::ClassTables::from_config(cf, &mut warnings)?;
        }
        let needs_dns = rc.all().any(Restriction::uses_dns);
        if rc.peername_lookup || needs_dns {
            match Dns::from_config(cf) {
                Ok(dns) => rc.dns = Some(Arc::new(dns)),
                Err(e) if needs_dns => return Err(e.into()),
                // Names alone are not worth refusing all mail over: clients stay
                // unknown[addr], as with smtpd_peername_lookup = no.
                Err(e) => warnings.push(format!(
                    "cannot set up DNS for client name lookups: {e}; clients are not named"
                )),
            }
        }
        Ok((rc, warnings))
    }

    /// reject_spf_fail is in some list (it needs the verifier of crates/authverify).
    pub fn uses_spf(&self) -> bool {
        self.all().any(|r| matches!(r, Restriction::RejectSpfFail))
    }

    fn all(&self) -> impl Iterator<Item = &Restriction> {
        self.classes
            .values()
            .flatten()
            .chain(&self.client)
            .chain(&self.helo)
            .chain(&self.sender)
            .chain(&self.relay)
            .chain(&self.recipient)
            .chain(&self.data)
            .chain(&self.end_of_data)
            .chain(&self.etrn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A main.cf of `pairs`; local_recipient_maps is empty unless given, so the tests do
    /// not depend on this machine's /etc/aliases.
    fn load(pairs: &[(&str, &str)]) -> Result<(RestrictionConfig, Vec<String>), ConfigError> {
        let mut all = vec![("local_recipient_maps", "")];
        all.extend_from_slice(pairs);
        RestrictionConfig::from_config(&crate::settings::test_config(&all).expect("main.cf parses"))
    }

    #[test]
    fn defaults_and_relay_domains() {
        let (rc, w) = load(&[
            ("relay_domains", "Example.COM. other.test"),
            ("smtpd_peername_lookup", "no"),
        ])
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(rc.relay.len(), 3);
        assert!(rc.delay_reject);
        assert!(rc.relay_domains.matches("example.com").unwrap());
        assert!(rc.relay_domains.matches("sub.example.com").unwrap());
        assert!(!rc.relay_domains.matches("example.net").unwrap());
        assert!(rc.dns.is_none());
    }

    #[test]
    fn open_relay_configuration_is_refused() {
        let e = load(&[
            ("smtpd_relay_restrictions", "permit"),
            ("smtpd_recipient_restrictions", "permit_mynetworks"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("smtpd_relay_restrictions"), "{e}");
        // The submission entry's lists are fine.
        assert!(load(&[(
            "smtpd_recipient_restrictions",
            "permit_sasl_authenticated,reject"
        )])
        .is_ok());
    }

    #[test]
    fn unknown_name_is_an_error() {
        let e = load(&[("smtpd_helo_restrictions", "reject_bogus_thing")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "smtpd_helo_restrictions: unknown smtpd restriction: \"reject_bogus_thing\""
        );
    }

    #[test]
    fn dns_only_when_needed() {
        let (rc, _) = load(&[
            ("smtpd_client_restrictions", "reject_rbl_client bl.test"),
            ("rostfix_dns_servers", "127.0.0.1:9"),
        ])
        .unwrap();
        assert!(rc.dns.is_some());
    }
}
