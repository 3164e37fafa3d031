//! The session's restriction checks, a child module of session/mod.rs so it can use
//! the session's fields: [`Session::restriction_check`] evaluates the lists of
//! crate::restrictions at the stage Postfix does; with smtpd_delay_reject = yes
//! (default) the client, HELO and sender lists run at RCPT, before the relay and
//! recipient lists. Rejects are logged as `NOQUEUE: reject: RCPT from ...`.

use super::Session;
use crate::auth::clean;
use crate::reply::Reply;
use crate::restrictions::eval::{evaluate, Facts, Note, Stage, Verdict};
use crate::restrictions::policy_request::SessionFacts;
use crate::restrictions::Restriction;
use crate::sink::QueueSink;

/// A DISCARD action among `notes`.
fn discarded(notes: &[Note]) -> bool {
    notes.iter().any(|n| {
        matches!(
            n,
            Note::Queue(t) if t.action == crate::restrictions::queue_actions::QueueAction::Discard
        )
    })
}

/// Where a restriction check happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckPoint {
    Helo,
    Mail,
    Rcpt,
    Data,
    /// After the message content; the caller logs the refusal with the queue id.
    EndOfData,
    /// ETRN, its domain in the session's `etrn_domain`.
    Etrn,
}

impl CheckPoint {
    /// Postfix's protocol_state for a policy request.
    fn state(self) -> &'static str {
        match self {
            CheckPoint::Helo => "HELO",
            CheckPoint::Mail => "MAIL",
            CheckPoint::Rcpt => "RCPT",
            CheckPoint::Data => "DATA",
            CheckPoint::EndOfData => "END-OF-MESSAGE",
            CheckPoint::Etrn => "ETRN",
        }
    }
}

