//! The reject_unknown_* restrictions (Postfix's smtpd_check.c reject_unknown_client,
//! reject_unknown_reverse_name, reject_unknown_hostname, reject_unknown_mailhost):
//! the client's name as peer_name.rs found it, the HELO name's A/AAAA/MX records, and
//! the sender or recipient domain's MX/A/AAAA records. Permanent failures use the
//! unknown_{client,hostname,address}_reject_code parameters; temporary ones 450.

use super::config::RestrictionConfig;
use super::dns::{Answer, MailHost};
use super::eval::{fix_dsn, is_address_literal, reply, Facts, Step};
use crate::client::NameStatus;

/// The unknown_*_reject_code parameters and maps_rbl_reject_code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCodes {
    pub client: u16,
    pub hostname: u16,
    pub address: u16,
}

impl Default for UnknownCodes {
    fn default() -> UnknownCodes {
        UnknownCodes {
            client: 450,
            hostname: 450,
            address: 450,
        }
    }
}

impl UnknownCodes {
    /// Reads the parameters; an out-of-range code is a start-up error.
    pub fn from_config(cf: &rostfix_config::MainCf) -> Result<UnknownCodes, String> {
        let code = |name: &str| -> Result<u16, String> {
            let v = cf.get_int(name);
            u16::try_from(v)
                .ok()
                .filter(|c| (400..600).contains(c))
                .ok_or_else(|| format!("{name} = {v}: want a 4xx or 5xx reply code"))
        };
        Ok(UnknownCodes {
            client: code("unknown_client_reject_code")?,
            hostname: code("unknown_hostname_reject_code")?,
            address: code("unknown_address_reject_code")?,
        })
    }
}

fn client_reply(code: u16, enhanced: &str, text: &str, f: &Facts<'_>) -> Step {
    Step::Reject(reply(
        code,
        &fix_dsn(code, enhanced),
        format!("Client host rejected: {text}, [{}]", f.client_addr),
    ))
}

/// reject_unknown_client_hostname (and its old name reject_unknown_client).
pub(super) fn client(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    match f.name_status {
        NameStatus::Ok => Step::Go,
        NameStatus::Temp => client_reply(450, "4.7.25", "cannot find your hostname", f),
        NameStatus::Perm | NameStatus::Forged => client_reply(
            rc.unknown_codes.client,
            "4.7.25",
            "cannot find your hostname",
            f,
        ),
    }
}

/// reject_unknown_reverse_client_hostname.
pub(super) fn reverse_client(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    let text = "cannot find your reverse hostname";
    match f.reverse_name_status {
        NameStatus::Ok => Step::Go,
        NameStatus::Perm => client_reply(rc.unknown_codes.client, "4.7.1", text, f),
        NameStatus::Temp | NameStatus::Forged => client_reply(450, "4.7.1", text, f),
    }
}

/// reject_unknown_helo_hostname (and its old name reject_unknown_hostname).
pub(super) fn helo(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    let (Some(h), Some(dns)) = (f.helo, rc.dns.as_ref()) else {
        return Step::Go;
    };
    if h.starts_with('[') {
        // An address literal has no DNS name to find.
        return Step::Go;
    }
    let text = format!("<{h}>: Helo command rejected: Host not found");
    match dns.host_exists(h) {
        Answer::Found(()) => Step::Go,
        Answer::NotFound => {
            let code = rc.unknown_codes.hostname;
            Step::Reject(reply(code, &fix_dsn(code, "4.7.1"), text))
        }
        Answer::TempFail => Step::Reject(reply(450, "4.7.1", text)),
    }
}

/// reject_unknown_sender_domain / reject_unknown_recipient_domain.
pub(super) fn address(
    addr: Option<&str>,
    sender: bool,
    f: &Facts<'_>,
    rc: &RestrictionConfig,
) -> Step {
    let Some(a) = addr.filter(|a| !a.is_empty()) else {
        return Step::Go;
    };
    let Some((_, d)) = a.rsplit_once('@') else {
        return Step::Go;
    };
    if d.is_empty() || is_address_literal(d) || crate::policy::is_my_destination(d, f.mydestination)
    {
        return Step::Go;
    }
    let Some(dns) = rc.dns.as_ref() else {
        return Step::Go;
    };
    let (class, enhanced) = if sender {
        ("Sender address", "4.1.8")
    } else {
        ("Recipient address", "4.1.2")
    };
    match dns.mail_host(d) {
        MailHost::Found => Step::Go,
        MailHost::NullMx => {
            let (code, enh) = if sender {
                (550, "5.7.27")
            } else {
                (556, "5.1.10")
            };
            Step::Reject(reply(
                code,
                enh,
                format!("<{a}>: {class} rejected: Domain {d} does not accept mail (nullMX)"),
            ))
        }
        MailHost::NotFound => {
            let code = rc.unknown_codes.address;
            Step::Reject(reply(
                code,
                &fix_dsn(code, enhanced),
                format!("<{a}>: {class} rejected: Domain not found"),
            ))
        }
        MailHost::TempFail => Step::Reject(reply(
            450,
            enhanced,
            format!("<{a}>: {class} rejected: Domain not found"),
        )),
    }
}
