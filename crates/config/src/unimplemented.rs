//! The parameters Rostfix accepts (they are in `PARAMS`, so main.cf loads and
//! `rostconf` shows them) but that no code reads: setting one changes nothing. Each
//! entry says what stops working, so a setting that asks for something Rostfix does
//! not do is reported with file and line (see `MainCf::warnings` and
//! `MasterCf::warnings`) instead of passing in silence.
//!
//! A setting is reported only when its value asks for something other than what
//! Rostfix does: usually that is Postfix's default (`soft_bounce = no` changes nothing
//! and is not reported), and for a few entries the behaviour Rostfix has fixed in
//! place of the default (Rostfix never notifies comsat, so `biff = no` is silent).
//!
//! Names that are merely informational (mail_version, compatibility_level,
//! process_name, service_name, stress, config_directory) are not listed: nobody sets
//! them to obtain a behaviour. `scripts/check-unimplemented.sh` (make lint) fails
//! when a listed name appears as a string literal in another crate's source, i.e.
//! when someone implemented it and the entry must go.

use crate::list::split_list;
use crate::params::{lookup_param, parse_bool, parse_int, parse_time, ParamKind};
use std::fmt;

/// What stops working when a parameter of this group is set: the grouping of
/// `rostconf import`'s IMPORT-REPORT and the parenthesis of each warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stops {
    /// header_checks, body_checks, content_filter, smtpd_proxy_filter ...
    ContentInspection,
    /// Milter protocol for mail not received by smtpd (non_smtpd_milters).
    Milters,
    /// canonical and masquerading rewrites, `%` and `!` address forms.
    AddressRewriting,
    /// Headers added or removed by Postfix's cleanup.
    HeaderProcessing,
    /// Which transport or host mail goes to.
    Routing,
    /// Rejecting unknown recipients or senders at RCPT/MAIL time.
    RecipientValidation,
    /// Reply codes of restrictions; Rostfix uses Postfix's default codes.
    ReplyCodes,
    /// SMTP server features and policy.
    SmtpServer,
    /// SMTP server SASL policy.
    Sasl,
    /// TLS options of the server and the client.
    Tls,
    /// SMTP client features.
    SmtpClient,
    /// Notices to the postmaster, bounce templates, soft_bounce.
    Bounces,
    /// local(8) details.
    LocalDelivery,
    /// Who may use sendmail, mailq, sendmail -q.
    CommandAccess,
    /// debug_peer_list and friends.
    Debugging,
    /// syslog facility and logging safeguards.
    Logging,
    /// Timing and sizing knobs of Postfix's implementation that Rostfix's does not have.
    Tuning,
}

impl Stops {
    /// The short phrase used in warnings and as IMPORT-REPORT's group heading.
    pub fn as_str(self) -> &'static str {
        match self {
            Stops::ContentInspection => "content inspection",
            Stops::Milters => "milters",
            Stops::AddressRewriting => "address rewriting",
            Stops::HeaderProcessing => "header processing",
            Stops::Routing => "routing",
            Stops::RecipientValidation => "recipient validation",
            Stops::ReplyCodes => "reply codes",
            Stops::SmtpServer => "SMTP server policy",
            Stops::Sasl => "SASL policy",
            Stops::Tls => "TLS",
            Stops::SmtpClient => "SMTP client",
            Stops::Bounces => "bounces and notices",
            Stops::LocalDelivery => "local delivery",
            Stops::CommandAccess => "command access control",
            Stops::Debugging => "debugging",
            Stops::Logging => "logging",
            Stops::Tuning => "tuning (no effect)",
        }
    }
}

impl fmt::Display for Stops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One accepted parameter that has no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unimplemented {
    pub name: &'static str,
    pub stops: Stops,
    /// The value Rostfix behaves as, when it is not Postfix's default.
    pub behaves_as: Option<&'static str>,
}

const fn u(name: &'static str, stops: Stops) -> Unimplemented {
    Unimplemented {
        name,
        stops,
        behaves_as: None,
    }
}

const fn fixed(name: &'static str, stops: Stops, behaves_as: &'static str) -> Unimplemented {
    Unimplemented {
        name,
        stops,
        behaves_as: Some(behaves_as),
    }
}

use Stops::*;

