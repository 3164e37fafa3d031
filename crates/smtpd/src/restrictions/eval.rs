//! Evaluating one restriction list (Postfix `src/smtpd/smtpd_check.c`).
//!
//! A list is walked in order: `permit`-type results end the list (the next list still
//! runs), `reject`/`defer`-type results end the command with that reply, everything
//! else goes on; the end of the list permits. `warn_if_reject` turns the next
//! restriction's reject into a logged `reject_warning`. Lookup failures (tables, DNS)
//! give 4xx, never a silent permit.
//!
//! Replies follow Postfix's texts, e.g. `554 5.7.1 <u@x>: Relay access denied`,
//! `554 5.7.1 <u@x>: Recipient address rejected: Access denied`.

use super::access::{address_keys, client_keys, domain_keys, parse_action, Action};
use super::config::RestrictionConfig;
use super::login_maps::LoginVerdict;
use super::policy_request::{request_attributes, SessionFacts};
use super::{
    dnsxl, implicit_access, legacy, parse_list_in, server_access, unknown, AccessKind,
    ParseContext, Restriction,
};
use crate::client::NameStatus;
use crate::policy::check_relay;
use crate::policy::RelayVerdict;
use crate::reply::Reply;
use std::net::IpAddr;

/// Which list is being evaluated; decides the reply texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Client,
    Helo,
    Sender,
    Relay,
    Recipient,
    Data,
    EndOfData,
    /// smtpd_etrn_restrictions.
    Etrn,
}

impl Stage {
    pub(crate) fn class(self) -> &'static str {
        match self {
            Stage::Client => "Client host",
            Stage::Helo => "Helo command",
            Stage::Sender => "Sender address",
            Stage::Relay | Stage::Recipient => "Recipient address",
            Stage::Data => "Data command",
            Stage::EndOfData => "End-of-data",
            Stage::Etrn => "Etrn command",
        }
    }
}

/// What the restrictions know about the session.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub client_name: &'a str,
    /// The PTR name, unverified, or "unknown".
    pub reverse_client_name: &'a str,
    pub name_status: NameStatus,
    pub reverse_name_status: NameStatus,
    pub client_addr: String,
    pub client_ip: Option<IpAddr>,
    /// `name[addr]`.
    pub client_log: String,
    pub helo: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub recipient: Option<&'a str>,
    /// The client is in mynetworks.
    pub mynetworks: bool,
    pub sasl_username: Option<&'a str>,
    /// Every local domain: mydestination and our interfaces' `[address]` literals.
    pub mydestination: &'a [String],
    /// What policy servers and a few restrictions see besides (policy_request.rs).
    pub session: SessionFacts<'a>,
}

/// The outcome of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A permit-type restriction matched.
    Permit,
    /// The list ran out (also a permit).
    Dunno,
    Reject(Reply),
}

/// Something to log besides the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// warn_if_reject: the reply that would have been sent.
    RejectWarning(Reply),
    /// An access table's WARN.
    Warn(String),
    /// defer_if_permit (or a table's DEFER_IF_PERMIT): a permit at the end of the
    /// check becomes this reply. Only the first is kept, as in Postfix.
    DeferIfPermit(Reply),
    /// defer_if_reject: a later 5xx reject becomes this reply.
    DeferIfReject(Reply),
    /// An access table or policy server's PREPEND: a header for the message.
    Prepend(String),
    /// HOLD, DISCARD, FILTER, REDIRECT or BCC for the message (queue_actions.rs).
    Queue(super::queue_actions::Triggered),
}

/// `NNN X.Y.Z text` as one reply (the enhanced code may come from a table).
pub fn reply(code: u16, enhanced: &str, text: String) -> Reply {
    Reply::plain(code, vec![format!("{enhanced} {text}")])
}

fn temp_fail(name: &str) -> Reply {
    reply(451, "4.3.0", format!("<{name}>: Temporary lookup failure"))
}

