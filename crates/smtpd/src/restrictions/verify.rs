//! reject_unverified_recipient and reject_unverified_sender (Postfix's
//! smtpd_check.c reject_unverified_address): ask the verify service
//! (`private/verify`, docs/ipc.md) about the address, polling a few times while a
//! probe is under way, and map its answer to a reply:
//!
//! | verify says | reply |
//! |---|---|
//! | deliverable | nothing (the next restriction decides) |
//! | unknown (probe sent), deferred | `unverified_*_defer_code`, "unverified address: TEXT" |
//! | undeliverable | `unverified_*_reject_code`; 4xx: "unverified address: TEXT", 5xx: "undeliverable address: TEXT" |
//! | no answer from verify | 450 "address verification problem" |
//!
//! A 4xx result follows `unverified_*_tempfail_action`: `defer_if_permit` (the
//! default) defers only if the rest of the list would permit, `defer` at once.
//! Partial: under warn_if_reject, Postfix logs a would-be 4xx instead of remembering
//! a defer_if_permit; here the defer_if_permit is remembered as without it.

use super::eval::{fix_dsn, reply, Facts, Note, Step};
use rostfix_proto::{verify_call, VerifyReply, VerifyRequest, VerifyStatus};
use std::path::PathBuf;
use std::time::Duration;

/// How long smtpd waits for one answer from the verify service.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The reply settings of one address class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyCodes {
    pub defer_code: u16,
    pub reject_code: u16,
    /// unverified_*_reject_reason: replaces verify's text in 4xx/5xx replies.
    pub reject_reason: String,
    /// unverified_*_tempfail_action = defer_if_permit (else defer).
    pub defer_if_permit: bool,
}

impl Default for VerifyCodes {
    fn default() -> VerifyCodes {
        VerifyCodes {
            defer_code: 450,
            reject_code: 450,
            reject_reason: String::new(),
            defer_if_permit: true,
        }
    }
}

/// Everything the two restrictions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySettings {
    pub recipient: VerifyCodes,
    pub sender: VerifyCodes,
    /// address_verify_poll_count: queries while the answer is "unknown".
    pub poll_count: u32,
    /// address_verify_poll_delay: the pause between them.
    pub poll_delay: Duration,
    /// queue_directory as smtpd sees it ("." after confine).
    pub root: PathBuf,
    /// address_verify_sender, bare and qualified: a sender equal to it is a probe
    /// (ours or a peer's) and is not verified, or probes would chase each other.
    pub probe_senders: Vec<String>,
}

impl Default for VerifySettings {
    fn default() -> VerifySettings {
        VerifySettings {
            recipient: VerifyCodes::default(),
            sender: VerifyCodes::default(),
            poll_count: 3,
            poll_delay: Duration::from_secs(3),
            root: PathBuf::from("."),
            probe_senders: Vec::new(),
        }
    }
}

impl VerifySettings {
    /// Reads the parameters; a bad reply code or tempfail action is a start-up error.
    pub fn from_config(cf: &rostfix_config::MainCf) -> Result<VerifySettings, String> {
        // Postfix's ranges: 200..499 for the defer codes, 200..599 for the reject
        // codes; a 2xx code lets the address through (smtpd_check.c).
        let code = |name: &str| -> Result<u16, String> {
            let v = cf.get_int(name);
            let max = if name.ends_with("_defer_code") {
                500
            } else {
                600
            };
            u16::try_from(v)
                .ok()
                .filter(|c| (200..max).contains(c))
                .ok_or_else(|| format!("{name} = {v}: want a reply code from 200 to {}", max - 1))
        };
        let action = |name: &str| -> Result<bool, String> {
            match cf.get(name).trim() {
                "defer_if_permit" => Ok(true),
                "defer" => Ok(false),
                other => Err(format!("{name} = {other}: want defer_if_permit or defer")),
            }
        };
        // Literal names, one set per class, so each parameter is findable by name.
        let codes = |[defer, reject, reason, tempfail]: [&str; 4]| -> Result<VerifyCodes, String> {
            Ok(VerifyCodes {
                defer_code: code(defer)?,
                reject_code: code(reject)?,
                reject_reason: cf.get(reason),
                defer_if_permit: action(tempfail)?,
            })
        };
        let sender = cf.get("address_verify_sender");
        let sender = sender.trim();
        let mut probe_senders = Vec::new();
        if !sender.is_empty() && sender != "<>" {
            probe_senders.push(sender.to_ascii_lowercase());
            if !sender.contains('@') {
                probe_senders.push(format!("{sender}@{}", cf.get("myorigin")).to_ascii_lowercase());
            }
        }
        Ok(VerifySettings {
            recipient: codes([
                "unverified_recipient_defer_code",
                "unverified_recipient_reject_code",
                "unverified_recipient_reject_reason",
                "unverified_recipient_tempfail_action",
            ])?,
            sender: codes([
                "unverified_sender_defer_code",
                "unverified_sender_reject_code",
                "unverified_sender_reject_reason",
                "unverified_sender_tempfail_action",
            ])?,
            poll_count: u32::try_from(cf.get_int("address_verify_poll_count")).unwrap_or(3),
            poll_delay: cf.get_time("address_verify_poll_delay"),
            root: PathBuf::from("."),
            probe_senders,
        })
    }
}