/// Sorted by name (a test checks it, and that every name is in `PARAMS`).
pub static UNIMPLEMENTED: &[Unimplemented] = &[
    u("access_map_reject_code", ReplyCodes),
    // Probes are routed like mail: these overrides for probes alone are not read.
    u("address_verify_default_transport", Routing),
    u("address_verify_local_transport", Routing),
    u("address_verify_relay_transport", Routing),
    u("address_verify_relayhost", Routing),
    u("address_verify_transport_maps", Routing),
    u("address_verify_virtual_transport", Routing),
    u("allow_min_user", RecipientValidation),
    u("always_add_missing_headers", HeaderProcessing),
    u("application_event_drain_time", Tuning),
    u("authorized_flush_users", CommandAccess),
    u("authorized_mailq_users", CommandAccess),
    u("authorized_submit_users", CommandAccess),
    // Rostfix never notifies comsat: `biff = no` is what it does.
    fixed("biff", LocalDelivery, "no"),
    u("bounce_notice_recipient", Bounces),
    u("bounce_template_file", Bounces),
    u("broken_sasl_auth_clients", Sasl),
    u("daemon_timeout", Tuning),
    u("debug_peer_level", Debugging),
    u("debug_peer_list", Debugging),
    u("debugger_command", Debugging),
    u("default_delivery_slot_cost", Tuning),
    u("default_extra_recipient_limit", Tuning),
    u("default_recipient_limit", Tuning),
    u("defer_transports", Routing),
    u("delay_notice_recipient", Bounces),
    u("deliver_lock_attempts", LocalDelivery),
    u("deliver_lock_delay", LocalDelivery),
    u("disable_dns_lookups", Routing),
    u("duplicate_filter_limit", LocalDelivery),
    u("enable_long_queue_ids", Tuning),
    u("error_notice_recipient", Bounces),
    u("expand_owner_alias", LocalDelivery),
    u("fork_attempts", Tuning),
    u("fork_delay", Tuning),
    u("hash_queue_depth", Tuning),
    u("hash_queue_names", Tuning),
    u("in_flow_delay", Tuning),
    u("invalid_hostname_reject_code", ReplyCodes),
    u("ipc_idle", Tuning),
    u("mailbox_command_maps", Routing),
    u("mailbox_delivery_lock", LocalDelivery),
    u("maillog_file_prefixes", Logging),
    u("message_drop_headers", HeaderProcessing),
    u("mynetworks_style", SmtpServer),
    u("non_fqdn_reject_code", ReplyCodes),
    u("non_smtpd_milters", Milters),
    u("owner_request_special", LocalDelivery),
    u("postlog_service_name", Logging),
    u("postscreen_allowlist_interfaces", SmtpServer),
    u("postscreen_command_filter", SmtpServer),
    u("postscreen_reject_footer", ReplyCodes),
    u("postscreen_reject_footer_maps", ReplyCodes),
    u("postscreen_watchdog_timeout", Tuning),
    u("postscreen_whitelist_interfaces", SmtpServer),
    u("prepend_delivered_header", LocalDelivery),
    u("process_id_directory", Tuning),
    u("qmgr_fudge_factor", Tuning),
    u("queue_service_name", Tuning),
    u("reject_code", ReplyCodes),
    u("relay_domains_reject_code", ReplyCodes),
    u("resolve_dequoted_address", AddressRewriting),
    u("show_user_unknown_table_name", RecipientValidation),
    u("smtp_address_preference", SmtpClient),
    u("smtp_bind_address", SmtpClient),
    u("smtp_bind_address6", SmtpClient),
    u("smtp_host_lookup", Routing),
    u("smtp_line_length_limit", SmtpClient),
    u("smtp_mx_session_limit", SmtpClient),
    u("smtp_sasl_mechanism_filter", SmtpClient),
    u("smtp_sasl_type", SmtpClient),
    u("smtp_skip_5xx_greeting", SmtpClient),
    u("smtp_tls_ciphers", Tls),
    u("smtp_tls_exclude_ciphers", Tls),
    u("smtp_tls_mandatory_ciphers", Tls),
    u("smtp_tls_note_starttls_offer", Tls),
    u("smtp_tls_wrappermode", Tls),
    u("smtpd_client_port_logging", Logging),
    u("smtpd_history_flush_threshold", Tuning),
    u("smtpd_noop_commands", SmtpServer),
    u("smtpd_proxy_options", ContentInspection),
    u("smtpd_recipient_overshoot_limit", SmtpServer),
    u("smtpd_sasl_exceptions_networks", Sasl),
    u("smtpd_tls_dcert_file", Tls),
    u("smtpd_tls_dh1024_param_file", Tls),
    u("smtpd_tls_dkey_file", Tls),
    u("smtpd_tls_eccert_file", Tls),
    u("smtpd_tls_eckey_file", Tls),
    u("smtpd_tls_eecdh_grade", Tls),
    u("smtpd_tls_session_cache_timeout", Tuning),
    u("soft_bounce", Bounces),
    u("stale_lock_time", LocalDelivery),
    u("strict_8bitmime", SmtpServer),
    u("strict_rfc821_envelopes", SmtpServer),
    u("syslog_facility", Logging),
    // rustls draws from the kernel's generator (getrandom), which is what the
    // default dev:/dev/urandom names; another source is not honoured.
    u("tls_random_source", Tls),
    u("transport_retry_time", Tuning),
    u("undisclosed_recipients_header", HeaderProcessing),
    u("unknown_local_recipient_reject_code", ReplyCodes),
    u("unknown_relay_recipient_reject_code", ReplyCodes),
    u("unknown_virtual_alias_reject_code", ReplyCodes),
    u("unknown_virtual_mailbox_reject_code", ReplyCodes),
    u("virtual_maps", AddressRewriting),
];