/// The enhanced status code with its class made to agree with the reply code, as
/// Postfix's smtpd_check_reject does (`550` with `4.7.1` gives `5.7.1`).
pub(super) fn fix_dsn(code: u16, enhanced: &str) -> String {
    let class = if code >= 500 { '5' } else { '4' };
    match enhanced.split_once('.') {
        Some((_, rest)) => format!("{class}.{rest}"),
        None => enhanced.to_string(),
    }
}

/// One step's result inside the walk.
pub(super) enum Step {
    Go,
    Permit,
    Reject(Reply),
}

/// Evaluates `list` for `stage`. Notes (warnings) are appended to `notes`.
pub fn evaluate(
    list: &[Restriction],
    stage: Stage,
    facts: &Facts<'_>,
    rc: &RestrictionConfig,
    notes: &mut Vec<Note>,
) -> Verdict {
    evaluate_depth(list, stage, facts, rc, notes, 0)
}

fn evaluate_depth(
    list: &[Restriction],
    stage: Stage,
    facts: &Facts<'_>,
    rc: &RestrictionConfig,
    notes: &mut Vec<Note>,
    depth: u32,
) -> Verdict {
    let mut warn = false;
    for r in list {
        if matches!(r, Restriction::WarnIfReject) {
            warn = true;
            continue;
        }
        let step = one(r, stage, facts, rc, notes, depth);
        match step {
            Step::Go => {}
            Step::Permit => return Verdict::Permit,
            Step::Reject(reply) if warn => notes.push(Note::RejectWarning(reply)),
            Step::Reject(reply) => return Verdict::Reject(defer_instead(reply, notes)),
        }
        warn = false;
    }
    Verdict::Dunno
}

/// Nested restriction lists (classes, access table results) stop here: Postfix's
/// limit, so a class that names itself ends in a 451, not a stack overflow.
pub const MAX_DEPTH: u32 = 100;

