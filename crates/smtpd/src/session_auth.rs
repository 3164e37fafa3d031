//! The session's AUTH command (RFC 4954) and its restriction checks, kept out of
//! session.rs (this is a child module of it, so it can use the session's fields).
//!
//! AUTH: offered in EHLO when smtpd_sasl_auth_enable is on, the back end answers and,
//! with smtpd_tls_auth_only (or level encrypt), only after TLS. `AUTH mech [initial]`,
//! `=` for an empty initial response, `334` challenges, `*` cancels (501), responses
//! must be strict base64 (501 otherwise), `235 2.7.0` on success, `535 5.7.8` on
//! failure after a pause of smtpd_error_sleep_time; a failure counts toward
//! smtpd_hard_error_limit like every error reply. A second AUTH after success gets 503,
//! as does AUTH inside a mail transaction. Nothing the client sends in the exchange is
//! logged: only the mechanism and the back end's reason.
//!
//! Restrictions: [`Session::restriction_check`] evaluates the lists of
//! crate::restrictions at the stage Postfix does; with smtpd_delay_reject = yes
//! (default) the client, HELO and sender lists run at RCPT, before the relay and
//! recipient lists. Rejects are logged as `NOQUEUE: reject: RCPT from ...`.

use super::{Session, SessionEnd};
use crate::auth::clean;
use crate::io::{is_timeout, LineRead, SmtpIo};
use crate::reply::Reply;
use crate::restrictions::eval::{evaluate, Facts, Note, Stage, Verdict};
use crate::restrictions::Restriction;
use crate::sasl::{ConnInfo, SaslError, Step};
use crate::sink::QueueSink;
use crate::tls::Transport;
use base64::Engine;

/// Longest AUTH response line we read (a PLAIN response with long names fits easily;
/// Postfix allows 12 KiB too).
const AUTH_LINE_LIMIT: usize = 12 * 1024;

/// Most challenge rounds in one exchange (PLAIN and LOGIN need at most two).
const MAX_ROUNDS: usize = 8;

/// Strict base64 (RFC 4648, padding required): what Postfix's Dovecot client demands.
fn strict_base64(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
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
}

