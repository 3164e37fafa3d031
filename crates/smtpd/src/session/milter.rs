//! smtpd_milters (a child module of session/mod.rs): the session's milters are
//! connected before the greeting and called at CONNECT, HELO/EHLO, MAIL, RCPT, DATA
//! (or the first BDAT) and at the end of the message, as Postfix's smtpd does. Their
//! refusals become the command's reply and are logged as `milter-reject`; at the end
//! of the message the content, buffered in memory for them (bounded by
//! message_size_limit, which stops buffering), is edited as they ask before it is
//! written to the queue file, and the envelope changes and a QUARANTINE (hold) are
//! applied at commit.

use super::{Session, Transaction};
use crate::reply::Reply;
use crate::sink::QueueSink;
use rostfix_milter::{ConnectInfo, EnvelopeEdits, Message, Milters, Verdict};
use std::collections::HashMap;

/// The milters' decision on a finished message.
pub(super) enum MessageVerdict {
    /// Queue this content, with these envelope changes.
    Queue(Vec<u8>, EnvelopeEdits),
    Refuse(Reply),
    Discard,
}

/// A milter verdict as the reply to give, None to go on. A multi-line REPLYCODE
/// keeps its lines (their own `550-` prefixes removed; Reply adds them again).
fn verdict_reply(code: u16, text: &str) -> Reply {
    let lines = text
        .split("\r\n")
        .map(|l| {
            let l = l.trim_end_matches(['\r', '\n']);
            match l.get(..4) {
                Some(p)
                    if p[..3].bytes().all(|b| b.is_ascii_digit())
                        && matches!(&p[3..], " " | "-") =>
                {
                    l[4..].to_string()
                }
                _ => l.to_string(),
            }
        })
        .collect();
    Reply::plain(code, lines)
}

