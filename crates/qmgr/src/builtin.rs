//! The transports qmgr carries out itself instead of calling a delivery agent: Postfix
//! has small error(8) and discard(8) agents; here they are a few lines in qmgr, the
//! simplest design (no master.cf entries needed, nothing to connect to).
//!
//! - `error:TEXT`: the recipient bounces. TEXT may start with an RFC 3463 code
//!   (`error:5.1.1 no such user`); without one the status is 5.0.0.
//! - `discard:TEXT`: the recipient is marked done, logged `status=sent (TEXT)`.
//! - `retry:TEXT`: the recipient is deferred (4.x.x; default 4.0.0), as Postfix 3.x's
//!   retry(8).
//! - a relayed recipient on the suppression list (not a transport name) bounces with
//!   5.1.1 "Recipient address suppressed after hard bounce" (docs/bulk-sending.md).

use rostfix_maillog::DeliveryLine;
use rostfix_proto::{DeliveryRecipient, DeliveryStatus, Dsn, RecipientResult};

/// Which built-in transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Error,
    Discard,
    Retry,
    /// Not a transport name: a relayed recipient on the suppression list, bounced
    /// without a connection (bulk.rs).
    Suppressed,
}

impl Builtin {
    pub fn from_transport(name: &str) -> Option<Builtin> {
        match name {
            "error" => Some(Builtin::Error),
            "discard" => Some(Builtin::Discard),
            "retry" => Some(Builtin::Retry),
            _ => None,
        }
    }
}

/// Splits a leading `X.Y.Z` code (class `class`) off `text`.
fn split_code(text: &str, class: char) -> (Option<String>, String) {
    let t = text.trim();
    let (first, rest) = t.split_once(' ').unwrap_or((t, ""));
    let parts: Vec<&str> = first.split('.').collect();
    let ok = parts.len() == 3
        && parts[0].len() == 1
        && parts[0].starts_with(class)
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        (Some(first.to_string()), rest.trim().to_string())
    } else {
        (None, t.to_string())
    }
}

/// The result qmgr records for one recipient of a built-in transport.
pub fn result(kind: Builtin, text: &str, d: &DeliveryRecipient) -> RecipientResult {
    let (status, dsn, text) = match kind {
        Builtin::Error => {
            let (code, rest) = split_code(text, '5');
            let rest = if rest.is_empty() {
                "mail for this address is not deliverable".into()
            } else {
                rest
            };
            (
                DeliveryStatus::Bounced,
                code.unwrap_or_else(|| "5.0.0".into()),
                rest,
            )
        }
        Builtin::Retry => {
            let (code, rest) = split_code(text, '4');
            let rest = if rest.is_empty() {
                "delivery temporarily suspended".into()
            } else {
                rest
            };
            (
                DeliveryStatus::Deferred,
                code.unwrap_or_else(|| "4.0.0".into()),
                rest,
            )
        }
        Builtin::Suppressed => (
            DeliveryStatus::Bounced,
            "5.1.1".to_string(),
            rostfix_maillog::outcome::SUPPRESSED_TEXT.to_string(),
        ),
        Builtin::Discard => {
            let t = if text.trim().is_empty() {
                "discarded".to_string()
            } else {
                text.trim().to_string()
            };
            (DeliveryStatus::Sent, "2.0.0".to_string(), t)
        }
    };
    RecipientResult {
        offset: d.offset,
        status,
        dsn: Dsn::or_class(&dsn, status),
        text,
        relay: "none".into(),
        notify_sender: None,
    }
}

/// A discard that could not be recorded stays queued.
pub fn unavailable(d: &DeliveryRecipient, why: &str) -> RecipientResult {
    RecipientResult {
        offset: d.offset,
        status: DeliveryStatus::Deferred,
        dsn: Dsn::or_class("4.3.0", DeliveryStatus::Deferred),
        text: why.to_string(),
        relay: "none".into(),
        notify_sender: None,
    }
}

/// `ID: to=<..>, relay=none, delay=.., delays=0/0/0/0, dsn=.., status=sent (..)`.
pub fn log_line(id: &str, d: &DeliveryRecipient, delay: f64, r: &RecipientResult) -> String {
    DeliveryLine {
        queue_id: id,
        to: &d.address,
        orig_to: &d.orig_address,
        relay: "none",
        conn_use: 0,
        delay,
        delays: [0.0; 4],
        dsn: &r.dsn,
        status: r.status.as_str(),
        text: Some(&r.text),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> DeliveryRecipient {
        DeliveryRecipient {
            offset: 9,
            address: "a@x".into(),
            orig_address: "list@x".into(),
        }
    }

    #[test]
    fn error_takes_its_code_from_the_text() {
        let r = result(Builtin::Error, "5.1.1 no such user", &d());
        assert_eq!(
            (r.status, r.dsn.as_str(), r.text.as_str()),
            (DeliveryStatus::Bounced, "5.1.1", "no such user")
        );
        let r = result(Builtin::Error, "mail disabled", &d());
        assert_eq!(
            (r.dsn.as_str(), r.text.as_str()),
            ("5.0.0", "mail disabled")
        );
        // A 4.x.x code is not a bounce code: the text stays whole.
        assert_eq!(result(Builtin::Error, "4.1.1 x", &d()).dsn, "5.0.0");
    }

    #[test]
    fn discard_and_retry() {
        let r = result(Builtin::Discard, "", &d());
        assert_eq!(
            (r.status, r.dsn.as_str(), r.text.as_str()),
            (DeliveryStatus::Sent, "2.0.0", "discarded")
        );
        let r = result(Builtin::Retry, "4.7.1 later", &d());
        assert_eq!(
            (r.status, r.dsn.as_str()),
            (DeliveryStatus::Deferred, "4.7.1")
        );
        assert_eq!(Builtin::from_transport("smtp"), None);
    }

    #[test]
    fn suppressed_bounces_with_its_class() {
        let r = result(Builtin::Suppressed, "", &d());
        assert_eq!(
            (r.status, r.dsn.as_str()),
            (DeliveryStatus::Bounced, "5.1.1")
        );
        assert!(log_line("ABC", &d(), 0.5, &r).ends_with(
            "status=bounced (Recipient address suppressed after hard bounce) class=suppressed"
        ));
        assert_eq!(Builtin::from_transport("suppressed"), None);
    }

    #[test]
    fn log_line_shape() {
        let r = result(Builtin::Discard, "bye", &d());
        assert_eq!(
            log_line("ABC", &d(), 0.5, &r),
            "ABC: to=<a@x>, orig_to=<list@x>, relay=none, delay=0.5, delays=0/0/0/0, dsn=2.0.0, status=sent (bye) class=delivered"
        );
    }
}
