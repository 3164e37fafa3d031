//! The table of known parameters: name, default (unexpanded, Postfix syntax) and kind.
//!
//! Defaults are Postfix's (`src/global/mail_params.h`) at compatibility level 3.6,
//! except where Rostfix's own names and paths differ (mail_owner, queue_directory, ...).
//! Where Postfix computes a default from the compatibility level we give the value it
//! computes for level 3.6 (e.g. append_dot_mydomain = no, smtputf8_enable = yes).
//! A few defaults are dynamic and computed by `MainCf` (they are empty here):
//! `config_directory` (the directory loaded), `myhostname` (the system host name,
//! `.localdomain` appended when it has no dot), `mydomain` (myhostname minus its first
//! label), and `process_name` / `service_name` (set by each daemon).

/// What a parameter's value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Str,
    /// yes/no (also true/false, case-insensitive).
    Bool,
    /// A non-negative integer.
    Int,
    /// A time: a number with an optional unit s, m, h, d, w; the char is the default unit.
    Time(char),
    /// A comma/white-space separated list.
    List,
}

/// One known parameter.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ParamKind,
}

/// Shorthand so the table below stays one line per parameter.
const fn p(name: &'static str, default: &'static str, kind: ParamKind) -> ParamDef {
    ParamDef {
        name,
        default,
        kind,
    }
}