impl<S: QueueSink> Session<'_, S> {
    /// The macros smtpd can tell milters now; `id` once the queue file exists,
    /// `rcpt` during RCPT.
    fn milter_macros(
        &self,
        id: Option<&str>,
        sender: Option<&str>,
        rcpt: Option<&str>,
    ) -> HashMap<&'static str, String> {
        let mut m = HashMap::new();
        m.insert("j", self.cfg.myhostname.clone());
        if let Some(cfg) = &self.cfg.milters {
            m.insert("daemon_name", cfg.daemon_name.clone());
            m.insert("v", cfg.macro_v.clone());
        }
        m.insert(
            "_",
            format!("{} [{}]", self.client.name, self.client.addr()),
        );
        m.insert("client_addr", self.client.addr());
        m.insert("client_port", self.client.port.to_string());
        if let Some(server) = self.client.server {
            m.insert("daemon_addr", server.ip().to_string());
            m.insert("daemon_port", server.port().to_string());
        }
        m.insert("client_name", self.client.name.clone());
        m.insert("client_ptr", self.client.reverse_name.clone());
        if let Some(h) = &self.helo {
            m.insert("s", h.clone());
        }
        if let Some(tls) = &self.tls {
            m.insert("tls_version", tls.protocol.clone());
            m.insert("cipher", tls.cipher.clone());
            m.insert("cipher_bits", tls.bits.to_string());
        }
        if let Some(user) = &self.auth.username {
            m.insert("auth_authen", user.clone());
            if let Some(method) = &self.auth.method {
                m.insert("auth_type", method.clone());
            }
        }
        if let Some(s) = sender {
            m.insert("mail_addr", s.to_string());
        }
        if let Some(r) = rcpt {
            m.insert("rcpt_addr", r.to_string());
        }
        if let Some(id) = id {
            m.insert("i", id.to_string());
        }
        m
    }

    /// Connects the milters and sends CONNECT; a refusal is kept in `milter_denied`
    /// and given to every later command but QUIT, RSET and NOOP.
    pub(super) fn milter_connect(&mut self) {
        let Some(cfg) = self.cfg.milters.clone() else {
            return;
        };
        let info = ConnectInfo {
            hostname: self.client.name.clone(),
            addr: self.client.ip,
            port: self.client.port,
        };
        let macros = self.milter_macros(None, None, None);
        let (milters, verdict) = Milters::connect(&cfg, &info, &|n| macros.get(n).cloned());
        self.milters = Some(milters);
        match verdict {
            Verdict::Continue | Verdict::Discard => {}
            Verdict::Reply { code, text } => {
                let reply = verdict_reply(code, &text);
                crate::metrics::reject("CONNECT", "milter", reply.code());
                log::info!(
                    "NOQUEUE: milter-reject: CONNECT from {}: {}; proto=SMTP",
                    self.client.log_name(),
                    reply.log_text()
                );
                self.milter_denied = Some(reply);
            }
        }
    }

    /// One envelope event; the refusal reply (logged) or None.
    fn milter_event(
        &mut self,
        stage: &str,
        sender: Option<&str>,
        rcpt: Option<&str>,
        call: impl FnOnce(&mut Milters, &HashMap<&'static str, String>) -> Verdict,
    ) -> Option<Reply> {
        let macros = self.milter_macros(None, sender, rcpt);
        let milters = self.milters.as_mut()?;
        match call(milters, &macros) {
            Verdict::Continue => None,
            Verdict::Discard => {
                // Postfix discards the whole message when a milter says so early.
                self.milter_discard = true;
                None
            }
            Verdict::Reply { code, text } => {
                let reply = verdict_reply(code, &text);
                crate::metrics::reject(stage, "milter", reply.code());
                self.log_milter(
                    "NOQUEUE",
                    "milter-reject",
                    stage,
                    &reply.log_text(),
                    sender,
                    rcpt,
                );
                Some(reply)
            }
        }
    }

    pub(super) fn milter_helo(&mut self, host: &str, stage: &str) -> Option<Reply> {
        let host = host.to_string();
        self.milter_event(stage, None, None, |m, mac| {
            m.helo(&host, &|n| mac.get(n).cloned())
        })
    }

    /// MAIL FROM: `<sender>` and the ESMTP parameters as the client wrote them.
    pub(super) fn milter_mail(
        &mut self,
        sender: &str,
        params: &[(String, Option<String>)],
    ) -> Option<Reply> {
        self.milter_discard = false;
        let args = milter_args(sender, params);
        let reply = self.milter_event("MAIL", Some(sender), None, |m, mac| {
            m.mail(&args, &|n| mac.get(n).cloned())
        });
        if reply.is_some() {
            // No transaction: the milters must not wait for this message.
            if let Some(m) = self.milters.as_mut() {
                m.abort();
            }
        }
        reply
    }

    pub(super) fn milter_rcpt(
        &mut self,
        rcpt: &str,
        params: &[(String, Option<String>)],
    ) -> Option<Reply> {
        let args = milter_args(rcpt, params);
        let sender = self.txn.as_ref().map(|t| t.sender.clone());
        self.milter_event("RCPT", sender.as_deref(), Some(rcpt), |m, mac| {
            m.rcpt(&args, &|n| mac.get(n).cloned())
        })
    }

    /// A recipient smtpd refused, shown to the milters that asked for refused
    /// recipients (SMFIP_RCPT_REJ) with Postfix's macros: `{rcpt_mailer}` error,
    /// `{rcpt_host}` the enhanced status code, `{rcpt_addr}` the rest of the reply.
    pub(super) fn milter_rejected_rcpt(
        &mut self,
        rcpt: &str,
        params: &[(String, Option<String>)],
        reply: &Reply,
    ) {
        if !self.milters_active() {
            return;
        }
        let args = milter_args(rcpt, params);
        let sender = self.txn.as_ref().map(|t| t.sender.clone());
        let mut macros = self.milter_macros(None, sender.as_deref(), Some(rcpt));
        // "550 5.1.1 <x>: Recipient address rejected: ..."
        let text = reply.log_text();
        let mut parts = text.splitn(3, ' ').skip(1);
        macros.insert("rcpt_mailer", "error".into());
        macros.insert("rcpt_host", parts.next().unwrap_or("").to_string());
        macros.insert("rcpt_addr", parts.next().unwrap_or("").to_string());
        if let Some(m) = self.milters.as_mut() {
            m.rejected_rcpt(&args, &|n| macros.get(n).cloned());
        }
    }

    /// A command smtpd does not know: the milters' refusal, if any, replaces 502.
    pub(super) fn milter_unknown(&mut self, line: &[u8]) -> Option<Reply> {
        if !self.milters_active() {
            return None;
        }
        let line = String::from_utf8_lossy(line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        let sender = self.txn.as_ref().map(|t| t.sender.clone());
        self.milter_event("UNKNOWN", sender.as_deref(), None, |m, mac| {
            m.unknown(&line, &|n| mac.get(n).cloned())
        })
    }

    pub(super) fn milter_data(&mut self, stage: &str, sender: &str) -> Option<Reply> {
        self.milter_event(stage, Some(sender), None, |m, mac| {
            m.data(&|n| mac.get(n).cloned())
        })
    }

    /// RSET, HELO, a new MAIL or QUIT: the current message is gone.
    pub(super) fn milter_abort(&mut self) {
        self.milter_discard = false;
        if let Some(m) = self.milters.as_mut() {
            m.abort();
        }
    }

    /// End of session.
    pub(super) fn milter_quit(&mut self) {
        if let Some(m) = self.milters.as_mut() {
            m.quit();
        }
    }

    /// Whether milters take part in this session's messages.
    pub(super) fn milters_active(&self) -> bool {
        self.milters.as_ref().is_some_and(|m| !m.is_empty())
    }

    /// The end of the message: headers, body and end of message to the milters.
    pub(super) fn milter_message(
        &mut self,
        id: &str,
        content: &[u8],
        txn: &Transaction,
    ) -> MessageVerdict {
        let rcpt = txn.recipients.first().map(String::as_str).unwrap_or("");
        if std::mem::take(&mut self.milter_discard) {
            self.milter_abort();
            self.log_milter(
                id,
                "milter-discard",
                "END-OF-MESSAGE",
                "milter triggers DISCARD action",
                Some(&txn.sender),
                Some(rcpt),
            );
            return MessageVerdict::Discard;
        }
        let macros = self.milter_macros(Some(id), Some(&txn.sender), None);
        let Some(milters) = self.milters.as_mut() else {
            return MessageVerdict::Queue(content.to_vec(), EnvelopeEdits::default());
        };
        let original = Message::parse(content);
        let mut msg = original.clone();
        let mut edits = EnvelopeEdits::default();
        let verdict = milters.message(&mut msg, &mut edits, &|n| macros.get(n).cloned());
        milters.end_message();
        match verdict {
            // Unedited content is queued byte for byte: the parsed form holds header
            // text as UTF-8 (lossy for raw 8-bit headers) and always has a separator.
            Verdict::Continue if msg == original => MessageVerdict::Queue(content.to_vec(), edits),
            Verdict::Continue => MessageVerdict::Queue(msg.render(), edits),
            Verdict::Discard => {
                self.log_milter(
                    id,
                    "milter-discard",
                    "END-OF-MESSAGE",
                    "milter triggers DISCARD action",
                    Some(&txn.sender),
                    Some(rcpt),
                );
                MessageVerdict::Discard
            }
            Verdict::Reply { code, text } => {
                let reply = verdict_reply(code, &text);
                crate::metrics::reject("END-OF-MESSAGE", "milter", reply.code());
                // Postfix's cleanup logs the text without the numeric code.
                let first = text.split("\r\n").next().unwrap_or("").to_string();
                self.log_milter(
                    id,
                    "milter-reject",
                    "END-OF-MESSAGE",
                    &first,
                    Some(&txn.sender),
                    Some(rcpt),
                );
                MessageVerdict::Refuse(reply)
            }
        }
    }

    /// `ID: milter-reject: STAGE from C: TEXT; from=<s> to=<r> proto=P helo=<h>`.
    pub(super) fn log_milter(
        &self,
        id: &str,
        what: &str,
        stage: &str,
        text: &str,
        sender: Option<&str>,
        rcpt: Option<&str>,
    ) {
        let mut tail = String::new();
        if let Some(s) = sender {
            tail.push_str(&format!(" from=<{s}>"));
        }
        if let Some(r) = rcpt {
            tail.push_str(&format!(" to=<{r}>"));
        }
        tail.push_str(&format!(" proto={}", self.protocol()));
        if let Some(h) = &self.helo {
            tail.push_str(&format!(" helo=<{h}>"));
        }
        log::info!(
            "{id}: {what}: {stage} from {}: {text};{tail}",
            self.client.log_name()
        );
    }
}

/// `<address>` then `KEY=value` arguments, as libmilter expects MAIL and RCPT.
fn milter_args(address: &str, params: &[(String, Option<String>)]) -> Vec<String> {
    let mut args = vec![format!("<{address}>")];
    for (k, v) in params {
        args.push(match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        });
    }
    args
}
