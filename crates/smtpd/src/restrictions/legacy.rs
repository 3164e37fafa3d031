//! Restrictions Postfix still accepts from older configurations, with Postfix's
//! meaning, plus the few small ones that need nothing but the session:
//! reject_unknown_forward_client_hostname, reject_plaintext_session, permit_mx_backup,
//! sleep, permit_naked_ip_address (deprecated), reject_maps_rbl (deprecated: the
//! maps_rbl_domains lists as reject_rbl_client) and check_relay_domains (removed in
//! Postfix 2.2; it now acts as reject_unauth_destination, with a warning at start).

use super::config::RestrictionConfig;
use super::dns::Answer;
use super::dnsxl::{self, Dnsxl, DnsxlKind};
use super::eval::{fix_dsn, reply, Facts, Step};
use crate::client::NameStatus;
use std::net::IpAddr;
use std::time::Duration;

/// The longest `sleep` honoured: a typo (`sleep 3600`) must not park a process for an
/// hour while the client waits.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// reject_unknown_forward_client_hostname: the PTR name does not resolve to any
/// address (Postfix's forward_name_status); a forward lookup that gives other
/// addresses is a name that resolves, so a mismatch alone is no reason here.
pub(super) fn forward_client(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    let status = match f.reverse_name_status {
        NameStatus::Ok => match f.name_status {
            NameStatus::Ok | NameStatus::Forged => return Step::Go,
            other => other,
        },
        other => other,
    };
    let code = if status == NameStatus::Temp {
        450
    } else {
        rc.unknown_codes.client
    };
    Step::Reject(reply(
        code,
        &fix_dsn(code, "4.7.25"),
        format!(
            "Client host rejected: cannot find your hostname, [{}]",
            f.client_addr
        ),
    ))
}

/// reject_plaintext_session: `plaintext_reject_code` (450) 4.7.1 without TLS.
pub(super) fn plaintext_session(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    if f.session.encryption_protocol.is_some() {
        return Step::Go;
    }
    // 0: a configuration built without main.cf (tests); Postfix's default then.
    let code = match rc.plaintext_reject_code {
        0 => 450,
        code => code,
    };
    Step::Reject(reply(
        code,
        &fix_dsn(code, "4.7.1"),
        "Session encryption is required".to_string(),
    ))
}

/// permit_naked_ip_address: a HELO that is a bare IP address (no brackets).
pub(super) fn naked_ip_address(f: &Facts<'_>) -> Step {
    match f.helo {
        Some(h) if h.parse::<IpAddr>().is_ok() => Step::Permit,
        _ => Step::Go,
    }
}

/// reject_maps_rbl: each maps_rbl_domains list, as reject_rbl_client would check it.
pub(super) fn maps_rbl(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    for domain in &rc.maps_rbl_domains {
        let Ok(list) = Dnsxl::parse(DnsxlKind::RblClient, domain) else {
            continue;
        };
        match dnsxl::check(&list, f, rc.dns.as_deref(), rc) {
            Step::Go => {}
            decided => return decided,
        }
    }
    Step::Go
}

/// permit_mx_backup: the recipient domain lists one of our addresses among its MX
/// hosts (we are one of its mail hosts, so we accept mail for it). With
/// permit_mx_backup_networks set, every MX host's address must also be in those
/// networks (Postfix checks the primary MX hosts; see docs/smtpd-protocol.md).
pub(super) fn mx_backup(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    let (Some(rcpt), Some(dns)) = (f.recipient, rc.dns.as_ref()) else {
        return Step::Go;
    };
    let Some((_, domain)) = rcpt.rsplit_once('@') else {
        return Step::Go;
    };
    let Answer::Found(hosts) = dns.mx_hosts(domain) else {
        return Step::Go;
    };
    let mut ours = false;
    for host in hosts {
        for v6 in [false, true] {
            let Answer::Found(addrs) = dns.addresses(&host, v6) else {
                continue;
            };
            for ip in addrs {
                if !rc.mx_backup_networks.is_empty() && !rc.mx_backup_networks.contains(ip) {
                    return Step::Go;
                }
                ours |= rc.inet_interfaces.contains(&ip);
            }
        }
    }
    if ours {
        Step::Permit
    } else {
        Step::Go
    }
}

/// `sleep SECONDS`, at most [`MAX_SLEEP`].
pub(super) fn sleep(seconds: u64) -> Step {
    std::thread::sleep(Duration::from_secs(seconds).min(MAX_SLEEP));
    Step::Go
}