impl<S: QueueSink> Session<'_, S> {
    /// AUTH may be offered now (enabled, and TLS first when required).
    fn auth_possible(&self) -> bool {
        self.cfg.auth.backend.is_some() && (!self.cfg.auth.tls_auth_only || self.tls.is_some())
    }

    /// The `AUTH mech...` EHLO keyword, or None when AUTH is not offered (off, TLS
    /// required first, or the back end does not answer: logged).
    pub(super) fn auth_ehlo_keyword(&mut self) -> Option<String> {
        if !self.auth_possible() {
            return None;
        }
        let server = self.auth_server()?;
        match server.mechanisms() {
            Ok(m) if !m.is_empty() => Some(format!("AUTH {}", m.join(" "))),
            Ok(_) => None,
            Err(e) => {
                log::warn!("SASL: {e}; AUTH not offered");
                self.auth.server = None;
                None
            }
        }
    }

    fn auth_server(&mut self) -> Option<&mut Box<dyn crate::sasl::SaslServer>> {
        if self.auth.server.is_none() {
            let backend = self.cfg.auth.backend.as_ref()?;
            self.auth.server = Some(backend.open(self.cfg.timeout));
        }
        self.auth.server.as_mut()
    }

    /// `AUTH mechanism [initial-response]`; Some(end) when the session is over.
    pub(super) fn auth_command<T: Transport>(
        &mut self,
        mech: String,
        initial: Option<String>,
        io: &mut SmtpIo<T>,
    ) -> Option<SessionEnd> {
        let name = "auth";
        let refuse = if !self.auth_possible() {
            Some(Reply::new(
                503,
                "5.5.1",
                "Error: authentication not enabled",
            ))
        } else if self.helo.is_none() || !self.esmtp {
            Some(Reply::new(503, "5.5.1", "Error: send EHLO first"))
        } else if self.auth.username.is_some() {
            Some(Reply::new(503, "5.5.1", "Error: already authenticated"))
        } else if self.txn.is_some() {
            Some(Reply::new(
                503,
                "5.5.1",
                "Error: MAIL transaction in progress",
            ))
        } else if initial
            .as_deref()
            .is_some_and(|r| r != "=" && !strict_base64(r))
        {
            Some(Reply::new(
                501,
                "5.5.2",
                "Error: authentication failed: Invalid base64 data in initial response",
            ))
        } else if !self.anvil.auth_allowed() {
            // smtpd_client_auth_rate_limit lives in anvil (anvil_client.rs).
            Some(self.anvil.auth_rate_reply())
        } else {
            None
        };
        if let Some(reply) = refuse {
            self.finish(name, io, reply);
            return None;
        }
        let mech = mech.to_ascii_uppercase();
        let initial = initial.map(|r| if r == "=" { String::new() } else { r });
        let conn = ConnInfo {
            local_ip: None,
            remote_ip: self.client.ip,
            secured: self.tls.is_some(),
        };
        let who = self.client.log_name();
        let Some(server) = self.auth_server() else {
            self.finish(
                name,
                io,
                Reply::new(503, "5.5.1", "Error: authentication not enabled"),
            );
            return None;
        };
        let mut step = server.start(&mech, initial.as_deref(), &conn);
        let mut rounds = 0;
        loop {
            match step {
                Ok(Step::Challenge(ch)) => {
                    rounds += 1;
                    if rounds > MAX_ROUNDS {
                        step = Ok(Step::Failure {
                            reason: "too many rounds".into(),
                            temporary: false,
                        });
                        continue;
                    }
                    io.send(&Reply::plain(334, vec![ch]));
                    let line = match io.read_line(AUTH_LINE_LIMIT) {
                        Ok(LineRead::Line(l)) => l,
                        Ok(LineRead::TooLong) => {
                            self.auth.server = None;
                            self.finish(
                                name,
                                io,
                                Reply::new(500, "5.5.6", "Error: authentication response too long"),
                            );
                            return None;
                        }
                        Ok(LineRead::Eof) => {
                            log::info!("lost connection after AUTH from {who}");
                            return Some(SessionEnd::Lost);
                        }
                        Err(e) if is_timeout(&e) => return Some(self.timeout(io)),
                        Err(e) => {
                            log::info!("lost connection after AUTH from {who}: {e}");
                            return Some(SessionEnd::Lost);
                        }
                    };
                    let text = String::from_utf8_lossy(&line).trim().to_string();
                    if text == "*" {
                        // The back end's exchange is abandoned: start afresh next time.
                        self.auth.server = None;
                        self.finish(name, io, Reply::new(501, "5.7.0", "Authentication aborted"));
                        return None;
                    }
                    if !strict_base64(&text) {
                        self.auth.server = None;
                        self.finish(
                            name,
                            io,
                            Reply::new(
                                501,
                                "5.5.2",
                                "Error: authentication failed: Invalid base64 data in continued response",
                            ),
                        );
                        return None;
                    }
                    step = match self.auth.server.as_mut() {
                        Some(s) => s.respond(&text),
                        None => Err(SaslError::Protocol("back end gone".into())),
                    };
                }
                Ok(Step::Success(user)) => {
                    self.auth.username = Some(user);
                    self.auth.method = Some(mech);
                    self.finish(
                        name,
                        io,
                        Reply::new(235, "2.7.0", "Authentication successful"),
                    );
                    return None;
                }
                Ok(Step::Failure { reason, temporary }) => {
                    let reason = clean(&reason);
                    log::warn!("{who}: SASL {mech} authentication failed: {reason}");
                    let reply = if temporary {
                        Reply::new(
                            454,
                            "4.7.0",
                            format!("Temporary authentication failure: {reason}"),
                        )
                    } else {
                        Reply::new(
                            535,
                            "5.7.8",
                            format!("Error: authentication failed: {reason}"),
                        )
                    };
                    self.auth_failure_pause(io);
                    self.finish(name, io, reply);
                    return None;
                }
                Err(e) => {
                    log::warn!("{who}: SASL {mech} authentication failed: {e}");
                    self.auth.server = None;
                    self.finish(
                        name,
                        io,
                        Reply::new(454, "4.7.0", "Temporary authentication failure"),
                    );
                    return None;
                }
            }
        }
    }

    /// smtpd_error_sleep_time after a failed AUTH: slows password guessing. Earlier
    /// replies are flushed first so pipelined replies keep their order.
    fn auth_failure_pause<T: Transport>(&mut self, io: &mut SmtpIo<T>) {
        let pause = self.cfg.auth.failure_delay;
        if !pause.is_zero() {
            if let Err(e) = io.flush() {
                log::debug!("flush failed: {e}");
            }
            std::thread::sleep(pause);
        }
    }

    /// The facts the restriction lists look at.
    fn facts<'b>(&'b self, sender: Option<&'b str>, recipient: Option<&'b str>) -> Facts<'b> {
        Facts {
            client_name: &self.client.name,
            client_addr: self.client.addr(),
            client_ip: self.client.ip,
            client_log: self.client.log_name(),
            helo: self.helo.as_deref(),
            sender,
            recipient,
            mynetworks: self.trusted,
            sasl_username: self.auth.username.as_deref(),
            mydestination: &self.cfg.mydestination,
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
            _ => {}
        }
        let facts = self.facts(sender, recipient);
        let mut notes = Vec::new();
        let mut verdict = None;
        for (list, stage) in lists {
            if let Verdict::Reject(r) = evaluate(list, stage, &facts, rc, &mut notes) {
                verdict = Some(r);
                break;
            }
        }
        if verdict.is_none() && point == CheckPoint::Rcpt && rc.reject_unlisted_recipient {
            // smtpd_reject_unlisted_recipient = yes: the implicit check after the lists.
            if let Verdict::Reject(r) = evaluate(
                &[Restriction::RejectUnlistedRecipient],
                Stage::Recipient,
                &facts,
                rc,
                &mut notes,
            ) {
                verdict = Some(r);
            }
        }
        let stage_name = match point {
            CheckPoint::Helo => "HELO",
            CheckPoint::Mail => "MAIL",
            CheckPoint::Rcpt => "RCPT",
            CheckPoint::Data => "DATA",
            CheckPoint::EndOfData => "END-OF-MESSAGE",
        };
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
            }
        }
        if let Some(r) = verdict.as_ref().filter(|_| point != CheckPoint::EndOfData) {
            self.log_check("reject", stage_name, &r.log_text(), sender, recipient);
        }
        verdict
    }

    /// `NOQUEUE: reject: RCPT from C: REPLY; from=<s> to=<r> proto=P helo=<h>`.
    fn log_check(
        &self,
        what: &str,
        stage: &str,
        text: &str,
        sender: Option<&str>,
        recipient: Option<&str>,
    ) {
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
        log::info!(
            "NOQUEUE: {what}: {stage} from {}: {text};{tail}",
            self.client.log_name()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::strict_base64;

    #[test]
    fn base64_is_strict() {
        assert!(strict_base64("AGFsaWNlAHNlY3JldDE="));
        assert!(strict_base64(""));
        assert!(!strict_base64("AGFsaWNlAHNlY3JldDE"));
        assert!(!strict_base64("not base64!"));
        assert!(!strict_base64("YW Jj"));
    }
}