/// The entry for `name`, if Rostfix accepts it without implementing it.
pub fn lookup_unimplemented(name: &str) -> Option<&'static Unimplemented> {
    UNIMPLEMENTED
        .binary_search_by(|entry| entry.name.cmp(name))
        .ok()
        .and_then(|index| UNIMPLEMENTED.get(index))
}

/// True when `a` and `b` mean the same for a parameter of `kind` (`no` and `No`,
/// `60s` and `1m`, lists with other separators).
fn same_value(kind: ParamKind, a: &str, b: &str) -> bool {
    match kind {
        ParamKind::Bool => parse_bool(a).is_some() && parse_bool(a) == parse_bool(b),
        ParamKind::Int => parse_int(a).is_some() && parse_int(a) == parse_int(b),
        ParamKind::Time(unit) => {
            parse_time(a, unit).is_some() && parse_time(a, unit) == parse_time(b, unit)
        }
        ParamKind::List => split_list(a) == split_list(b),
        ParamKind::Str => a.trim() == b.trim(),
    }
}

/// The entry of `name` when `value` (expanded) asks for something Rostfix does not
/// do; `default` is the parameter's expanded default, used when the entry has no
/// `behaves_as` of its own.
pub fn ineffective(name: &str, value: &str, default: &str) -> Option<&'static Unimplemented> {
    let entry = lookup_unimplemented(name)?;
    let kind = lookup_param(name).map_or(ParamKind::Str, |def| def.kind);
    let harmless = entry.behaves_as.unwrap_or(default);
    (!same_value(kind, value, harmless)).then_some(entry)
}

/// The part of a main.cf value that looks like a trailing `# comment`: Postfix keeps
/// it in the value (comments are whole lines only), which silently breaks the setting.
pub fn trailing_comment(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    (1..bytes.len())
        .find(|&i| bytes[i] == b'#' && bytes[i - 1].is_ascii_whitespace())
        .and_then(|i| value.get(i..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::PARAMS;

    #[test]
    fn sorted_without_duplicates() {
        for pair in UNIMPLEMENTED.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} >= {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn every_entry_is_a_known_parameter() {
        for entry in UNIMPLEMENTED {
            assert!(
                PARAMS.iter().any(|def| def.name == entry.name),
                "{} is not in PARAMS",
                entry.name
            );
        }
    }

    #[test]
    fn behaves_as_values_are_valid_for_their_kind() {
        for entry in UNIMPLEMENTED {
            if let (Some(value), Some(def)) = (entry.behaves_as, lookup_param(entry.name)) {
                assert!(
                    crate::params::check_value(def.kind, value).is_ok(),
                    "{}",
                    entry.name
                );
            }
        }
    }

    #[test]
    fn informational_and_implemented_names_are_not_listed() {
        for name in [
            "mail_version",
            "compatibility_level",
            "process_name",
            "service_name",
            "smtp_helo_timeout",
            "lmtp_lhlo_name",
            "smtp_tls_security_level",
            "myhostname",
        ] {
            assert!(lookup_unimplemented(name).is_none(), "{name}");
        }
    }

    #[test]
    fn default_values_are_harmless() {
        assert!(ineffective("soft_bounce", "no", "no").is_none());
        assert!(ineffective("soft_bounce", "No", "no").is_none());
        assert!(ineffective("soft_bounce", "yes", "no").is_some());
        assert!(ineffective("non_smtpd_milters", "", "").is_none());
        assert!(ineffective("non_smtpd_milters", "inet:127.0.0.1:8891", "").is_some());
        assert!(ineffective("daemon_timeout", "5h", "18000s").is_none());
        assert!(ineffective("myhostname", "x", "y").is_none());
    }

    #[test]
    fn fixed_behaviour_wins_over_postfix_default() {
        // Postfix's default is yes, but Rostfix never notifies comsat.
        assert!(ineffective("biff", "no", "yes").is_none());
        assert_eq!(
            ineffective("biff", "yes", "yes").map(|entry| entry.stops),
            Some(Stops::LocalDelivery)
        );
    }

    #[test]
    fn finds_trailing_comments() {
        assert_eq!(trailing_comment("x # note"), Some("# note"));
        assert_eq!(trailing_comment("x\t#note"), Some("#note"));
        assert_eq!(trailing_comment("a#b"), None);
        assert_eq!(trailing_comment("#x"), None);
        assert_eq!(trailing_comment("plain"), None);
    }
}