/// A 5xx reject after a defer_if_reject becomes that deferral (Postfix's
/// smtpd_check_reject).
fn defer_instead(reply: Reply, notes: &[Note]) -> Reply {
    if !reply.log_text().starts_with('5') {
        return reply;
    }
    notes
        .iter()
        .find_map(|n| match n {
            Note::DeferIfReject(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap_or(reply)
}

fn server_config_error() -> Step {
    Step::Reject(reply(
        451,
        "4.3.5",
        "Server configuration error".to_string(),
    ))
}

/// The name a reply shows in `<...>` for this stage.
fn reply_name<'a>(stage: Stage, f: &'a Facts<'_>) -> std::borrow::Cow<'a, str> {
    match stage {
        Stage::Client => f.client_log.as_str().into(),
        Stage::Helo => f.helo.unwrap_or("").into(),
        Stage::Sender => f.sender.unwrap_or("").into(),
        Stage::Relay | Stage::Recipient => f.recipient.unwrap_or("").into(),
        Stage::Data => "DATA".into(),
        Stage::EndOfData => "END-OF-MESSAGE".into(),
        Stage::Etrn => f.session.etrn_domain.unwrap_or("").into(),
    }
}

fn one(
    r: &Restriction,
    stage: Stage,
    f: &Facts<'_>,
    rc: &RestrictionConfig,
    notes: &mut Vec<Note>,
    depth: u32,
) -> Step {
    let name = reply_name(stage, f);
    let class = stage.class();
    match r {
        Restriction::Permit => Step::Permit,
        Restriction::Reject => Step::Reject(reply(
            554,
            "5.7.1",
            format!("<{name}>: {class} rejected: Access denied"),
        )),
        Restriction::Defer => Step::Reject(reply(
            450,
            "4.7.1",
            format!("<{name}>: {class} rejected: Try again later"),
        )),
        Restriction::WarnIfReject => Step::Go,
        Restriction::PermitMynetworks => permit_if(f.mynetworks),
        Restriction::PermitSaslAuthenticated => permit_if(f.sasl_username.is_some()),
        Restriction::PermitAuthDestination
        | Restriction::RejectUnauthDestination
        | Restriction::CheckRelayDomains
        | Restriction::DeferUnauthDestination => {
            let Some(rcpt) = f.recipient else {
                return Step::Go;
            };
            let auth = match auth_destination(rcpt, f.mydestination, rc) {
                Ok(a) => a,
                Err(()) => return Step::Reject(temp_fail(rcpt)),
            };
            match (r, auth) {
                (Restriction::PermitAuthDestination, true) => Step::Permit,
                (Restriction::RejectUnauthDestination | Restriction::CheckRelayDomains, false) => {
                    Step::Reject(reply(
                        554,
                        "5.7.1",
                        format!("<{rcpt}>: Relay access denied"),
                    ))
                }
                (Restriction::DeferUnauthDestination, false) => Step::Reject(reply(
                    454,
                    "4.7.1",
                    format!("<{rcpt}>: Relay access denied"),
                )),
                _ => Step::Go,
            }
        }
        Restriction::RejectNonFqdnSender => non_fqdn_address(f.sender, "Sender address"),
        Restriction::RejectNonFqdnRecipient => non_fqdn_address(f.recipient, "Recipient address"),
        Restriction::RejectNonFqdnHelo => match f.helo {
            Some(h) if !is_address_literal(h) && (!h.contains('.') || !valid_hostname(h)) => {
                Step::Reject(reply(
                    504,
                    "5.5.2",
                    format!("<{h}>: Helo command rejected: need fully-qualified hostname"),
                ))
            }
            _ => Step::Go,
        },
        Restriction::RejectInvalidHelo => match f.helo {
            Some(h) if !is_address_literal(h) && !valid_hostname(h) => Step::Reject(reply(
                501,
                "5.5.2",
                format!("<{h}>: Helo command rejected: Invalid name"),
            )),
            _ => Step::Go,
        },
        Restriction::RejectUnknownSenderDomain => unknown::address(f.sender, true, f, rc),
        Restriction::RejectUnknownRecipientDomain => unknown::address(f.recipient, false, f, rc),
        Restriction::RejectUnlistedRecipient => unlisted(f, rc),
        Restriction::RejectSpfFail => super::spf::reject_fail(f, rc),
        Restriction::CheckAccess { kind, table } => {
            let (keys, what) = match kind {
                AccessKind::Client => (
                    client_keys(f.client_name, &f.client_addr),
                    f.client_log.clone(),
                ),
                AccessKind::ReverseClient => (
                    client_keys(f.reverse_client_name, &f.client_addr),
                    f.client_log.clone(),
                ),
                AccessKind::Helo => match f.helo {
                    Some(h) => (domain_keys(h), h.to_string()),
                    None => return Step::Go,
                },
                AccessKind::Sender => match f.sender {
                    // smtpd_null_access_lookup_key
                    Some("") => (vec!["<>".to_string()], String::new()),
                    Some(s) => (address_keys(s), s.to_string()),
                    None => return Step::Go,
                },
                AccessKind::Recipient => match f.recipient {
                    Some(rcpt) => (address_keys(rcpt), rcpt.to_string()),
                    None => return Step::Go,
                },
                AccessKind::Etrn => match f.session.etrn_domain {
                    Some(d) => (domain_keys(d), d.to_string()),
                    None => return Step::Go,
                },
            };
            let keys = if table.is_pattern() {
                keys.into_iter().take(1).collect()
            } else {
                keys
            };
            let access_class = match kind {
                AccessKind::Client | AccessKind::ReverseClient => "Client host",
                AccessKind::Helo => "Helo command",
                AccessKind::Sender => "Sender address",
                AccessKind::Recipient => "Recipient address",
                AccessKind::Etrn => "Etrn command",
            };
            let ctx = Ctx {
                stage,
                f,
                rc,
                depth,
            };
            table_step(table.as_ref(), &keys, &what, access_class, &ctx, notes).unwrap_or(Step::Go)
        }
        Restriction::StageAccess(table) => match implicit_access::kind_for(stage) {
            Some(kind) => one(
                &Restriction::CheckAccess {
                    kind,
                    table: table.clone(),
                },
                stage,
                f,
                rc,
                notes,
                depth,
            ),
            None => {
                log::warn!(
                    "{}",
                    implicit_access::no_default_warning(stage, table.spec())
                );
                server_config_error()
            }
        },
        Restriction::RejectUnknownClient => unknown::client(f, rc),
        Restriction::RejectUnknownReverseClient => unknown::reverse_client(f, rc),
        Restriction::RejectUnknownForwardClient => legacy::forward_client(f, rc),
        Restriction::RejectPlaintextSession => legacy::plaintext_session(f, rc),
        Restriction::PermitMxBackup => legacy::mx_backup(f, rc),
        Restriction::Sleep(seconds) => legacy::sleep(*seconds),
        Restriction::PermitNakedIpAddress => legacy::naked_ip_address(f),
        Restriction::RejectMapsRbl => legacy::maps_rbl(f, rc),
        Restriction::RejectUnknownHelo => unknown::helo(f, rc),
        Restriction::Dnsxl(x) => dnsxl::check(x, f, rc.dns.as_deref(), rc),
        Restriction::ServerAccess(sa) => {
            let ctx = Ctx {
                stage,
                f,
                rc,
                depth,
            };
            server_access::check(sa, f, rc.dns.as_deref(), &mut |keys, what, class| {
                table_step(sa.table.as_ref(), keys, what, class, &ctx, notes)
            })
        }
        Restriction::Unverified(name) => {
            super::verify::check(*name == "reject_unverified_sender", f, &rc.verify, notes)
        }
        Restriction::CheckPolicyService(client) => {
            let attrs = request_attributes(f, &client.spec.policy_context);
            let borrowed: Vec<(&str, String)> = attrs.into_iter().collect();
            let action = match client.query(&borrowed) {
                Ok(a) => a,
                Err(e) => {
                    log::warn!("{}: {e}; using default_action", client.spec.name);
                    client.spec.default_action.clone()
                }
            };
            let table = client.spec.name.as_str();
            access_result(&action, &name, class, table, stage, f, rc, notes, depth)
        }
        Restriction::Class(cname) => {
            let Some(list) = rc.classes.get(&cname.to_ascii_lowercase()) else {
                log::warn!("restriction class {cname} is not defined");
                return server_config_error();
            };
            if depth >= MAX_DEPTH {
                log::warn!("restriction class {cname} causes unreasonable recursion");
                return server_config_error();
            }
            match evaluate_depth(list, stage, f, rc, notes, depth + 1) {
                Verdict::Permit => Step::Permit,
                Verdict::Dunno => Step::Go,
                Verdict::Reject(r) => Step::Reject(r),
            }
        }
        Restriction::SenderLoginMismatch(which) => {
            let Some(sender) = f.sender.filter(|s| !s.is_empty()) else {
                return Step::Go;
            };
            match rc.sender_login.check(*which, sender, f.sasl_username) {
                LoginVerdict::Ok => Step::Go,
                LoginVerdict::NotOwned => Step::Reject(reply(
                    553,
                    "5.7.1",
                    format!(
                        "<{sender}>: Sender address rejected: not owned by user {}",
                        f.sasl_username.unwrap_or("")
                    ),
                )),
                LoginVerdict::NotLoggedIn => Step::Reject(reply(
                    553,
                    "5.7.1",
                    format!("<{sender}>: Sender address rejected: not logged in"),
                )),
                LoginVerdict::LookupFailed => Step::Reject(temp_fail(sender)),
            }
        }
        Restriction::CheckSaslAccess(table) => {
            let Some(user) = f.sasl_username else {
                return Step::Go;
            };
            match table.lookup(user) {
                Ok(None) => Step::Go,
                Ok(Some(value)) => {
                    let sane: String = user
                        .chars()
                        .map(|c| if c.is_control() { '_' } else { c })
                        .collect();
                    access_result(
                        &value,
                        &sane,
                        "SASL login name",
                        table.spec(),
                        stage,
                        f,
                        rc,
                        notes,
                        depth,
                    )
                }
                Err(e) => {
                    log::warn!("{}: table lookup error for {user}: {e}", table.spec());
                    Step::Reject(temp_fail(user))
                }
            }
        }
        Restriction::RejectUnlistedSender => unlisted_sender(f, rc),
        Restriction::RejectMultiRecipientBounce => {
            // At RCPT the count is of recipients before this one.
            let limit = usize::from(f.session.protocol_state != "RCPT");
            if f.sender == Some("") && f.session.recipient_count > limit {
                Step::Reject(reply(
                    550,
                    "5.5.3",
                    format!("<{name}>: {class} rejected: Multi-recipient bounce"),
                ))
            } else {
                Step::Go
            }
        }
        Restriction::PermitInetInterfaces => permit_if(
            f.client_ip
                .is_some_and(|ip| rc.inet_interfaces.contains(&ip)),
        ),
        Restriction::RejectUnauthPipelining => {
            if f.session.ill_pipelining {
                Step::Reject(reply(
                    503,
                    "5.5.0",
                    format!("<{name}>: {class} rejected: Improper use of SMTP command pipelining"),
                ))
            } else {
                Step::Go
            }
        }
        Restriction::CheckCcertAccess(table) => {
            let Some(cert) = f.session.ccert else {
                return Step::Go;
            };
            let ctx = Ctx {
                stage,
                f,
                rc,
                depth,
            };
            // Each key on its own, so a DUNNO for the certificate still lets its
            // key's entry decide (Postfix's search order: cert, then pubkey).
            for key in [&cert.cert_fingerprint, &cert.pkey_fingerprint] {
                if key.is_empty() {
                    continue;
                }
                let keys = [key.clone()];
                match table_step(
                    table.as_ref(),
                    &keys,
                    &cert.subject_cn,
                    "Client certificate",
                    &ctx,
                    notes,
                ) {
                    None | Some(Step::Go) => continue,
                    Some(step) => return step,
                }
            }
            Step::Go
        }
        Restriction::PermitTlsClientcerts { all } => {
            let Some(cert) = f.session.ccert else {
                return Step::Go;
            };
            if *all && cert.trusted {
                return Step::Permit;
            }
            // Fingerprints match whether or not a CA vouches for the certificate.
            for key in [&cert.pkey_fingerprint, &cert.cert_fingerprint] {
                if key.is_empty() {
                    continue;
                }
                for table in &rc.relay_clientcerts.0 {
                    match table.lookup(key) {
                        Ok(None) => {}
                        Ok(Some(_)) => return Step::Permit,
                        Err(e) => {
                            log::warn!(
                                "relay_clientcerts: lookup error for fingerprint '{key}': {e}"
                            );
                            return Step::Reject(temp_fail(&name));
                        }
                    }
                }
            }
            Step::Go
        }
        Restriction::DeferIfPermit => {
            defer_if_permit(
                notes,
                format!("<{name}>: {class} rejected: defer_if_permit requested"),
                "4.7.1",
            );
            Step::Go
        }
        Restriction::DeferIfReject => {
            defer_if_reject(
                notes,
                format!("<{name}>: {class} rejected: defer_if_reject requested"),
                "4.7.1",
            );
            Step::Go
        }
    }
}

/// What a table hit needs to be evaluated in place.
struct Ctx<'c, 'f> {
    stage: Stage,
    f: &'c Facts<'f>,
    rc: &'c RestrictionConfig,
    depth: u32,
}

/// Looks `keys` up in order; the first hit decides (access(5) semantics), None when
/// no key is in the table. A lookup error answers 4xx, never a silent permit.
fn table_step(
    table: &dyn rostfix_maps::Map,
    keys: &[String],
    what: &str,
    class: &str,
    ctx: &Ctx<'_, '_>,
    notes: &mut Vec<Note>,
) -> Option<Step> {
    for k in keys {
        match table.lookup(k) {
            Ok(None) => continue,
            Ok(Some(value)) => {
                return Some(access_result(
                    &value,
                    what,
                    class,
                    table.spec(),
                    ctx.stage,
                    ctx.f,
                    ctx.rc,
                    notes,
                    ctx.depth,
                ))
            }
            Err(e) => {
                log::warn!("{}: table lookup error for {k}: {e}", table.spec());
                return Some(Step::Reject(temp_fail(what)));
            }
        }
    }
    None
}

/// Remembers the first defer_if_permit reply (450, Postfix's access_map_defer_code).
fn defer_if_permit(notes: &mut Vec<Note>, text: String, enhanced: &str) {
    if !notes.iter().any(|n| matches!(n, Note::DeferIfPermit(_))) {
        notes.push(Note::DeferIfPermit(reply(450, enhanced, text)));
    }
}

/// Remembers the first defer_if_reject reply.
fn defer_if_reject(notes: &mut Vec<Note>, text: String, enhanced: &str) {
    if !notes.iter().any(|n| matches!(n, Note::DeferIfReject(_))) {
        notes.push(Note::DeferIfReject(reply(450, enhanced, text)));
    }
}

/// reject_unlisted_sender: a sender in one of our local domains that the local
/// recipient tables do not know (Postfix's check_sender_rcpt_maps for the local class).
fn unlisted_sender(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    match f.sender.filter(|s| !s.is_empty()) {
        Some(sender) => unlisted_local(sender, "Sender address", "5.1.0", f, rc),
        None => Step::Go,
    }
}

/// An address of one of our local domains that local_recipient_maps does not know:
/// `550 DSN <addr>: CLASS rejected: User unknown in local recipient table`; a table
/// that fails answers 4xx. Routed local parts are not ours to judge.
fn unlisted_local(
    addr: &str,
    class: &str,
    dsn: &str,
    f: &Facts<'_>,
    rc: &RestrictionConfig,
) -> Step {
    let (local, domain) = crate::address::split_mailbox(addr);
    let is_local = match domain {
        None => true,
        Some(d) => crate::policy::is_my_destination(d, f.mydestination),
    };
    if local.contains(['%', '!', '@']) {
        return Step::Go;
    }
    if !is_local {
        return match domain {
            Some(d) => unlisted_elsewhere(addr, d, class, dsn, rc),
            None => Step::Go,
        };
    }
    match rc.local.known(local, domain) {
        Ok(true) => Step::Go,
        Ok(false) => Step::Reject(reply(
            550,
            dsn,
            format!("<{addr}>: {class} rejected: User unknown in local recipient table"),
        )),
        Err(e) => {
            log::warn!("local_recipient_maps lookup error for {addr}: {e}");
            Step::Reject(temp_fail(addr))
        }
    }
}

/// The same for an address outside the local domains: virtual alias, virtual mailbox
/// and relay recipient tables (unlisted.rs); canonical and virtual alias keys vouch
/// for an address as they do for local ones.
fn unlisted_elsewhere(
    addr: &str,
    domain: &str,
    class: &str,
    dsn: &str,
    rc: &RestrictionConfig,
) -> Step {
    let lower = addr.to_lowercase();
    let domain = domain.to_lowercase();
    let verdict = rc
        .class_tables
        .check(&lower, &domain, |d| rc.relay_domains.matches(d));
    match verdict {
        Ok(super::unlisted::Verdict::Known) => Step::Go,
        Ok(super::unlisted::Verdict::Unknown(table)) => match rc.local.mapped(&lower) {
            Ok(true) => Step::Go,
            Ok(false) => Step::Reject(reply(
                550,
                dsn,
                format!("<{addr}>: {class} rejected: User unknown in {table}"),
            )),
            Err(e) => {
                log::warn!("address mapping lookup error for {addr}: {e}");
                Step::Reject(temp_fail(addr))
            }
        },
        Err(e) => {
            log::warn!("recipient table lookup error for {addr}: {e}");
            Step::Reject(temp_fail(addr))
        }
    }
}

fn permit_if(cond: bool) -> Step {
    if cond {
        Step::Permit
    } else {
        Step::Go
    }
}

#[allow(clippy::too_many_arguments)]
fn access_result(
    value: &str,
    what: &str,
    class: &str,
    table: &str,
    stage: Stage,
    f: &Facts<'_>,
    rc: &RestrictionConfig,
    notes: &mut Vec<Note>,
    depth: u32,
) -> Step {
    match parse_action(value) {
        Action::Permit => Step::Permit,
        Action::Dunno => Step::Go,
        Action::Reject(text) => Step::Reject(reply(
            554,
            "5.7.1",
            format!(
                "<{what}>: {class} rejected: {}",
                text.as_deref().unwrap_or("Access denied")
            ),
        )),
        Action::Defer(text) => Step::Reject(reply(
            450,
            "4.7.1",
            format!(
                "<{what}>: {class} rejected: {}",
                text.as_deref().unwrap_or("Access denied")
            ),
        )),
        Action::Code {
            code,
            enhanced,
            text,
        } => {
            let default_enh = if code >= 500 { "5.7.1" } else { "4.7.1" };
            Step::Reject(reply(
                code,
                enhanced.as_deref().unwrap_or(default_enh),
                format!(
                    "<{what}>: {class} rejected: {}",
                    text.as_deref().unwrap_or("Access denied")
                ),
            ))
        }
        Action::Warn(text) => {
            notes.push(Note::Warn(text));
            Step::Go
        }
        Action::DeferIfPermit(text) => {
            let (enh, text) = enhanced_or(text, "4.7.1");
            defer_if_permit(
                notes,
                format!(
                    "<{what}>: {class} rejected: {}",
                    text.unwrap_or("Service unavailable".into())
                ),
                &enh,
            );
            Step::Go
        }
        Action::DeferIfReject(text) => {
            let (enh, text) = enhanced_or(text, "4.7.1");
            defer_if_reject(
                notes,
                format!(
                    "<{what}>: {class} rejected: {}",
                    text.unwrap_or("Service unavailable".into())
                ),
                &enh,
            );
            Step::Go
        }
        Action::Prepend(header) => {
            if stage == Stage::EndOfData {
                log::warn!("access table: action PREPEND must be used before smtpd_end_of_data_restrictions");
            } else if !is_header(&header) {
                log::warn!("access table entry \"PREPEND {header}\" requires header: text");
            } else {
                notes.push(Note::Prepend(header));
            }
            Step::Go
        }
        Action::Queue(kind, text) => {
            super::queue_actions::step(kind, &text, value.trim(), what, class, table, f, rc, notes)
        }
        Action::Restrictions(text) => {
            if text.contains(':') {
                log::warn!("access table has entry with lookup table: {text}");
                log::warn!("do not specify lookup tables inside SMTPD access maps");
                log::warn!("define a restriction class and specify its name instead.");
                return server_config_error();
            }
            let policy = super::policy_service::PolicySpec::builtin();
            let ctx = ParseContext {
                open: &|spec| {
                    Err(format!(
                        "table {spec} inside an access table result is not supported"
                    ))
                },
                classes: &rc.class_names,
                policy: &policy,
            };
            // Nested lists are bounded so a table cannot make us recurse forever.
            let nested = match parse_list_in("access table result", &text, &ctx) {
                Ok(l) if depth < MAX_DEPTH => l,
                Ok(_) | Err(_) => {
                    log::warn!("access table result {text:?} for {what} is not valid here");
                    return Step::Reject(reply(
                        451,
                        "4.3.5",
                        "Server configuration error".to_string(),
                    ));
                }
            };
            match evaluate_depth(&nested, stage, f, rc, notes, depth + 1) {
                Verdict::Permit => Step::Permit,
                Verdict::Dunno => Step::Go,
                Verdict::Reject(r) => Step::Reject(r),
            }
        }
    }
}

/// `4.7.2 text` -> ("4.7.2", Some("text")); else the default and the text as is.
fn enhanced_or(text: Option<String>, default: &str) -> (String, Option<String>) {
    let Some(t) = text else {
        return (default.to_string(), None);
    };
    let (first, rest) = t.split_once(' ').unwrap_or((t.as_str(), ""));
    let parts: Vec<&str> = first.split('.').collect();
    if parts.len() == 3
        && parts[0] == "4"
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        let rest = rest.trim();
        (
            first.to_string(),
            (!rest.is_empty()).then(|| rest.to_string()),
        )
    } else {
        (default.to_string(), Some(t))
    }
}

/// `Name: value` with a name of printable ASCII other than the colon.
fn is_header(text: &str) -> bool {
    match text.split_once(':') {
        Some((name, _)) => {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        }
        None => false,
    }
}

/// Local, a virtual alias or mailbox domain, or in relay_domains (Postfix's
/// permit_auth_destination); routed local parts are always foreign.
pub fn auth_destination(
    rcpt: &str,
    mydestination: &[String],
    rc: &RestrictionConfig,
) -> Result<bool, ()> {
    match check_relay(rcpt, false, mydestination) {
        RelayVerdict::Local => Ok(true),
        _ => {
            let (local, domain) = crate::address::split_mailbox(rcpt);
            if local.contains(['%', '!', '@']) {
                return Ok(false);
            }
            let Some(d) = domain.filter(|d| !d.is_empty()) else {
                return Ok(false);
            };
            // Postfix's order: final delivery (the virtual classes), then relay_domains.
            if rc.virtual_domains.matches(d).map_err(|e| {
                log::warn!("{e}");
            })? {
                return Ok(true);
            }
            rc.relay_domains.matches(d).map_err(|e| {
                log::warn!("relay_domains lookup error for {d}: {e}");
            })
        }
    }
}

fn non_fqdn_address(addr: Option<&str>, class: &str) -> Step {
    let Some(a) = addr.filter(|a| !a.is_empty()) else {
        return Step::Go;
    };
    match a.rsplit_once('@') {
        Some((_, d))
            if !is_address_literal(d)
                && (!d.trim_end_matches('.').contains('.') || !valid_hostname(d)) =>
        {
            Step::Reject(reply(
                504,
                "5.5.2",
                format!("<{a}>: {class} rejected: need fully-qualified address"),
            ))
        }
        _ => Step::Go,
    }
}

fn unlisted(f: &Facts<'_>, rc: &RestrictionConfig) -> Step {
    match f.recipient {
        Some(rcpt) => unlisted_local(rcpt, "Recipient address", "5.1.1", f, rc),
        None => Step::Go,
    }
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
pub fn is_address_literal(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    match inner.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("IPv6:") => {
            inner[5..].parse::<std::net::Ipv6Addr>().is_ok()
        }
        _ => inner.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

/// Postfix's valid_hostname: labels of letters, digits, `-` and `_`, not starting or
/// ending with `-`, at most 63 characters; at most 255 in all; not all-numeric.
pub fn valid_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.is_empty() || h.len() > 255 {
        return false;
    }
    let mut all_numeric = true;
    for label in h.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
        if !label.bytes().all(|b| b.is_ascii_digit()) {
            all_numeric = false;
        }
    }
    !all_numeric
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
