//! smtpd: the SMTP server. Started by master for each `smtpd` line of master.cf; serves
//! one client at a time on the listening sockets it inherits, writes accepted mail into
//! `incoming/` itself and wakes qmgr.
//!
//! Startup order matters: the configuration is read and checked BEFORE confinement
//! (main.cf is outside the chroot), then the process confines itself (chroot into
//! queue_directory, drop to mail_owner) and only then talks to any client. The TLS
//! certificate and key are loaded before confinement too; `rostfix reload` restarts
//! smtpd, which is how a renewed certificate is picked up.

#![deny(unsafe_code)]

use rostfix_service::manual::Manual;
use rostfix_service::{Daemon, Service, Shape, StartError};
use rostfix_smtpd::connection;
use rostfix_smtpd::settings::Settings;
use std::sync::Arc;

/// The text of `smtpd --help`.
const HELP: Manual = Manual {
    name: "smtpd - Rostfix SMTP server",
    synopsis: "smtpd -n NAME -t TYPE [-c] [-u] [-v] [-o name=value]...",
    description: "\
Receives mail over ESMTP (RFC 5321) on the listening sockets inherited from
master(8) and writes it into the incoming queue. Supports PIPELINING, SIZE, VRFY
(always 252, or off), ENHANCEDSTATUSCODES, 8BITMIME, DSN, SMTPUTF8, CHUNKING
(BDAT) and STARTTLS (RFC 3207, with
rustls; TLS 1.2 and 1.3 only), or implicit TLS with smtpd_tls_wrappermode=yes
(port 465). Only CR LF . CR LF ends message
data. AUTH (RFC 4954: PLAIN, LOGIN) through Dovecot's auth server or a
built-in passwd-file; Postfix's restriction lists decide who may send and
relay (by default: mynetworks and authenticated clients relay, others only
to local and relay_domains destinations). Not meant to be run by hand:
master starts it.",
    more_options: "\
Parameters used: myhostname, smtpd_banner, mydestination, mynetworks,
message_size_limit, smtpd_timeout, smtpd_per_record_deadline (both shrink
under stress=yes, which master passes at the process limit),
smtpd_recipient_limit, line_length_limit, hopcount_limit, smtpd_hard_error_limit, smtpd_junk_command_limit,
smtpd_tls_security_level (none, may, encrypt; or the legacy smtpd_use_tls and
smtpd_enforce_tls), smtpd_tls_cert_file, smtpd_tls_key_file,
smtpd_tls_wrappermode, smtpd_tls_protocols, smtpd_tls_mandatory_protocols,
smtpd_soft_error_limit, smtpd_error_sleep_time, header_size_limit,
disable_vrfy_command, smtputf8_enable, rostfix_requiretls_enable (REQUIRETLS,
RFC 8689, on TLS sessions), smtpd_forbid_bare_newline (default yes)
with _reject_code and _exclusions, smtpd_client_connection_count_limit,
smtpd_client_connection_rate_limit, smtpd_client_message_rate_limit,
smtpd_client_recipient_rate_limit, smtpd_client_auth_rate_limit (through
anvil(8)), smtpd_client_event_limit_exceptions, rostfix_smtpd_greet_pause.
Bulk mail (docs/bulk-sending.md): smtpd_authorized_verp_clients,
verp_delimiter_filter, default_verp_delimiters (XVERP),
rostfix_bulk_hygiene_checks and rostfix_bulk_hygiene_action (campaign mail
from mynetworks or after AUTH), rostfix_suppression_action = reject
(RCPT of a suppressed address refused with 550 5.1.1).
AUTH: smtpd_sasl_auth_enable, smtpd_sasl_type (dovecot, rostfix),
smtpd_sasl_path, smtpd_sasl_service, smtpd_sasl_authenticated_header,
smtpd_tls_auth_only, smtpd_sasl_security_options,
smtpd_sasl_tls_security_options. Session: smtpd_helo_required,
smtpd_forbidden_commands, smtpd_discard_ehlo_keywords,
smtpd_discard_ehlo_keyword_address_maps, smtpd_upstream_proxy_protocol (haproxy),
smtpd_upstream_proxy_timeout, smtpd_authorized_xclient_hosts,
smtpd_authorized_xforward_hosts, smtpd_tls_chain_files, tls_server_sni_maps,
smtpd_tls_received_header, smtpd_tls_loglevel. Restrictions: smtpd_client_restrictions,
smtpd_helo_restrictions, smtpd_sender_restrictions, smtpd_relay_restrictions,
smtpd_recipient_restrictions, smtpd_data_restrictions,
smtpd_end_of_data_restrictions, smtpd_delay_reject,
smtpd_reject_unlisted_recipient, smtpd_reject_unlisted_sender,
local_recipient_maps, relay_domains, rostfix_dns_servers, smtpd_restriction_classes,
smtpd_sender_login_maps, inet_interfaces (permit_inet_interfaces), and for
check_policy_service smtpd_policy_service_timeout, _max_idle, _max_ttl, _try_limit,
_retry_delay, _request_limit, _default_action, _policy_context;
smtpd_peername_lookup (the client's name: PTR plus forward confirmation),
unknown_client_reject_code, unknown_hostname_reject_code,
unknown_address_reject_code, maps_rbl_reject_code, default_rbl_reply,
rbl_reply_maps. See README (SMTP AUTH and restrictions).
Content inspection: header_checks, mime_header_checks, nested_header_checks,
body_checks, body_checks_size_limit, disable_mime_input_processing,
receive_override_options (docs/content-inspection.md).
Verification on receipt: rostfix_auth_verify, rostfix_auth_verify_timeout,
rostfix_public_suffix_list, rostfix_dmarc_reject_policy,
rostfix_dmarc_quarantine_policy, rostfix_dmarc_exception_maps, and the reject_spf_fail restriction
(docs/mail-auth.md). DKIM signing: rostfix_dkim_key_table, rostfix_dkim_signing_table,
rostfix_dkim_multiple_signatures (docs/dkim.md); ARC sealing of a listed list
manager's resubmissions: rostfix_arc_seal_resubmitted (docs/mail-auth.md).
See docs/smtpd-protocol.md.",
    exit_status: "0 when master stops it normally, 1 on a startup error.",
    see_also: "master(8), qmgr(8), rostconf(1), main.cf(5)",
};

fn main() {
    rostfix_service::run(Daemon {
        program: "smtpd",
        help: HELP,
        before_confine: |svc: &mut Service| load(svc),
        after_confine: |svc: &mut Service, (settings, tls_config): Loaded| {
            let service = svc.args.name.clone();
            // After confinement the working directory is queue_directory.
            rostfix_smtpd::metrics::start(std::path::Path::new("."));
            Ok(Shape::Single(Box::new(move |_svc, conn| {
                connection::handle(&settings, &service, tls_config.clone(), conn)
            })))
        },
    })
}

/// What is read before confinement: the settings and, when TLS is wanted and the files
/// load, the TLS server configuration.
type Loaded = (Settings, Option<Arc<rostfix_smtpd::TlsServer>>);

/// Reads and checks the settings and loads the TLS certificate: both live outside the
/// chroot.
fn load(svc: &Service) -> Result<Loaded, StartError> {
    let system_hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    let (settings, warnings) =
        Settings::from_config(&svc.config, system_hostname).map_err(StartError::daemon)?;
    for w in warnings {
        log::warn!("{w}");
    }
    // A missing or bad certificate is not fatal: STARTTLS is then simply not offered
    // (and with `encrypt`, mail is refused), as Postfix does.
    let tls_config = if settings.tls.wanted() {
        match settings.tls.load() {
            Ok(c) => Some(c),
            Err(e) => {
                log::warn!("cannot load TLS certificate and key: {e}; TLS is not available");
                None
            }
        }
    } else {
        None
    };
    Ok((settings, tls_config))
}

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