/// Every parameter Rostfix knows, sorted by name (postconf -d prints them in this order).
pub static PARAMS: &[ParamDef] = &[
    p("2bounce_notice_recipient", "postmaster", ParamKind::Str),
    p("access_map_reject_code", "554", ParamKind::Int),
    p("address_verify_cache_cleanup_interval", "12h", ParamKind::Time('s')),
    p("address_verify_default_transport", "$default_transport", ParamKind::Str),
    p("address_verify_local_transport", "$local_transport", ParamKind::Str),
    p("address_verify_map", "btree:$data_directory/verify_cache", ParamKind::Str),
    p("address_verify_negative_cache", "yes", ParamKind::Bool),
    p("address_verify_negative_expire_time", "3d", ParamKind::Time('s')),
    p("address_verify_negative_refresh_time", "3h", ParamKind::Time('s')),
    p("address_verify_poll_count", "${stress?{1}:{3}}", ParamKind::Int),
    p("address_verify_poll_delay", "3s", ParamKind::Time('s')),
    p("address_verify_positive_expire_time", "31d", ParamKind::Time('s')),
    p("address_verify_positive_refresh_time", "7d", ParamKind::Time('s')),
    p("address_verify_relay_transport", "$relay_transport", ParamKind::Str),
    p("address_verify_relayhost", "$relayhost", ParamKind::Str),
    p("address_verify_sender", "$double_bounce_sender", ParamKind::Str),
    p("address_verify_transport_maps", "$transport_maps", ParamKind::List),
    p("address_verify_virtual_transport", "$virtual_transport", ParamKind::Str),
    p("alias_database", "hash:/etc/aliases", ParamKind::List),
    p("alias_maps", "hash:/etc/aliases", ParamKind::List),
    p("allow_mail_to_commands", "alias, forward", ParamKind::List),
    p("allow_mail_to_files", "alias, forward", ParamKind::List),
    p("allow_min_user", "no", ParamKind::Bool),
    p("allow_percent_hack", "yes", ParamKind::Bool),
    p("alternate_config_directories", "", ParamKind::List),
    p("always_add_missing_headers", "no", ParamKind::Bool),
    p("always_bcc", "", ParamKind::Str),
    p("anvil_rate_time_unit", "60s", ParamKind::Time('s')),
    p("anvil_status_update_time", "600s", ParamKind::Time('s')),
    p("append_at_myorigin", "yes", ParamKind::Bool),
    p("append_dot_mydomain", "no", ParamKind::Bool),
    p("application_event_drain_time", "100s", ParamKind::Time('s')),
    p("authorized_flush_users", "static:anyone", ParamKind::List),
    p("authorized_mailq_users", "static:anyone", ParamKind::List),
    p("authorized_submit_users", "static:anyone", ParamKind::List),
    p("authorized_verp_clients", "$mynetworks", ParamKind::List),
    p("biff", "yes", ParamKind::Bool),
    p("body_checks", "", ParamKind::List),
    p("body_checks_size_limit", "51200", ParamKind::Int),
    p("bounce_notice_recipient", "postmaster", ParamKind::Str),
    p("bounce_queue_lifetime", "5d", ParamKind::Time('d')),
    p("bounce_size_limit", "50000", ParamKind::Int),
    p("bounce_template_file", "", ParamKind::Str),
    p("broken_sasl_auth_clients", "no", ParamKind::Bool),
    p(
        "canonical_classes",
        "envelope_sender, envelope_recipient, header_sender, header_recipient",
        ParamKind::List,
    ),
    p("canonical_maps", "", ParamKind::List),
    p("command_directory", "/usr/sbin", ParamKind::Str),
    p("command_execution_directory", "", ParamKind::Str),
    p(
        "command_expansion_filter",
        "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        ParamKind::Str,
    ),
    p("command_time_limit", "1000s", ParamKind::Time('s')),
    p("compatibility_level", "3.6", ParamKind::Str),
    p("config_directory", "", ParamKind::Str),
    p("content_filter", "", ParamKind::Str),
    p("daemon_directory", "/usr/lib/rostfix", ParamKind::Str),
    p("daemon_timeout", "18000s", ParamKind::Time('s')),
    p("data_directory", "/var/lib/rostfix", ParamKind::Str),
    p("debug_peer_level", "2", ParamKind::Int),
    p("debug_peer_list", "", ParamKind::List),
    p("debugger_command", "", ParamKind::Str),
    p("default_database_type", "hash", ParamKind::Str),
    p("default_delivery_slot_cost", "5", ParamKind::Int),
    p(
        "default_destination_concurrency_failed_cohort_limit",
        "1",
        ParamKind::Int,
    ),
    p(
        "default_destination_concurrency_limit",
        "20",
        ParamKind::Int,
    ),
    p(
        "default_destination_concurrency_negative_feedback",
        "1/concurrency",
        ParamKind::Str,
    ),
    p(
        "default_destination_concurrency_positive_feedback",
        "1/concurrency",
        ParamKind::Str,
    ),
    p("default_destination_rate_delay", "0s", ParamKind::Time('s')),
    p("default_destination_recipient_limit", "50", ParamKind::Int),
    p("default_extra_recipient_limit", "1000", ParamKind::Int),
    p("default_filter_nexthop", "", ParamKind::Str),
    p("default_privs", "nobody", ParamKind::Str),
    p("default_process_limit", "100", ParamKind::Int),
    p(
        "default_rbl_reply",
        "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}",
        ParamKind::Str,
    ),
    p("default_recipient_limit", "20000", ParamKind::Int),
    p("default_transport", "smtp", ParamKind::Str),
    p("default_verp_delimiters", "+=", ParamKind::Str),
    p("defer_transports", "", ParamKind::List),
    p("delay_notice_recipient", "postmaster", ParamKind::Str),
    p("delay_warning_time", "0h", ParamKind::Time('h')),
    p("deliver_lock_attempts", "20", ParamKind::Int),
    p("deliver_lock_delay", "1s", ParamKind::Time('s')),
    p("disable_dns_lookups", "no", ParamKind::Bool),
    p("disable_mime_input_processing", "no", ParamKind::Bool),
    p("disable_mime_output_conversion", "no", ParamKind::Bool),
    p("disable_vrfy_command", "no", ParamKind::Bool),
    p("double_bounce_sender", "double-bounce", ParamKind::Str),
    p("duplicate_filter_limit", "1000", ParamKind::Int),
    p("empty_address_default_transport_maps_lookup_key", "<>", ParamKind::Str),
    p("empty_address_recipient", "MAILER-DAEMON", ParamKind::Str),
    p("empty_address_relayhost_maps_lookup_key", "<>", ParamKind::Str),
    p("enable_long_queue_ids", "no", ParamKind::Bool),
    p("error_notice_recipient", "postmaster", ParamKind::Str),
    p(
        "execution_directory_expansion_filter",
        "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        ParamKind::Str,
    ),
    p("expand_owner_alias", "no", ParamKind::Bool),
    p("expansion_size_limit", "1000", ParamKind::Int),
    p("export_environment", "TZ MAIL_CONFIG LANG", ParamKind::List),
    p("fallback_transport", "", ParamKind::Str),
    p("fallback_transport_maps", "", ParamKind::List),
    p("fast_flush_domains", "$relay_domains", ParamKind::List),
    p("fork_attempts", "5", ParamKind::Int),
    p("fork_delay", "1s", ParamKind::Time('s')),
    p(
        "forward_path",
        "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
        ParamKind::List,
    ),
    p("hash_queue_depth", "1", ParamKind::Int),
    p("hash_queue_names", "deferred, defer", ParamKind::List),
    p("header_checks", "", ParamKind::List),
    p("header_size_limit", "102400", ParamKind::Int),
    p("home_mailbox", "", ParamKind::Str),
    p("hopcount_limit", "50", ParamKind::Int),
    p("html_directory", "no", ParamKind::Str),
    p(
        "import_environment",
        "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C",
        ParamKind::List,
    ),
    p("in_flow_delay", "1s", ParamKind::Time('s')),
    p("inet_interfaces", "all", ParamKind::List),
    p("inet_protocols", "all", ParamKind::List),
    p("initial_destination_concurrency", "5", ParamKind::Int),
    p("invalid_hostname_reject_code", "501", ParamKind::Int),
    p("ipc_idle", "5s", ParamKind::Time('s')),
    p("ipc_timeout", "3600s", ParamKind::Time('s')),
    p("line_length_limit", "2048", ParamKind::Int),
    p("lmtp_connect_timeout", "0s", ParamKind::Time('s')),
    p("lmtp_connection_cache_destinations", "", ParamKind::List),
    p("lmtp_connection_cache_on_demand", "yes", ParamKind::Bool),
    p(
        "lmtp_connection_cache_time_limit",
        "2s",
        ParamKind::Time('s'),
    ),
    p("lmtp_connection_reuse_count_limit", "0", ParamKind::Int),
    p(
        "lmtp_connection_reuse_time_limit",
        "300s",
        ParamKind::Time('s'),
    ),
    p("lmtp_data_done_timeout", "600s", ParamKind::Time('s')),
    p("lmtp_data_init_timeout", "120s", ParamKind::Time('s')),
    p("lmtp_data_xfer_timeout", "180s", ParamKind::Time('s')),
    p("lmtp_dns_support_level", "", ParamKind::Str),
    p("lmtp_lhlo_name", "$myhostname", ParamKind::Str),
    p("lmtp_lhlo_timeout", "300s", ParamKind::Time('s')),
    p("lmtp_mail_timeout", "300s", ParamKind::Time('s')),
    p("lmtp_mx_address_limit", "5", ParamKind::Int),
    p("lmtp_quit_timeout", "300s", ParamKind::Time('s')),
    p("lmtp_rcpt_timeout", "300s", ParamKind::Time('s')),
    p("lmtp_rset_timeout", "20s", ParamKind::Time('s')),
    p("lmtp_sasl_auth_enable", "no", ParamKind::Bool),
    p("lmtp_sasl_auth_soft_bounce", "yes", ParamKind::Bool),
    p("lmtp_sasl_password_maps", "", ParamKind::List),
    p(
        "lmtp_sasl_security_options",
        "noplaintext, noanonymous",
        ParamKind::List,
    ),
    p(
        "lmtp_sasl_tls_security_options",
        "$lmtp_sasl_security_options",
        ParamKind::List,
    ),
    p("lmtp_send_xforward_command", "no", ParamKind::Bool),
    p("lmtp_sender_dependent_authentication", "no", ParamKind::Bool),
    p("lmtp_starttls_timeout", "300s", ParamKind::Time('s')),
    p("lmtp_tls_CAfile", "", ParamKind::Str),
    p("lmtp_tls_CApath", "", ParamKind::Str),
    p("lmtp_tls_cert_file", "", ParamKind::Str),
    // Postfix's default is an expression: dane when lmtp_tls_security_level is dane,
    // else may; empty here means that (crates/smtp/src/settings.rs).
    p("lmtp_tls_dane_insecure_mx_policy", "", ParamKind::Str),
    p("lmtp_tls_key_file", "$lmtp_tls_cert_file", ParamKind::Str),
    p("lmtp_tls_loglevel", "0", ParamKind::Int),
    p("lmtp_tls_mandatory_protocols", ">=TLSv1", ParamKind::List),
    p("lmtp_tls_policy_maps", "", ParamKind::List),
    p("lmtp_tls_protocols", ">=TLSv1", ParamKind::List),
    p("lmtp_tls_secure_cert_match", "nexthop", ParamKind::List),
    p("lmtp_tls_security_level", "", ParamKind::Str),
    p("lmtp_tls_session_cache_database", "", ParamKind::Str),
    p(
        "lmtp_tls_session_cache_timeout",
        "3600s",
        ParamKind::Time('s'),
    ),
    p("lmtp_tls_verify_cert_match", "hostname", ParamKind::List),
    p("local_command_shell", "", ParamKind::Str),
    p("local_destination_concurrency_limit", "2", ParamKind::Int),
    p("local_destination_recipient_limit", "1", ParamKind::Int),
    p(
        "local_header_rewrite_clients",
        "permit_inet_interfaces",
        ParamKind::List,
    ),
    p(
        "local_recipient_maps",
        "proxy:unix:passwd.byname $alias_maps",
        ParamKind::List,
    ),
    p("local_transport", "local:$myhostname", ParamKind::Str),
    p("luser_relay", "", ParamKind::Str),
    p("mail_name", "Rostfix", ParamKind::Str),
    p("mail_owner", "rostfix", ParamKind::Str),
    p("mail_spool_directory", "/var/mail", ParamKind::Str),
    p("mail_version", "0.1.0", ParamKind::Str),
    p("mailbox_command", "", ParamKind::Str),
    p("mailbox_command_maps", "", ParamKind::List),
    p("mailbox_delivery_lock", "fcntl, dotlock", ParamKind::List),
    p("mailbox_size_limit", "51200000", ParamKind::Int),
    p("mailbox_transport", "", ParamKind::Str),
    p("mailbox_transport_maps", "", ParamKind::List),
    p("maillog_file", "", ParamKind::Str),
    p(
        "maillog_file_prefixes",
        "/var, /dev/stdout",
        ParamKind::List,
    ),
    p("mailq_path", "/usr/bin/mailq", ParamKind::Str),
    p("manpage_directory", "/usr/share/man", ParamKind::Str),
    p("maps_rbl_domains", "", ParamKind::List),
    p("maps_rbl_reject_code", "554", ParamKind::Int),
    p(
        "masquerade_classes",
        "envelope_sender, header_sender, header_recipient",
        ParamKind::List,
    ),
    p("masquerade_domains", "", ParamKind::List),
    p("masquerade_exceptions", "", ParamKind::List),
    p("max_idle", "100s", ParamKind::Time('s')),
    p("max_use", "100", ParamKind::Int),
    p("maximal_backoff_time", "4000s", ParamKind::Time('s')),
    p("maximal_queue_lifetime", "5d", ParamKind::Time('d')),
    p(
        "message_drop_headers",
        "bcc, content-length, resent-bcc, return-path",
        ParamKind::List,
    ),
    p("message_size_limit", "10240000", ParamKind::Int),
    p("meta_directory", "/etc/rostfix", ParamKind::Str),
    p("milter_command_timeout", "30s", ParamKind::Time('s')),
    p("milter_connect_macros", "j {daemon_name} {daemon_addr} v _", ParamKind::List),
    p("milter_connect_timeout", "30s", ParamKind::Time('s')),
    p("milter_content_timeout", "300s", ParamKind::Time('s')),
    p("milter_data_macros", "i", ParamKind::List),
    p("milter_default_action", "tempfail", ParamKind::Str),
    p("milter_end_of_data_macros", "i", ParamKind::List),
    p("milter_end_of_header_macros", "i", ParamKind::List),
    p("milter_helo_macros", "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}", ParamKind::List),
    p("milter_macro_daemon_name", "$myhostname", ParamKind::Str),
    p("milter_macro_v", "$mail_name $mail_version", ParamKind::Str),
    p("milter_mail_macros", "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}", ParamKind::List),
    p("milter_protocol", "6", ParamKind::Str),
    p("milter_rcpt_macros", "i {rcpt_addr} {rcpt_host} {rcpt_mailer}", ParamKind::List),
    p("mime_header_checks", "$header_checks", ParamKind::List),
    p("minimal_backoff_time", "300s", ParamKind::Time('s')),
    p("multi_instance_directories", "", ParamKind::List),
    p(
        "mydestination",
        "$myhostname, localhost.$mydomain, localhost",
        ParamKind::List,
    ),
    p("mydomain", "", ParamKind::Str),
    p("myhostname", "", ParamKind::Str),
    p("mynetworks", "127.0.0.0/8 [::1]/128", ParamKind::List),
    p("mynetworks_style", "host", ParamKind::Str),
    p("myorigin", "$myhostname", ParamKind::Str),
    p("nested_header_checks", "$header_checks", ParamKind::List),
    p("newaliases_path", "/usr/bin/newaliases", ParamKind::Str),
    p("non_fqdn_reject_code", "504", ParamKind::Int),
    p("non_smtpd_milters", "", ParamKind::List),
    p("notify_classes", "resource, software", ParamKind::List),
    p("owner_request_special", "yes", ParamKind::Bool),
    p(
        "parent_domain_matches_subdomains",
        "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps",
        ParamKind::List,
    ),
    p("permit_mx_backup_networks", "", ParamKind::List),
    p("plaintext_reject_code", "450", ParamKind::Int),
    p("postlog_service_name", "postlog", ParamKind::Str),
    p("postscreen_access_list", "permit_mynetworks", ParamKind::List),
    p(
        "postscreen_allowlist_interfaces",
        "${postscreen_whitelist_interfaces?{$postscreen_whitelist_interfaces}:{static:all}}",
        ParamKind::List,
    ),
    p("postscreen_bare_newline_action", "ignore", ParamKind::Str),
    p("postscreen_bare_newline_enable", "no", ParamKind::Bool),
    p("postscreen_bare_newline_ttl", "30d", ParamKind::Time('s')),
    p("postscreen_blacklist_action", "ignore", ParamKind::Str),
    p("postscreen_cache_cleanup_interval", "12h", ParamKind::Time('s')),
    p("postscreen_cache_map", "btree:$data_directory/postscreen_cache", ParamKind::Str),
    p("postscreen_cache_retention_time", "7d", ParamKind::Time('s')),
    p(
        "postscreen_client_connection_count_limit",
        "$smtpd_client_connection_count_limit",
        ParamKind::Int,
    ),
    p("postscreen_command_count_limit", "20", ParamKind::Int),
    p("postscreen_command_filter", "", ParamKind::Str),
    p("postscreen_command_time_limit", "${stress?{10}:{300}}s", ParamKind::Time('s')),
    p(
        "postscreen_denylist_action",
        "${postscreen_blacklist_action?{$postscreen_blacklist_action}:{ignore}}",
        ParamKind::Str,
    ),
    p("postscreen_disable_vrfy_command", "$disable_vrfy_command", ParamKind::Bool),
    p("postscreen_discard_ehlo_keyword_address_maps", "", ParamKind::List),
    p("postscreen_discard_ehlo_keywords", "$smtpd_discard_ehlo_keywords", ParamKind::List),
    p("postscreen_dnsbl_action", "ignore", ParamKind::Str),
    p(
        "postscreen_dnsbl_allowlist_threshold",
        "${postscreen_dnsbl_whitelist_threshold?{$postscreen_dnsbl_whitelist_threshold}:{0}}",
        ParamKind::Str,
    ),
    p(
        "postscreen_dnsbl_max_ttl",
        "${postscreen_dnsbl_ttl?{$postscreen_dnsbl_ttl}:{1h}}",
        ParamKind::Time('s'),
    ),
    p("postscreen_dnsbl_min_ttl", "60s", ParamKind::Time('s')),
    p("postscreen_dnsbl_reply_map", "", ParamKind::Str),
    p("postscreen_dnsbl_sites", "", ParamKind::List),
    p("postscreen_dnsbl_threshold", "1", ParamKind::Str),
    p("postscreen_dnsbl_timeout", "10s", ParamKind::Time('s')),
    p("postscreen_dnsbl_ttl", "1h", ParamKind::Time('s')),
    p("postscreen_dnsbl_whitelist_threshold", "0", ParamKind::Str),
    p("postscreen_enforce_tls", "$smtpd_enforce_tls", ParamKind::Bool),
    p("postscreen_forbidden_commands", "CONNECT, GET, POST", ParamKind::List),
    p("postscreen_greet_action", "ignore", ParamKind::Str),
    p("postscreen_greet_banner", "$smtpd_banner", ParamKind::Str),
    p("postscreen_greet_ttl", "1d", ParamKind::Time('s')),
    p("postscreen_greet_wait", "${stress?{2}:{6}}s", ParamKind::Time('s')),
    p("postscreen_helo_required", "$smtpd_helo_required", ParamKind::Bool),
    p("postscreen_non_smtp_command_action", "drop", ParamKind::Str),
    p("postscreen_non_smtp_command_enable", "no", ParamKind::Bool),
    p("postscreen_non_smtp_command_ttl", "30d", ParamKind::Time('s')),
    p("postscreen_pipelining_action", "enforce", ParamKind::Str),
    p("postscreen_pipelining_enable", "no", ParamKind::Bool),
    p("postscreen_pipelining_ttl", "30d", ParamKind::Time('s')),
    p("postscreen_post_queue_limit", "$default_process_limit", ParamKind::Int),
    p("postscreen_pre_queue_limit", "$default_process_limit", ParamKind::Int),
    p("postscreen_reject_footer", "", ParamKind::Str),
    p("postscreen_reject_footer_maps", "", ParamKind::List),
    p("postscreen_tls_security_level", "$smtpd_tls_security_level", ParamKind::Str),
    p("postscreen_upstream_proxy_protocol", "", ParamKind::Str),
    p("postscreen_upstream_proxy_timeout", "5s", ParamKind::Time('s')),
    p("postscreen_use_tls", "$smtpd_use_tls", ParamKind::Bool),
    p("postscreen_watchdog_timeout", "10s", ParamKind::Time('s')),
    p("postscreen_whitelist_interfaces", "static:all", ParamKind::List),
    p(
        "prepend_delivered_header",
        "command, file, forward",
        ParamKind::List,
    ),
    p("process_id_directory", "pid", ParamKind::Str),
    p("process_name", "", ParamKind::Str),
    p(
        "propagate_unmatched_extensions",
        "canonical, virtual",
        ParamKind::List,
    ),
    p("proxy_interfaces", "", ParamKind::List),
    // Postfix's default, less the parameters Rostfix does not have.
    p(
        "proxy_read_maps",
        "$local_recipient_maps $mydestination $virtual_alias_maps $virtual_alias_domains \
         $virtual_mailbox_maps $virtual_mailbox_domains $relay_recipient_maps $relay_domains \
         $canonical_maps $sender_canonical_maps $recipient_canonical_maps $transport_maps \
         $mynetworks $smtpd_sender_login_maps $sender_bcc_maps $recipient_bcc_maps \
         $alias_maps $smtpd_client_restrictions $smtpd_helo_restrictions \
         $smtpd_sender_restrictions $smtpd_relay_restrictions $smtpd_recipient_restrictions \
         $sender_dependent_relayhost_maps $smtp_sasl_password_maps \
         $sender_dependent_default_transport_maps $smtp_tls_policy_maps \
         $mailbox_transport_maps $fallback_transport_maps $virtual_uid_maps \
         $virtual_gid_maps $mailbox_command_maps",
        ParamKind::List,
    ),
    // The tables the proxywrite service may update: Postfix's default, less the SASL
    // authentication caches Rostfix does not have.
    p(
        "proxy_write_maps",
        "$address_verify_map $postscreen_cache_map",
        ParamKind::List,
    ),
    p("qmgr_fudge_factor", "100", ParamKind::Int),
    p("qmgr_message_active_limit", "20000", ParamKind::Int),
    p("qmgr_message_recipient_limit", "20000", ParamKind::Int),
    p("queue_directory", "/var/spool/rostfix", ParamKind::Str),
    p("queue_minfree", "0", ParamKind::Int),
    p("queue_run_delay", "300s", ParamKind::Time('s')),
    p("queue_service_name", "qmgr", ParamKind::Str),
    p("rbl_reply_maps", "", ParamKind::List),
    p("readme_directory", "no", ParamKind::Str),
    p("receive_override_options", "", ParamKind::List),
    p("recipient_bcc_maps", "", ParamKind::List),
    p(
        "recipient_canonical_classes",
        "envelope_recipient, header_recipient",
        ParamKind::List,
    ),
    p("recipient_canonical_maps", "", ParamKind::List),
    p("recipient_delimiter", "", ParamKind::Str),
    p("reject_code", "554", ParamKind::Int),
    p("relay_clientcerts", "", ParamKind::List),
    p("relay_domains", "", ParamKind::List),
    p("relay_domains_reject_code", "554", ParamKind::Int),
    p("relay_recipient_maps", "", ParamKind::List),
    p("relay_transport", "relay", ParamKind::Str),
    p("relayhost", "", ParamKind::Str),
    p("remote_header_rewrite_domain", "", ParamKind::Str),
    p("resolve_dequoted_address", "yes", ParamKind::Bool),
    // Rostfix-specific: "host:port" name servers used instead of /etc/resolv.conf
    // (tests point the smtp client at a local DNS server); empty = the system resolver.
    // Rostfix-specific: anvil shares client rates with other machines through this
    // Redis server (host:port; empty = this machine's own limits only).
    p("rostfix_anvil_connection_lease", "60s", ParamKind::Time('s')),
    p("rostfix_anvil_redis_prefix", "rostfix:anvil:", ParamKind::Str),
    p("rostfix_anvil_redis_server", "", ParamKind::Str),
    // Rostfix-specific: local puts an ARC set (RFC 8617) on each copy it forwards for
    // an alias, .forward or :include: address, signed with the key the DKIM
    // SigningTable gives that address (docs/mail-auth.md).
    p("rostfix_arc_seal_forwarded", "no", ParamKind::Bool),
    // Rostfix-specific: the list managers whose mail is ARC-sealed when it carries our
    // own Authentication-Results header (mail we received, sent on to a list): local
    // users submitting with sendmail (pickup) and SASL login names (smtpd). Sealed
    // with the key the SigningTable gives the envelope sender (else From:), the AAR
    // holding what we found on receipt (docs/mail-auth.md). Empty: none.
    p("rostfix_arc_seal_resubmitted", "", ParamKind::List),
    // Rostfix-specific: verification on receipt (crates/authverify, docs/mail-auth.md):
    // which mail smtpd checks (no, outside = not mynetworks nor SASL-authenticated,
    // all) and writes one Authentication-Results header for, and the deadline of one
    // check (an SPF evaluation, or a message's DKIM/ARC/DMARC).
    p("rostfix_auth_verify", "no", ParamKind::Str),
    p("rostfix_auth_verify_timeout", "20s", ParamKind::Time('s')),
    // Rostfix-specific: bulk-mail hygiene checks on submitted campaign mail and what
    // a failed check does (crates/hygiene, docs/bulk-sending.md).
    p("rostfix_bulk_hygiene_action", "warn", ParamKind::Str),
    p("rostfix_bulk_hygiene_checks", "dkim, one_click_unsubscribe, dmarc", ParamKind::List),
    // Rostfix-specific: the bus intake (crates/bus, docs/bulk-sending.md): how long
    // bus message ids are remembered against redelivery, messages pulled and not yet
    // picked up, the pause after an empty pull, one HTTP exchange's time limit, the
    // kind of bus.
    p("rostfix_bus_dedup_time", "7d", ParamKind::Time('d')),
    p("rostfix_bus_max_outstanding", "1000", ParamKind::Int),
    p("rostfix_bus_poll_interval", "1s", ParamKind::Time('s')),
    p("rostfix_bus_timeout", "60s", ParamKind::Time('s')),
    p("rostfix_bus_type", "pubsub", ParamKind::Str),
    // Rostfix-specific: the JSON delivery log qmgr appends one line per delivery
    // attempt per recipient to (docs/bulk-sending.md); empty = none.
    p("rostfix_delivery_log", "", ParamKind::Str),
    // Rostfix-specific: native DKIM signing (crates/dkim, docs/dkim.md): OpenDKIM's
    // KeyTable and SigningTable files as they are (`refile:` for wildcard patterns);
    // both empty = no signing.
    p("rostfix_dkim_key_table", "", ParamKind::Str),
    p("rostfix_dkim_multiple_signatures", "no", ParamKind::Bool),
    p("rostfix_dkim_signing_table", "", ParamKind::Str),
    // Rostfix-specific: DMARC p=reject failures are answered 550 5.7.1 (yes) unless the
    // From: domain (or its organisational domain) is in the exception tables.
    p("rostfix_dmarc_exception_maps", "", ParamKind::List),
    // Rostfix-specific: DMARC p=quarantine failures go to the hold queue (yes), with
    // the same exception tables.
    p("rostfix_dmarc_quarantine_policy", "no", ParamKind::Bool),
    p("rostfix_dmarc_reject_policy", "no", ParamKind::Bool),
    p("rostfix_dns_servers", "", ParamKind::List),
    // Rostfix-specific: a file of DNSKEY records trusted for DNSSEC validation
    // (smtp_dns_support_level = dnssec); empty = the IANA root keys.
    p("rostfix_dnssec_trust_anchor", "", ParamKind::Str),
    // Rostfix-specific: the group commit of local deliveries (docs/performance.md):
    // qmgr hands a local agent up to this many queued messages for one recipient in
    // one request, which it stores with one Maildir directory sync; 0 or 1 = one
    // message per request. The size limit bounds the batch's message bytes (a batch
    // holds at least one message).
    p("rostfix_local_batch_limit", "32", ParamKind::Int),
    p("rostfix_local_batch_size_limit", "10240000", ParamKind::Int),
    p("rostfix_maildir_extension_folders", "no", ParamKind::Bool),
    // Rostfix-specific: maillog_file lines as Postfix's text (text) or one JSON object
    // per line (json) for log pipelines; syslog always gets text.
    p("rostfix_maillog_format", "text", ParamKind::Str),
    // Rostfix-specific: where the metrics service answers Prometheus (HTTP).
    p("rostfix_metrics_listen", "127.0.0.1:9155", ParamKind::Str),
    // Rostfix-specific: user:password lines; when set, /metrics asks for HTTP basic
    // authentication (Prometheus's basic_auth).
    p("rostfix_metrics_password_file", "", ParamKind::Str),
    // Rostfix-specific: MTA-STS (RFC 8461) in the smtp client, through the mtasts
    // service (docs/mta-sts.md): the switch, the CA file that authenticates policy
    // hosts (empty = the system store), the policy cache file, the HTTPS port of
    // policy hosts (443; tests use another) and the total time one fetch may take.
    p("rostfix_mta_sts_CAfile", "", ParamKind::Str),
    p("rostfix_mta_sts_cache", "$data_directory/mta_sts_cache", ParamKind::Str),
    p("rostfix_mta_sts_enable", "no", ParamKind::Bool),
    p("rostfix_mta_sts_fetch_timeout", "10s", ParamKind::Time('s')),
    p("rostfix_mta_sts_https_port", "443", ParamKind::Int),
    // Rostfix-specific: how many instances of one table (each with its own database
    // connection) a proxymap process opens at most; lookups beyond wait their turn.
    p("rostfix_proxymap_pool_size", "4", ParamKind::Int),
    // Rostfix-specific: the public suffix list DMARC takes organisational domains from
    // (Debian's publicsuffix package keeps this file current; OpenDMARC reads it too).
    p("rostfix_public_suffix_list", "/usr/share/publicsuffix/public_suffix_list.dat", ParamKind::Str),
    // Rostfix-specific: the Pub/Sub bus intake: REST endpoint (http:// for the
    // emulator), projects/P/subscriptions/S (empty: the bus service idles), a file
    // whose first line is an OAuth bearer token kept fresh by an outside tool.
    p("rostfix_pubsub_endpoint", "https://pubsub.googleapis.com", ParamKind::Str),
    p("rostfix_pubsub_subscription", "", ParamKind::Str),
    p("rostfix_pubsub_token_file", "", ParamKind::Str),
    // Rostfix-specific: smtpd offers REQUIRETLS (RFC 8689) on TLS sessions; mail
    // taken with it leaves only over TLS verified by DANE, MTA-STS or PKIX with a
    // secured MX lookup, else it is returned (5.7.10).
    p("rostfix_requiretls_enable", "yes", ParamKind::Bool),
    // Rostfix-specific: the Redis server (an IP address and port) and key prefix
    // through which several machines' qmgr share each shaping bucket's rate (GCRA) and
    // back-off; empty = each machine's own rates (docs/operations.md).
    p("rostfix_shaping_redis_prefix", "rostfix:shaping:", ParamKind::Str),
    p(
        "rostfix_shaping_redis_server",
        "$rostfix_anvil_redis_server",
        ParamKind::Str,
    ),
    // Rostfix-specific: the traffic shaping rules file qmgr reads (and re-reads when
    // it changes); empty = no shaping (docs/bulk-sending.md).
    p("rostfix_shaping_rules", "", ParamKind::Str),
    // Rostfix-specific: the transports whose destinations the shaping rules apply to.
    p("rostfix_shaping_transports", "smtp", ParamKind::List),
    // Rostfix-specific: the format a showq service answers in: rostfix (framed JSON,
    // for rostqueue) or postfix (Postfix 3's showq stream, for tools written against
    // Postfix such as prometheus-postfix-exporter); set per service with -o.
    p("rostfix_showq_protocol", "rostfix", ParamKind::Str),
    // Rostfix-specific: smtpd waits this long before its greeting and rejects a client
    // that talks first (Postfix does this only in postscreen); 0 = off.
    p("rostfix_smtpd_greet_pause", "0s", ParamKind::Time('s')),
    // Rostfix-specific: the suppression list (docs/bulk-sending.md): off, reject (smtpd
    // refuses RCPT of relayed mail to a listed address, qmgr bounces what still comes)
    // or bounce (qmgr bounces without a connection); which outcome classes put the
    // recipient on the list; how long an entry lasts.
    p("rostfix_suppression_action", "off", ParamKind::Str),
    p("rostfix_suppression_classes", "bad-mailbox, bad-domain", ParamKind::List),
    p("rostfix_suppression_expiry", "30d", ParamKind::Time('s')),
    // Rostfix-specific: SMTP TLS reporting (RFC 8460, docs/tls-reporting.md): the smtp
    // client records TLS session outcomes for domains with MTA-STS or DANE policies and
    // the tlsrpt service mails each period's report to the domain's rua.
    p("rostfix_tlsrpt_CAfile", "", ParamKind::Str),
    p(
        "rostfix_tlsrpt_contact",
        "postmaster@$mydomain",
        ParamKind::Str,
    ),
    p("rostfix_tlsrpt_enable", "no", ParamKind::Bool),
    p("rostfix_tlsrpt_organization", "$mydomain", ParamKind::Str),
    p("rostfix_tlsrpt_period", "1d", ParamKind::Time('s')),
    p(
        "rostfix_tlsrpt_sender",
        "noreply-smtp-tls-reporting@$mydomain",
        ParamKind::Str,
    ),
    p("sample_directory", "/etc/rostfix", ParamKind::Str),
    p("sender_bcc_maps", "", ParamKind::List),
    p(
        "sender_canonical_classes",
        "envelope_sender, header_sender",
        ParamKind::List,
    ),
    p("sender_canonical_maps", "", ParamKind::List),
    p("sender_dependent_default_transport_maps", "", ParamKind::List),
    p("sender_dependent_relayhost_maps", "", ParamKind::List),
    p("sendmail_path", "/usr/sbin/sendmail", ParamKind::Str),
    p("service_name", "", ParamKind::Str),
    p("service_throttle_time", "60s", ParamKind::Time('s')),
    p("setgid_group", "rostdrop", ParamKind::Str),
    p("show_user_unknown_table_name", "yes", ParamKind::Bool),
    p("smtp_address_preference", "any", ParamKind::Str),
    p("smtp_bind_address", "", ParamKind::Str),
    p("smtp_bind_address6", "", ParamKind::Str),
    p("smtp_connect_timeout", "30s", ParamKind::Time('s')),
    p("smtp_connection_cache_destinations", "", ParamKind::List),
    p("smtp_connection_cache_on_demand", "yes", ParamKind::Bool),
    p(
        "smtp_connection_cache_time_limit",
        "2s",
        ParamKind::Time('s'),
    ),
    // A session that carried this many transactions is closed, not reused; 0 = no
    // limit (Postfix 3.x's parameter; a shaping bucket's messages_per_connection wins).
    p("smtp_connection_reuse_count_limit", "0", ParamKind::Int),
    p(
        "smtp_connection_reuse_time_limit",
        "300s",
        ParamKind::Time('s'),
    ),
    p("smtp_data_done_timeout", "600s", ParamKind::Time('s')),
    p("smtp_data_init_timeout", "120s", ParamKind::Time('s')),
    p("smtp_data_xfer_timeout", "180s", ParamKind::Time('s')),
    p("smtp_dns_support_level", "", ParamKind::Str),
    p("smtp_enforce_tls", "no", ParamKind::Bool),
    p("smtp_helo_name", "$myhostname", ParamKind::Str),
    p("smtp_helo_timeout", "300s", ParamKind::Time('s')),
    p("smtp_host_lookup", "dns", ParamKind::List),
    p("smtp_line_length_limit", "998", ParamKind::Int),
    p("smtp_mail_timeout", "300s", ParamKind::Time('s')),
    p("smtp_mx_address_limit", "5", ParamKind::Int),
    p("smtp_mx_session_limit", "2", ParamKind::Int),
    p("smtp_quit_timeout", "300s", ParamKind::Time('s')),
    p("smtp_rcpt_timeout", "300s", ParamKind::Time('s')),
    p("smtp_rset_timeout", "20s", ParamKind::Time('s')),
    p("smtp_sasl_auth_enable", "no", ParamKind::Bool),
    p("smtp_sasl_auth_soft_bounce", "yes", ParamKind::Bool),
    p("smtp_sasl_mechanism_filter", "", ParamKind::List),
    p("smtp_sasl_password_maps", "", ParamKind::List),
    p(
        "smtp_sasl_security_options",
        "noplaintext, noanonymous",
        ParamKind::List,
    ),
    p(
        "smtp_sasl_tls_security_options",
        "$smtp_sasl_security_options",
        ParamKind::List,
    ),
    p("smtp_sasl_type", "cyrus", ParamKind::Str),
    p("smtp_send_xforward_command", "no", ParamKind::Bool),
    p("smtp_sender_dependent_authentication", "no", ParamKind::Bool),
    p("smtp_skip_5xx_greeting", "yes", ParamKind::Bool),
    p("smtp_starttls_timeout", "300s", ParamKind::Time('s')),
    p("smtp_tls_CAfile", "", ParamKind::Str),
    p("smtp_tls_CApath", "", ParamKind::Str),
    p("smtp_tls_cert_file", "", ParamKind::Str),
    p("smtp_tls_ciphers", "medium", ParamKind::Str),
    // Postfix's default is an expression: dane when smtp_tls_security_level is dane,
    // else may; empty here means that (crates/smtp/src/settings.rs).
    p("smtp_tls_dane_insecure_mx_policy", "", ParamKind::Str),
    p("smtp_tls_exclude_ciphers", "", ParamKind::List),
    p("smtp_tls_key_file", "$smtp_tls_cert_file", ParamKind::Str),
    p("smtp_tls_loglevel", "0", ParamKind::Int),
    p("smtp_tls_mandatory_ciphers", "medium", ParamKind::Str),
    p("smtp_tls_mandatory_protocols", ">=TLSv1", ParamKind::List),
    p("smtp_tls_note_starttls_offer", "no", ParamKind::Bool),
    p("smtp_tls_policy_maps", "", ParamKind::List),
    p("smtp_tls_protocols", ">=TLSv1", ParamKind::List),
    p(
        "smtp_tls_secure_cert_match",
        "nexthop, dot-nexthop",
        ParamKind::List,
    ),
    p("smtp_tls_security_level", "", ParamKind::Str),
    p("smtp_tls_session_cache_database", "", ParamKind::Str),
    p(
        "smtp_tls_session_cache_timeout",
        "3600s",
        ParamKind::Time('s'),
    ),
    p("smtp_tls_verify_cert_match", "hostname", ParamKind::List),
    p("smtp_tls_wrappermode", "no", ParamKind::Bool),
    p("smtp_use_tls", "no", ParamKind::Bool),
    p("smtpd_authorized_verp_clients", "$authorized_verp_clients", ParamKind::List),
    p("smtpd_authorized_xclient_hosts", "", ParamKind::List),
    p("smtpd_authorized_xforward_hosts", "", ParamKind::List),
    p(
        "smtpd_banner",
        "$myhostname ESMTP $mail_name",
        ParamKind::Str,
    ),
    p("smtpd_client_auth_rate_limit", "0", ParamKind::Int),
    p("smtpd_client_connection_count_limit", "50", ParamKind::Int),
    p("smtpd_client_connection_rate_limit", "0", ParamKind::Int),
    p(
        "smtpd_client_event_limit_exceptions",
        "$mynetworks",
        ParamKind::List,
    ),
    p("smtpd_client_message_rate_limit", "0", ParamKind::Int),
    p("smtpd_client_port_logging", "no", ParamKind::Bool),
    p("smtpd_client_recipient_rate_limit", "0", ParamKind::Int),
    p("smtpd_client_restrictions", "", ParamKind::List),
    p("smtpd_data_restrictions", "", ParamKind::List),
    p("smtpd_delay_reject", "yes", ParamKind::Bool),
    p("smtpd_discard_ehlo_keyword_address_maps", "", ParamKind::List),
    p("smtpd_discard_ehlo_keywords", "", ParamKind::List),
    p("smtpd_end_of_data_restrictions", "", ParamKind::List),
    p("smtpd_enforce_tls", "no", ParamKind::Bool),
    p("smtpd_error_sleep_time", "1s", ParamKind::Time('s')),
    p("smtpd_etrn_restrictions", "", ParamKind::List),
    // Rostfix default: yes (Postfix 3.9: normalize); issue 3 asks for rejection on.
    p("smtpd_forbid_bare_newline", "yes", ParamKind::Str),
    p(
        "smtpd_forbid_bare_newline_exclusions",
        "$mynetworks",
        ParamKind::List,
    ),
    p(
        "smtpd_forbid_bare_newline_reject_code",
        "550",
        ParamKind::Int,
    ),
    p("smtpd_forbid_unauth_pipelining", "yes", ParamKind::Bool),
    p(
        "smtpd_forbidden_commands",
        "CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}",
        ParamKind::List,
    ),
    p("smtpd_hard_error_limit", "${stress?{1}:{20}}", ParamKind::Int),
    p("smtpd_helo_required", "no", ParamKind::Bool),
    p("smtpd_helo_restrictions", "", ParamKind::List),
    p("smtpd_history_flush_threshold", "100", ParamKind::Int),
    p("smtpd_junk_command_limit", "${stress?{1}:{100}}", ParamKind::Int),
    p("smtpd_milters", "", ParamKind::List),
    p("smtpd_noop_commands", "", ParamKind::List),
    p("smtpd_peername_lookup", "yes", ParamKind::Bool),
    p(
        "smtpd_per_record_deadline",
        "${stress?{yes}:{no}}",
        ParamKind::Bool,
    ),
    p(
        "smtpd_policy_service_default_action",
        "451 4.3.5 Server configuration problem",
        ParamKind::Str,
    ),
    p("smtpd_policy_service_max_idle", "300s", ParamKind::Time('s')),
    p("smtpd_policy_service_max_ttl", "1000s", ParamKind::Time('s')),
    p("smtpd_policy_service_policy_context", "", ParamKind::Str),
    p("smtpd_policy_service_request_limit", "0", ParamKind::Int),
    p("smtpd_policy_service_retry_delay", "1s", ParamKind::Time('s')),
    p("smtpd_policy_service_timeout", "100s", ParamKind::Time('s')),
    p("smtpd_policy_service_try_limit", "2", ParamKind::Int),
    p("smtpd_proxy_ehlo", "$myhostname", ParamKind::Str),
    p("smtpd_proxy_filter", "", ParamKind::Str),
    p("smtpd_proxy_options", "", ParamKind::List),
    p("smtpd_proxy_timeout", "100s", ParamKind::Time('s')),
    p("smtpd_recipient_limit", "1000", ParamKind::Int),
    p("smtpd_recipient_overshoot_limit", "1000", ParamKind::Int),
    p("smtpd_recipient_restrictions", "", ParamKind::List),
    p("smtpd_reject_unlisted_recipient", "yes", ParamKind::Bool),
    p("smtpd_reject_unlisted_sender", "no", ParamKind::Bool),
    p(
        "smtpd_relay_restrictions",
        "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
        ParamKind::List,
    ),
    p("smtpd_restriction_classes", "", ParamKind::List),
    p("smtpd_sasl_auth_enable", "no", ParamKind::Bool),
    p("smtpd_sasl_authenticated_header", "no", ParamKind::Bool),
    p("smtpd_sasl_exceptions_networks", "", ParamKind::List),
    p("smtpd_sasl_local_domain", "", ParamKind::Str),
    p("smtpd_sasl_path", "smtpd", ParamKind::Str),
    p(
        "smtpd_sasl_security_options",
        "noanonymous",
        ParamKind::List,
    ),
    p("smtpd_sasl_service", "smtp", ParamKind::Str),
    p(
        "smtpd_sasl_tls_security_options",
        "$smtpd_sasl_security_options",
        ParamKind::List,
    ),
    p("smtpd_sasl_type", "cyrus", ParamKind::Str),
    p("smtpd_sender_login_maps", "", ParamKind::List),
    p("smtpd_sender_restrictions", "", ParamKind::List),
    p("smtpd_service_name", "smtpd", ParamKind::Str),
    p("smtpd_soft_error_limit", "10", ParamKind::Int),
    p("smtpd_timeout", "${stress?{10}:{300}}s", ParamKind::Time('s')),
    p("smtpd_tls_CAfile", "", ParamKind::Str),
    p("smtpd_tls_CApath", "", ParamKind::Str),
    p("smtpd_tls_ask_ccert", "no", ParamKind::Bool),
    p("smtpd_tls_auth_only", "no", ParamKind::Bool),
    p("smtpd_tls_cert_file", "", ParamKind::Str),
    p("smtpd_tls_chain_files", "", ParamKind::List),
    p("smtpd_tls_ciphers", "medium", ParamKind::Str),
    p("smtpd_tls_dcert_file", "", ParamKind::Str),
    p("smtpd_tls_dh1024_param_file", "", ParamKind::Str),
    p(
        "smtpd_tls_dkey_file",
        "$smtpd_tls_dcert_file",
        ParamKind::Str,
    ),
    p("smtpd_tls_eccert_file", "", ParamKind::Str),
    p(
        "smtpd_tls_eckey_file",
        "$smtpd_tls_eccert_file",
        ParamKind::Str,
    ),
    p("smtpd_tls_eecdh_grade", "auto", ParamKind::Str),
    p("smtpd_tls_exclude_ciphers", "", ParamKind::List),
    p("smtpd_tls_fingerprint_digest", "sha256", ParamKind::Str),
    p("smtpd_tls_key_file", "$smtpd_tls_cert_file", ParamKind::Str),
    p("smtpd_tls_loglevel", "0", ParamKind::Int),
    p("smtpd_tls_mandatory_ciphers", "medium", ParamKind::Str),
    p("smtpd_tls_mandatory_exclude_ciphers", "", ParamKind::List),
    p("smtpd_tls_mandatory_protocols", ">=TLSv1", ParamKind::List),
    p("smtpd_tls_protocols", ">=TLSv1", ParamKind::List),
    p("smtpd_tls_received_header", "no", ParamKind::Bool),
    p("smtpd_tls_req_ccert", "no", ParamKind::Bool),
    p("smtpd_tls_security_level", "", ParamKind::Str),
    p("smtpd_tls_session_cache_database", "", ParamKind::Str),
    p(
        "smtpd_tls_session_cache_timeout",
        "3600s",
        ParamKind::Time('s'),
    ),
    p("smtpd_tls_wrappermode", "no", ParamKind::Bool),
    p("smtpd_upstream_proxy_protocol", "", ParamKind::Str),
    p("smtpd_upstream_proxy_timeout", "5s", ParamKind::Time('s')),
    p("smtpd_use_tls", "no", ParamKind::Bool),
    p("smtputf8_enable", "yes", ParamKind::Bool),
    p("soft_bounce", "no", ParamKind::Bool),
    p("stale_lock_time", "500s", ParamKind::Time('s')),
    // "yes" when master runs the service under stress (at its process limit); set
    // only with `-o stress=yes` on a child's command line, never in main.cf.
    p("stress", "", ParamKind::Str),
    p("strict_8bitmime", "no", ParamKind::Bool),
    p("strict_rfc821_envelopes", "no", ParamKind::Bool),
    p("swap_bangpath", "yes", ParamKind::Bool),
    p("syslog_facility", "mail", ParamKind::Str),
    p("syslog_name", "rostfix", ParamKind::Str),
    p("tls_append_default_CA", "no", ParamKind::Bool),
    p("tls_random_source", "dev:/dev/urandom", ParamKind::Str),
    p("tls_server_sni_maps", "", ParamKind::List),
    p("transport_maps", "", ParamKind::List),
    p("transport_retry_time", "60s", ParamKind::Time('s')),
    p("trigger_timeout", "10s", ParamKind::Time('s')),
    p("undisclosed_recipients_header", "", ParamKind::Str),
    p("unknown_address_reject_code", "450", ParamKind::Int),
    p("unknown_client_reject_code", "450", ParamKind::Int),
    p("unknown_hostname_reject_code", "450", ParamKind::Int),
    p("unknown_local_recipient_reject_code", "550", ParamKind::Int),
    p("unknown_relay_recipient_reject_code", "550", ParamKind::Int),
    p("unknown_virtual_alias_reject_code", "550", ParamKind::Int),
    p("unknown_virtual_mailbox_reject_code", "550", ParamKind::Int),
    p("unverified_recipient_defer_code", "450", ParamKind::Int),
    p("unverified_recipient_reject_code", "450", ParamKind::Int),
    p("unverified_recipient_reject_reason", "", ParamKind::Str),
    p("unverified_recipient_tempfail_action", "defer_if_permit", ParamKind::Str),
    p("unverified_sender_defer_code", "450", ParamKind::Int),
    p("unverified_sender_reject_code", "450", ParamKind::Int),
    p("unverified_sender_reject_reason", "", ParamKind::Str),
    p("unverified_sender_tempfail_action", "defer_if_permit", ParamKind::Str),
    p("verp_delimiter_filter", "-=+", ParamKind::Str),
    p("virtual_alias_address_length_limit", "1000", ParamKind::Int),
    p(
        "virtual_alias_domains",
        "$virtual_alias_maps",
        ParamKind::List,
    ),
    p("virtual_alias_expansion_limit", "1000", ParamKind::Int),
    p("virtual_alias_maps", "$virtual_maps", ParamKind::List),
    p("virtual_alias_recursion_limit", "1000", ParamKind::Int),
    p("virtual_gid_maps", "", ParamKind::List),
    p("virtual_mailbox_base", "", ParamKind::Str),
    p(
        "virtual_mailbox_domains",
        "$virtual_mailbox_maps",
        ParamKind::List,
    ),
    p("virtual_mailbox_limit", "51200000", ParamKind::Int),
    p("virtual_mailbox_lock", "fcntl, dotlock", ParamKind::List),
    p("virtual_mailbox_maps", "", ParamKind::List),
    p("virtual_maps", "", ParamKind::List),
    p("virtual_minimum_uid", "100", ParamKind::Int),
    p("virtual_transport", "virtual", ParamKind::Str),
    p("virtual_uid_maps", "", ParamKind::List),
];

