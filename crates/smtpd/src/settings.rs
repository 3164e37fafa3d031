//! The main.cf parameters smtpd uses, read once before confinement and validated.
//!
//! [`Settings::from_config`] reads them through the configuration crate's typed getters:
//! the defaults are those of its parameter registry (crates/config/src/params.rs), and a
//! value of the wrong type was already refused, naming file, line and parameter, when
//! main.cf was loaded.

use crate::cidr::{Cidr, CidrError, NetworkList};
use crate::limits::ProtoSettings;
use crate::policy::normalize_domain;
use crate::tls::{SecurityLevel, TlsError, TlsSettings};
use rostfix_config::MainCf;
use std::time::Duration;

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value main.cf accepted by type but smtpd cannot use (file, line, parameter).
    #[error(transparent)]
    Config(#[from] rostfix_config::ConfigError),
    #[error("{0}")]
    Suppression(String),
    #[error("mynetworks: {0}")]
    Networks(#[from] CidrError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("myhostname is empty and the system host name is unknown")]
    NoHostname,
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error(transparent)]
    Restrictions(#[from] crate::restrictions::config::ConfigError),
    #[error(transparent)]
    Session(#[from] crate::session_options::OptionsError),
    /// A header_checks/body_checks table that does not open.
    #[error(transparent)]
    Content(#[from] rostfix_inspect::SettingsError),
    #[error("content_filter: {0}")]
    ContentFilter(#[from] rostfix_queue::FilterError),
    #[error(transparent)]
    ProxyFilter(#[from] crate::proxy_filter::ProxySettingsError),
    /// canonical, masquerading or BCC parameters that cannot be used.
    #[error(transparent)]
    Rewrite(#[from] rostfix_rewrite::RewriteError),
    #[error("smtpd_milters: {0}")]
    Milters(#[from] rostfix_milter::ConfigError),
    /// A DKIM table or key that cannot be read: the daemon does not start.
    #[error("rostfix_dkim_key_table/rostfix_dkim_signing_table: {0}")]
    Dkim(#[from] rostfix_dkim::DkimError),
    #[error("{0}")]
    Hygiene(#[from] rostfix_hygiene::HygieneError),
    /// rostfix_arc_seal_resubmitted without keys, or without a resolver.
    #[error(transparent)]
    ArcSealing(#[from] rostfix_authverify::ArcSetupError),
    /// Verification on receipt that cannot be set up (suffix list, DNS, tables).
    #[error(transparent)]
    AuthVerify(#[from] crate::auth_verify::AuthVerifyError),
}

/// What smtpd needs from main.cf.
#[derive(Debug, Clone)]
pub struct Settings {
    pub myhostname: String,
    /// The greeting text after `220 `.
    pub banner: String,
    /// Lowercased, trailing dot removed.
    pub mydestination: Vec<String>,
    /// mydestination plus the `[address]` literals of our inet_interfaces and
    /// proxy_interfaces addresses: every domain whose mail is local (Postfix's
    /// resolve_local), as the relay and local-recipient checks see them.
    pub local_destinations: Vec<String>,
    pub mynetworks: NetworkList,
    /// Bytes; 0 means no limit.
    pub message_size_limit: u64,
    /// queue_minfree: bytes that must stay free in the queue file system.
    pub queue_minfree: u64,
    pub timeout: Duration,
    /// smtpd_per_record_deadline: `timeout` bounds a whole record, not each read
    /// (Postfix's default turns it on under stress).
    pub per_record_deadline: bool,
    pub recipient_limit: usize,
    pub line_length_limit: usize,
    pub hopcount_limit: u32,
    pub hard_error_limit: u32,
    pub junk_command_limit: u32,
    pub tls: TlsSettings,
    /// Protocol safety and abuse limits (limits.rs).
    pub proto: ProtoSettings,
    /// SMTP AUTH (auth.rs).
    pub auth: crate::auth::AuthSettings,
    /// The restriction lists (restrictions/config.rs), shared: tables are not Clone.
    pub restrictions: std::sync::Arc<crate::restrictions::config::RestrictionConfig>,
    /// HELO required, forbidden commands, EHLO keywords, SASL security options,
    /// upstream proxy, XCLIENT/XFORWARD hosts, TLS logging (session_options.rs).
    pub session: crate::session_options::SessionOptions,
    /// header_checks and friends; None under receive_override_options =
    /// no_header_body_checks or when no table is set.
    pub content_checks: Option<std::sync::Arc<rostfix_inspect::ContentChecks>>,
    /// receive_override_options.
    pub receive_overrides: rostfix_inspect::ReceiveOverrides,
    /// content_filter: written as the `filter` attribute of every message received
    /// (master.cf `-o content_filter=` on the re-entry smtpd turns it off).
    pub content_filter: Option<rostfix_queue::ContentFilter>,
    /// smtpd_proxy_filter: the before-queue filter the transactions are relayed to
    /// (session/proxy.rs); None when empty.
    pub proxy_filter: Option<crate::proxy_filter::ProxySettings>,
    /// Canonical mapping, masquerading, automatic BCC (crates/rewrite); without tables under
    /// receive_override_options = no_address_mappings.
    pub rewrite: Option<std::sync::Arc<rostfix_rewrite::Rewriter>>,
    /// inet_interfaces addresses, for local_header_rewrite_clients'
    /// permit_inet_interfaces.
    pub own_addresses: Vec<std::net::IpAddr>,
    /// smtpd_milters with the milter_* settings; None when the list is empty.
    pub milters: Option<std::sync::Arc<rostfix_milter::MilterConfig>>,
    /// Native DKIM signing (crates/dkim): tables and keys read here, before
    /// confinement; None when rostfix_dkim_key_table/_signing_table are empty.
    pub dkim: Option<std::sync::Arc<rostfix_dkim::Signer>>,
    /// rostfix_arc_seal_resubmitted: mail from the SASL logins it lists that carries
    /// our Authentication-Results (a list manager sending on mail we received) gets
    /// an ARC set (session/dkim.rs); keys and resolver read before confinement.
    pub arc_resubmitted: Option<rostfix_authverify::Resubmitters>,
    /// SPF/DKIM/ARC/DMARC verification of received mail (auth_verify.rs); None when
    /// rostfix_auth_verify = no.
    pub auth_verify: Option<std::sync::Arc<crate::auth_verify::AuthVerify>>,
    /// Bulk-mail hygiene for submitted campaign mail (session/hygiene.rs); None when
    /// rostfix_bulk_hygiene_checks is empty.
    pub hygiene: Option<rostfix_hygiene::Policy>,
    /// The suppression list (session/suppression.rs), when rostfix_suppression_action
    /// = reject; read as `suppress/list` relative to the queue directory, which is the
    /// working directory inside and outside the chroot.
    pub suppression: Option<std::sync::Arc<std::sync::Mutex<rostfix_queue::SuppressionCache>>>,
}

impl Settings {
    /// For tests: the settings of a main.cf that sets only `myhostname`, and turns off
    /// the unlisted-recipient check (`local_recipient_maps =`), which would read the
    /// system's users and aliases.
    #[cfg(test)]
    pub fn defaults(myhostname: &str) -> Settings {
        let cf = test_config(&[("myhostname", myhostname), ("local_recipient_maps", "")])
            .expect("myhostname is valid");
        Settings::from_config(&cf, None)
            .expect("the registry's defaults are valid")
            .0
    }

    /// Reads every parameter through the configuration's typed getters; the defaults
    /// are its registry's. `system_hostname` stands in when myhostname is empty. Returns
    /// the settings and warnings to log (table lookups in mydestination/mynetworks are
    /// not supported yet and skipped).
    pub fn from_config(
        cf: &MainCf,
        system_hostname: Option<String>,
    ) -> Result<(Settings, Vec<String>), SettingsError> {
        let mut warnings = Vec::new();
        let myhostname = match cf.get("myhostname").trim() {
            "" => system_hostname
                .filter(|h| !h.is_empty())
                .ok_or(SettingsError::NoHostname)?,
            h => h.to_string(),
        };
        let mut mydestination = Vec::new();
        for item in split_list(&cf.get("mydestination")) {
            if is_table(item) {
                warnings.push(format!(
                    "mydestination: lookup table {item} is not supported yet; ignored"
                ));
            } else {
                mydestination.push(normalize_domain(item));
            }
        }
        let local_destinations = local_destinations(cf, &mydestination);
        let mut patterns = Vec::new();
        let nets = cf.get("mynetworks");
        for item in split_list(&nets) {
            if Cidr::parse(item).is_err() && is_table(item) {
                warnings.push(format!(
                    "mynetworks: lookup table {item} is not supported yet; ignored"
                ));
            } else {
                patterns.push(item);
            }
        }
        let mynetworks = NetworkList::parse(patterns)?;
        let tls = TlsSettings::from_config(cf)?;
        let proto = ProtoSettings::from_config(cf, &mut warnings)?;
        let (auth, w) =
            crate::auth::AuthSettings::from_config(cf, tls.level == SecurityLevel::Encrypt)?;
        warnings.extend(w);
        let (mut rc, w) = crate::restrictions::config::RestrictionConfig::from_config(cf)?;
        warnings.extend(w);
        let session = crate::session_options::SessionOptions::from_config(cf, &mut warnings)?;
        let (auth_verify, verifier) =
            crate::auth_verify::AuthVerify::from_config(cf, &myhostname, rc.uses_spf())?;
        rc.auth_verifier = verifier;
        let hygiene = Some(rostfix_hygiene::Policy::parse(
            &cf.get("rostfix_bulk_hygiene_checks"),
            &cf.get("rostfix_bulk_hygiene_action"),
        )?)
        .filter(|p| !p.is_off());
        if rc.dns.is_none()
            && hygiene
                .as_ref()
                .is_some_and(|h| h.checks.contains(&rostfix_hygiene::Check::Dmarc))
        {
            // Without DNS the DMARC check cannot decide, which never refuses mail.
            match crate::restrictions::dns::Dns::from_config(cf) {
                Ok(dns) => rc.dns = Some(std::sync::Arc::new(dns)),
                Err(e) => warnings.push(format!(
                    "rostfix_bulk_hygiene_checks: dmarc: cannot set up DNS: {e}; not checked"
                )),
            }
        }
        let (receive_overrides, w) = rostfix_inspect::ReceiveOverrides::from_config(cf);
        warnings.extend(w);
        if receive_overrides.no_unknown_recipient_checks {
            without_unknown_recipient_checks(&mut rc);
        }
        let content_checks = if receive_overrides.no_header_body_checks {
            None
        } else {
            Some(rostfix_inspect::ContentChecks::from_config(cf)?)
                .filter(|c| !c.is_empty())
                .map(std::sync::Arc::new)
        };
        let settings = Settings {
            banner: cf.get("smtpd_banner").trim().to_string(),
            myhostname,
            mydestination,
            local_destinations,
            mynetworks,
            message_size_limit: cf.get_u64("message_size_limit"),
            queue_minfree: cf.get_u64("queue_minfree"),
            timeout: cf.get_time("smtpd_timeout"),
            per_record_deadline: cf.get_bool("smtpd_per_record_deadline"),
            recipient_limit: cf.get_u64("smtpd_recipient_limit") as usize,
            line_length_limit: cf.get_u64("line_length_limit").max(64) as usize,
            hopcount_limit: cf.get_u32("hopcount_limit"),
            hard_error_limit: cf.get_u32("smtpd_hard_error_limit"),
            junk_command_limit: cf.get_u32("smtpd_junk_command_limit"),
            tls,
            proto,
            auth,
            restrictions: std::sync::Arc::new(rc),
            session,
            content_checks,
            receive_overrides,
            content_filter: rostfix_queue::ContentFilter::parse(&cf.get("content_filter"))?,
            proxy_filter: crate::proxy_filter::ProxySettings::from_config(cf)?,
            // no_address_mappings: no tables, masquerading or BCC, but addresses still
            // put in canonical form and headers qualified, as Postfix's cleanup.
            rewrite: Some(std::sync::Arc::new(
                if receive_overrides.no_address_mappings {
                    rostfix_rewrite::Rewriter::without_mappings(cf)?
                } else {
                    rostfix_rewrite::Rewriter::from_config(cf)?
                },
            )),
            own_addresses: crate::restrictions::interfaces::own_addresses(
                &cf.get_list("inet_interfaces"),
            ),
            milters: Some(rostfix_milter::MilterConfig::from_main_cf(
                cf,
                "smtpd_milters",
            )?)
            .filter(|m| !m.is_empty())
            .map(std::sync::Arc::new),
            dkim: rostfix_dkim::Signer::load(
                &cf.get("rostfix_dkim_key_table"),
                &cf.get("rostfix_dkim_signing_table"),
            )?
            .map(|s| {
                std::sync::Arc::new(
                    s.with_multiple_signatures(cf.get_bool("rostfix_dkim_multiple_signatures")),
                )
            }),
            arc_resubmitted: rostfix_authverify::Resubmitters::from_config(cf)?,
            auth_verify,
            hygiene,
            suppression: match rostfix_queue::SuppressionAction::parse(
                &cf.get("rostfix_suppression_action"),
            )
            .map_err(SettingsError::Suppression)?
            {
                rostfix_queue::SuppressionAction::Reject => Some(std::sync::Arc::new(
                    std::sync::Mutex::new(rostfix_queue::SuppressionCache::new(
                        rostfix_queue::SuppressionStore::new(std::path::Path::new(".")),
                    )),
                )),
                _ => None,
            },
        };
        Ok((settings, warnings))
    }
}

/// receive_override_options = no_unknown_recipient_checks: reject_unlisted_recipient
/// (explicit, or implied by smtpd_reject_unlisted_recipient) answers DUNNO, as on the
/// port where an after-queue filter hands mail back that was checked on the way in.
fn without_unknown_recipient_checks(rc: &mut crate::restrictions::config::RestrictionConfig) {
    use crate::restrictions::Restriction;
    rc.reject_unlisted_recipient = false;
    for list in [
        &mut rc.client,
        &mut rc.helo,
        &mut rc.sender,
        &mut rc.relay,
        &mut rc.recipient,
        &mut rc.data,
        &mut rc.end_of_data,
    ] {
        list.retain(|r| !matches!(r, Restriction::RejectUnlistedRecipient));
    }
}

/// mydestination and the `[address]` literals of inet_interfaces and proxy_interfaces
/// (`all` meaning every address of this host), without repeats.
fn local_destinations(cf: &MainCf, mydestination: &[String]) -> Vec<String> {
    let mut interfaces = cf.get_list("inet_interfaces");
    interfaces.extend(cf.get_list("proxy_interfaces"));
    let mut out = mydestination.to_vec();
    for ip in crate::restrictions::interfaces::own_addresses(&interfaces) {
        let literal = crate::policy::address_literal(ip);
        if !out.contains(&literal) {
            out.push(literal);
        }
    }
    out
}

/// A main.cf holding `pairs`, for tests: parsed, so values of the wrong type fail here
/// the way a real main.cf fails to load.
#[cfg(test)]
pub(crate) fn test_config(pairs: &[(&str, &str)]) -> Result<MainCf, SettingsError> {
    let text: String = pairs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    Ok(MainCf::parse(
        &text,
        std::path::Path::new("/etc/rostfix/main.cf"),
    )?)
}

/// Postfix list syntax: commas and white space separate.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|i| !i.is_empty())
}

/// `type:name` lookup tables and `/file` patterns.
fn is_table(item: &str) -> bool {
    if item.starts_with('/') {
        return true;
    }
    match item.split_once(':') {
        Some((ty, _)) => {
            !ty.is_empty()
                && ty
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<(Settings, Vec<String>), SettingsError> {
        // The system host name comes through myhostname's computed default.
        let mut pairs = pairs.to_vec();
        if !pairs.iter().any(|(k, _)| *k == "myhostname") {
            pairs.insert(0, ("myhostname", "sys.example"));
        }
        // Not the system's users and aliases (restrictions/config.rs has its own tests).
        pairs.insert(0, ("local_recipient_maps", ""));
        Settings::from_config(&test_config(&pairs)?, None)
    }

    #[test]
    fn no_unknown_recipient_checks_drops_reject_unlisted_recipient() {
        use crate::restrictions::Restriction;
        let unlisted = |s: &Settings| {
            s.restrictions.reject_unlisted_recipient
                || s.restrictions
                    .recipient
                    .iter()
                    .any(|r| matches!(r, Restriction::RejectUnlistedRecipient))
        };
        let pairs = [(
            "smtpd_recipient_restrictions",
            "reject_unlisted_recipient, permit_mynetworks, reject_unauth_destination",
        )];
        let (s, _) = load(&pairs).unwrap();
        assert!(unlisted(&s));
        let mut with = pairs.to_vec();
        with.push((
            "receive_override_options",
            "no_unknown_recipient_checks, no_milters",
        ));
        let (s, w) = load(&with).unwrap();
        assert!(!unlisted(&s));
        assert!(w.is_empty(), "{w:?}");
        assert!(s.receive_overrides.no_milters);
        let (_, w) = load(&[("receive_override_options", "no_such")]).unwrap();
        assert_eq!(
            w,
            ["/etc/rostfix/main.cf, line 3: receive_override_options: unknown option: no_such"]
        );
    }

    #[test]
    fn defaults_when_unset() {
        let (s, w) = load(&[]).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.myhostname, "sys.example");
        assert_eq!(s.banner, "sys.example ESMTP Rostfix");
        // The registry's default, `$myhostname, localhost.$mydomain, localhost`, which
        // main.cf readers always saw (smtpd's own copy said `$myhostname, localhost`).
        assert_eq!(
            s.mydestination,
            vec!["sys.example", "localhost.localdomain", "localhost"]
        );
        assert_eq!(s.message_size_limit, 10_240_000);
        assert_eq!(s.timeout, Duration::from_secs(300));
        assert_eq!(s.hard_error_limit, 20);
        assert!(!s.per_record_deadline);
        assert!(s.mynetworks.contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn per_record_deadline_is_read() {
        let (s, _) = load(&[("smtpd_per_record_deadline", "yes")]).unwrap();
        assert!(s.per_record_deadline);
        assert!(load(&[("smtpd_per_record_deadline", "maybe")]).is_err());
    }

    #[test]
    fn explicit_values() {
        let (s, w) = load(&[
            ("myhostname", "mx.example.com"),
            ("smtpd_banner", "mx.example.com ESMTP hi"),
            ("mydestination", "MX.Example.com., localhost hash:/etc/x"),
            ("mynetworks", "192.0.2.0/24, [2001:db8::]/32 cidr:/etc/y"),
            ("message_size_limit", "1000"),
            ("smtpd_timeout", "10s"),
            ("smtpd_recipient_limit", "5"),
            ("hopcount_limit", "3"),
        ])
        .unwrap();
        // mydestination, mynetworks, and the three lists that default to $mynetworks
        // (smtpd_authorized_verp_clients through authorized_verp_clients).
        assert_eq!(w.len(), 5, "{w:?}");
        assert_eq!(s.banner, "mx.example.com ESMTP hi");
        assert_eq!(s.mydestination, vec!["mx.example.com", "localhost"]);
        // inet_interfaces defaults to all: at least the loopback literals are ours.
        assert!(s
            .local_destinations
            .starts_with(&["mx.example.com".to_string(), "localhost".to_string()]));
        assert!(s.local_destinations.contains(&"[127.0.0.1]".to_string()));
        assert!(s.mynetworks.contains("192.0.2.9".parse().unwrap()));
        assert!(!s.mynetworks.contains("127.0.0.1".parse().unwrap()));
        assert_eq!(s.message_size_limit, 1000);
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.recipient_limit, 5);
        assert_eq!(s.hopcount_limit, 3);
    }

    #[test]
    fn interface_literals_are_local_destinations() {
        let (s, _) = load(&[
            ("mydestination", "mx.example.com"),
            ("inet_interfaces", "127.0.0.1"),
            ("proxy_interfaces", "192.0.2.7, [2001:db8::7], 127.0.0.1"),
        ])
        .unwrap();
        assert_eq!(
            s.local_destinations,
            vec![
                "mx.example.com",
                "[127.0.0.1]",
                "[192.0.2.7]",
                "[ipv6:2001:db8::7]"
            ]
        );
    }

    #[test]
    fn bad_values() {
        assert!(load(&[("message_size_limit", "lots")]).is_err());
        assert!(load(&[("smtpd_timeout", "5x")]).is_err());
        assert!(load(&[("mynetworks", "300.0.0.0/8")]).is_err());
        let no_name = test_config(&[("myhostname", "")]).unwrap();
        assert!(Settings::from_config(&no_name, None).is_err());
    }
}
