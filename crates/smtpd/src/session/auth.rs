//! The session's AUTH command (RFC 4954), a child module of session/mod.rs so it can
//! use the session's fields.
//!
//! AUTH: offered in EHLO when smtpd_sasl_auth_enable is on, the back end answers and,
//! with smtpd_tls_auth_only (or level encrypt), only after TLS. `AUTH mech [initial]`,
//! `=` for an empty initial response, `334` challenges, `*` cancels (501), responses
//! must be strict base64 (501 otherwise), `235 2.7.0` on success, `535 5.7.8` on
//! failure after a pause of smtpd_error_sleep_time; a failure counts toward
//! smtpd_hard_error_limit like every error reply. A second AUTH after success gets 503,
//! as does AUTH inside a mail transaction. Nothing the client sends in the exchange is
//! logged: only the mechanism and the back end's reason.

use super::{Session, SessionEnd};
use crate::auth::clean;
use crate::io::{is_timeout, LineRead, SmtpIo};
use crate::reply::Reply;
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
        let security = self.sasl_security();
        let server = self.auth_server()?;
        let allowed = match server.mechanisms() {
            Ok(m) => Ok(m
                .into_iter()
                .filter(|m| security.allows(&m.to_ascii_uppercase()))
                .collect::<Vec<_>>()),
            Err(e) => Err(e),
        };
        match allowed {
            Ok(m) if !m.is_empty() => Some(format!("AUTH {}", m.join(" "))),
            Ok(_) => None,
            Err(e) => {
                log::warn!("SASL: {e}; AUTH not offered");
                self.auth.server = None;
                None
            }
        }
    }

    /// smtpd_sasl_tls_security_options once TLS is on, smtpd_sasl_security_options
    /// before.
    fn sasl_security(&self) -> crate::session_options::SaslSecurity {
        if self.tls.is_some() {
            self.cfg.session.sasl_tls
        } else {
            self.cfg.session.sasl_plain
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
        } else if !self.sasl_security().allows(&mech.to_ascii_uppercase()) {
            // A mechanism the security options exclude is refused as one the
            // server does not know, as Postfix's mechanism filter makes it.
            let why = format!("Invalid authentication mechanism: '{}'", clean(&mech));
            log::warn!(
                "{}: SASL {} authentication failed: {why}",
                self.client.log_name(),
                clean(&mech)
            );
            Some(Reply::new(
                535,
                "5.7.8",
                format!("Error: authentication failed: {why}"),
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
                    crate::metrics::auth(&mech, true);
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
                    crate::metrics::auth(&mech, false);
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