/// Looks a parameter up by name.
pub fn lookup_param(name: &str) -> Option<&'static ParamDef> {
    PARAMS
        .binary_search_by(|def| def.name.cmp(name))
        .ok()
        .map(|index| &PARAMS[index])
}

/// Parses a yes/no value (also true/false, any case).
pub fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("yes") || value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("no") || value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Parses a non-negative integer.
pub fn parse_int(value: &str) -> Option<i64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<i64>().ok()
}

/// Parses a time `N[smhdw]`; a bare number is in `default_unit`. Returns seconds.
pub fn parse_time(value: &str, default_unit: char) -> Option<u64> {
    let value = value.trim();
    let (digits, unit) = match value.char_indices().last() {
        Some((index, c)) if c.is_ascii_alphabetic() => (&value[..index], c),
        Some(_) => (value, default_unit),
        None => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let scale: u64 = match unit.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 7 * 86400,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// [`parse_time`] as a Duration: the one time parser, for daemons that read a time
/// from somewhere other than main.cf (qmgr's per-transport settings, say).
pub fn parse_duration(value: &str, default_unit: char) -> Option<std::time::Duration> {
    parse_time(value, default_unit).map(std::time::Duration::from_secs)
}

/// Checks an (expanded) value against a kind; `Err` says what was expected.
pub fn check_value(kind: ParamKind, value: &str) -> Result<(), String> {
    match kind {
        ParamKind::Str | ParamKind::List => Ok(()),
        ParamKind::Bool => parse_bool(value)
            .map(|_| ())
            .ok_or_else(|| "expected yes or no".to_string()),
        ParamKind::Int => parse_int(value)
            .map(|_| ())
            .ok_or_else(|| "expected a non-negative integer".to_string()),
        ParamKind::Time(unit) => parse_time(value, unit).map(|_| ()).ok_or_else(|| {
            format!(
                "expected a time: a number with an optional unit s, m, h, d or w (default {unit})"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in PARAMS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn defaults_are_valid_for_their_kind() {
        for def in PARAMS {
            if !def.default.contains('$') {
                assert!(check_value(def.kind, def.default).is_ok(), "{}", def.name);
            }
        }
    }

    #[test]
    fn lookup_finds_known_and_rejects_unknown() {
        assert_eq!(
            lookup_param("queue_directory").map(|d| d.default),
            Some("/var/spool/rostfix")
        );
        assert_eq!(
            lookup_param("2bounce_notice_recipient").map(|d| d.default),
            Some("postmaster")
        );
        assert_eq!(
            lookup_param("maximal_queue_lifetime").map(|d| d.kind),
            Some(ParamKind::Time('d'))
        );
        assert!(lookup_param("no_such_thing").is_none());
        assert!(lookup_param("").is_none());
    }

    #[test]
    fn brief_defaults() {
        let want = [
            (
                "mydestination",
                "$myhostname, localhost.$mydomain, localhost",
            ),
            ("mynetworks", "127.0.0.0/8 [::1]/128"),
            ("smtpd_banner", "$myhostname ESMTP $mail_name"),
            ("local_transport", "local:$myhostname"),
            ("max_idle", "100s"),
            ("delay_warning_time", "0h"),
            ("notify_classes", "resource, software"),
            ("home_mailbox", ""),
        ];
        for (name, default) in want {
            assert_eq!(
                lookup_param(name).map(|d| d.default),
                Some(default),
                "{name}"
            );
        }
    }

    #[test]
    fn values_parse() {
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_int("10240000"), Some(10_240_000));
        assert_eq!(parse_int("-1"), None);
        assert_eq!(parse_int("10k"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("99999999999999999999999"), None);
        assert_eq!(parse_time("100s", 's'), Some(100));
        assert_eq!(parse_time("5d", 's'), Some(5 * 86400));
        assert_eq!(parse_time("5", 'd'), Some(5 * 86400));
        assert_eq!(parse_time("2w", 's'), Some(14 * 86400));
        assert_eq!(parse_time("3m", 's'), Some(180));
        assert_eq!(parse_time("1h", 's'), Some(3600));
        assert_eq!(parse_time("s", 's'), None);
        assert_eq!(parse_time("10x", 's'), None);
        assert_eq!(parse_time("lots", 's'), None);
        assert_eq!(parse_time("", 's'), None);
        assert_eq!(parse_time("99999999999999999999w", 's'), None);
    }
}