/// The verify service's answer, or why there is none.
fn query(s: &VerifySettings, address: &str) -> Result<(VerifyStatus, String), String> {
    let req = VerifyRequest::Query {
        address: address.to_string(),
    };
    let mut count = 0;
    loop {
        match verify_call(&s.root, &req, QUERY_TIMEOUT).map_err(|e| e.to_string())? {
            VerifyReply::Status { status, text } => {
                count += 1;
                if status != VerifyStatus::Unknown || count >= s.poll_count.max(1) {
                    return Ok((status, text));
                }
                std::thread::sleep(s.poll_delay);
            }
            VerifyReply::Updated => return Err("unexpected reply to a query".into()),
            VerifyReply::Failed(why) => return Err(why),
        }
    }
}

/// Evaluates reject_unverified_recipient (`sender` false) or
/// reject_unverified_sender (`sender` true).
pub(super) fn check(
    sender: bool,
    f: &Facts<'_>,
    s: &VerifySettings,
    notes: &mut Vec<Note>,
) -> Step {
    let (address, codes, class, enhanced) = if sender {
        match f.sender.filter(|a| !a.is_empty()) {
            Some(a) if !s.probe_senders.contains(&a.to_ascii_lowercase()) => {
                (a, &s.sender, "Sender address", "4.1.7")
            }
            _ => return Step::Go,
        }
    } else {
        match f.recipient.filter(|a| !a.is_empty()) {
            Some(a) => (a, &s.recipient, "Recipient address", "4.1.1"),
            None => return Step::Go,
        }
    };
    decide(address, class, enhanced, codes, query(s, address), notes)
}

/// The reply for verify's answer (or its failure) about `address`.
fn decide(
    address: &str,
    class: &str,
    enhanced: &str,
    codes: &VerifyCodes,
    answer: Result<(VerifyStatus, String), String>,
    notes: &mut Vec<Note>,
) -> Step {
    let (status, text) = match answer {
        Ok(answer) => answer,
        Err(why) => {
            log::warn!("verify service failure: {why}");
            let text = format!("<{address}>: {class} rejected: address verification problem");
            return temp(codes.defer_if_permit, 450, enhanced, text, notes);
        }
    };
    let code = match status {
        VerifyStatus::Deliverable => return Step::Go,
        VerifyStatus::Unknown | VerifyStatus::Deferred => codes.defer_code,
        VerifyStatus::Undeliverable => codes.reject_code,
    };
    let why = if codes.reject_reason.is_empty() {
        text
    } else {
        codes.reject_reason.clone()
    };
    if code < 400 {
        // A 2xx code: the site chose to let such addresses through.
        return Step::Go;
    }
    if code < 500 {
        let text = format!("<{address}>: {class} rejected: unverified address: {why}");
        temp(codes.defer_if_permit, code, enhanced, text, notes)
    } else {
        Step::Reject(reply(
            code,
            &fix_dsn(code, enhanced),
            format!("<{address}>: {class} rejected: undeliverable address: {why}"),
        ))
    }
}

/// A 4xx answer under the tempfail action: remembered for a later permit, or at once.
fn temp(
    defer_if_permit: bool,
    code: u16,
    enhanced: &str,
    text: String,
    notes: &mut Vec<Note>,
) -> Step {
    let r = reply(code, &fix_dsn(code, enhanced), text);
    if defer_if_permit {
        if !notes.iter().any(|n| matches!(n, Note::DeferIfPermit(_))) {
            notes.push(Note::DeferIfPermit(r));
        }
        Step::Go
    } else {
        Step::Reject(r)
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