impl<S: QueueSink> Session<'_, S> {
    /// The facts the restriction lists look at.
    fn facts<'b>(
        &'b self,
        point: CheckPoint,
        sender: Option<&'b str>,
        recipient: Option<&'b str>,
    ) -> Facts<'b> {
        let rc = &self.cfg.restrictions;
        let txn = self.txn.as_ref();
        let session = SessionFacts {
            protocol_state: point.state(),
            protocol_name: if self.esmtp { "ESMTP" } else { "SMTP" },
            queue_id: "",
            recipient_count: txn.map_or(0, |t| t.recipients.len()),
            instance: format!("{:x}.{:x}", std::process::id(), self.serial),
            sasl_method: self.auth.method.as_deref(),
            sasl_sender: None,
            size: txn.and_then(|t| t.params.size).unwrap_or(0),
            encryption_protocol: self.tls.as_ref().map(|t| t.protocol.as_str()),
            encryption_cipher: self.tls.as_ref().map(|t| t.cipher.as_str()),
            encryption_keysize: self.tls.as_ref().map_or(0, |t| t.bits),
            stress: rc.stress,
            compatibility_level: &rc.compatibility_level,
            mail_version: &rc.mail_version,
            ill_pipelining: self.ill_pipelining,
            ccert: self.ccert.as_ref(),
            etrn_domain: self.etrn_domain.as_deref(),
        };
        Facts {
            client_name: &self.client.name,
            reverse_client_name: &self.client.reverse_name,
            name_status: self.client.name_status,
            reverse_name_status: self.client.reverse_name_status,
            client_addr: self.client.addr(),
            client_ip: self.client.ip,
            client_log: self.client.log_name(),
            helo: self.helo.as_deref(),
            sender,
            recipient,
            mynetworks: self.trusted,
            sasl_username: self.auth.username.as_deref(),
            mydestination: &self.cfg.local_destinations,
            session,
        }
    }

    /// Runs the lists due at `point`; Some(reply) when the command is refused (the
    /// refusal is logged). `sender`/`recipient` are those of the command or transaction.
    pub(super) fn restriction_check(
        &self,
        point: CheckPoint,
        sender: Option<&str>,
        recipient: Option<&str>,
    ) -> Option<Reply> {
        let rc = &self.cfg.restrictions;
        let delay = rc.delay_reject;
        if point != CheckPoint::Helo && point != CheckPoint::Mail && self.actions.borrow().discard {
            // A DISCARD action ends every later restriction of the transaction (Postfix's
            // generic_checks): the message goes nowhere whatever they would say.
            return None;
        }
        let mut lists: Vec<(&[Restriction], Stage)> = Vec::new();
        match point {
            CheckPoint::Helo if !delay => {
                lists.push((&rc.client, Stage::Client));
                lists.push((&rc.helo, Stage::Helo));
            }
            CheckPoint::Mail if !delay => {
                lists.push((&rc.client, Stage::Client));
                lists.push((&rc.helo, Stage::Helo));
                lists.push((&rc.sender, Stage::Sender));
            }
            CheckPoint::Rcpt => {
                if delay {
                    lists.push((&rc.client, Stage::Client));
                    lists.push((&rc.helo, Stage::Helo));
                    lists.push((&rc.sender, Stage::Sender));
                }
                lists.push((&rc.relay, Stage::Relay));
                lists.push((&rc.recipient, Stage::Recipient));
            }
            CheckPoint::Data => lists.push((&rc.data, Stage::Data)),
            CheckPoint::EndOfData => lists.push((&rc.end_of_data, Stage::EndOfData)),
            CheckPoint::Etrn => {
                if delay {
                    lists.push((&rc.client, Stage::Client));
                    lists.push((&rc.helo, Stage::Helo));
                }
                lists.push((&rc.etrn, Stage::Etrn));
            }
            _ => {}
        }
        let facts = self.facts(point, sender, recipient);
        let mut notes = Vec::new();
        let mut verdict = None;
        // Which list or implicit check refused, for the metrics (crate::metrics).
        let mut class = "";
        for (list, stage) in lists {
            if let Verdict::Reject(r) = evaluate(list, stage, &facts, rc, &mut notes) {
                verdict = Some(r);
                class = list_parameter(stage);
                break;
            }
            if discarded(&notes) {
                break;
            }
        }
        let discard = discarded(&notes);
        if verdict.is_none() {
            // A permit ends as the deferral defer_if_permit asked for (Postfix checks
            // this at the end of each stage's lists).
            verdict = notes.iter().find_map(|n| match n {
                Note::DeferIfPermit(r) => Some(r.clone()),
                _ => None,
            });
            class = "defer_if_permit";
        }
        if verdict.is_none()
            && !discard
            && matches!(point, CheckPoint::Rcpt | CheckPoint::Mail)
            && rc.reject_unlisted_sender
            && (point == CheckPoint::Rcpt) == delay
        {
            // smtpd_reject_unlisted_sender = yes: the implicit check.
            if let Verdict::Reject(r) = evaluate(
                &[Restriction::RejectUnlistedSender],
                Stage::Sender,
                &facts,
                rc,
                &mut notes,
            ) {
                verdict = Some(r);
                class = "smtpd_reject_unlisted_sender";
            }
        }
        if verdict.is_none()
            && !discard
            && point == CheckPoint::Rcpt
            && rc.reject_unlisted_recipient
        {
            // smtpd_reject_unlisted_recipient = yes: the implicit check after the lists.
            if let Verdict::Reject(r) = evaluate(
                &[Restriction::RejectUnlistedRecipient],
                Stage::Recipient,
                &facts,
                rc,
                &mut notes,
            ) {
                verdict = Some(r);
                class = "smtpd_reject_unlisted_recipient";
            }
        }
        let mut prepends = Vec::new();
        let stage_name = point.state();
        for n in &notes {
            match n {
                Note::RejectWarning(r) => self.log_check(
                    "reject_warning",
                    stage_name,
                    &r.log_text(),
                    sender,
                    recipient,
                ),
                Note::Warn(text) => {
                    self.log_check("warn", stage_name, &clean(text), sender, recipient)
                }
                Note::Prepend(header) if verdict.is_none() => prepends.push(header.clone()),
                Note::Queue(t) => {
                    // Logged when the table matched and kept for the message even
                    // when this command is refused, as Postfix's saved_flags are.
                    if self.actions.borrow_mut().record(&t.action) {
                        self.log_check(t.action.log_word(), stage_name, &t.text, sender, recipient);
                    }
                }
                Note::Prepend(_) | Note::DeferIfPermit(_) | Note::DeferIfReject(_) => {}
            }
        }
        if !prepends.is_empty() {
            self.prepend.borrow_mut().extend(prepends);
        }
        if let Some(r) = verdict.as_ref().filter(|_| point != CheckPoint::EndOfData) {
            // End of data is logged and counted by the caller (log_reject).
            self.log_check("reject", stage_name, &r.log_text(), sender, recipient);
            crate::metrics::reject(stage_name, class, r.code());
        }
        verdict
    }

    /// `NOQUEUE: reject: RCPT from C: REPLY; from=<s> to=<r> proto=P helo=<h>`.
    pub(super) fn log_check(
        &self,
        what: &str,
        stage: &str,
        text: &str,
        sender: Option<&str>,
        recipient: Option<&str>,
    ) {
        let tail = self.whatsup(sender, recipient);
        log::info!(
            "NOQUEUE: {what}: {stage} from {}: {text};{tail}",
            self.client.log_name()
        );
    }

    /// ` from=<s> to=<r> proto=P helo=<h>` (Postfix's smtpd_whatsup).
    pub(super) fn whatsup(&self, sender: Option<&str>, recipient: Option<&str>) -> String {
        let mut tail = String::new();
        if let Some(s) = sender {
            tail.push_str(&format!(" from=<{s}>"));
        }
        if let Some(r) = recipient {
            tail.push_str(&format!(" to=<{r}>"));
        }
        tail.push_str(&format!(" proto={}", self.protocol()));
        if let Some(h) = &self.helo {
            tail.push_str(&format!(" helo=<{h}>"));
        }
        tail
    }
}

/// The main.cf parameter of a restriction list: the `restriction` label of a reject.
fn list_parameter(stage: Stage) -> &'static str {
    match stage {
        Stage::Client => "smtpd_client_restrictions",
        Stage::Helo => "smtpd_helo_restrictions",
        Stage::Sender => "smtpd_sender_restrictions",
        Stage::Relay => "smtpd_relay_restrictions",
        Stage::Recipient => "smtpd_recipient_restrictions",
        Stage::Data => "smtpd_data_restrictions",
        Stage::EndOfData => "smtpd_end_of_data_restrictions",
        Stage::Etrn => "smtpd_etrn_restrictions",
    }
}
