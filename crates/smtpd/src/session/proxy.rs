//! smtpd_proxy_filter in the session (a child module of session/mod.rs): the
//! transaction is relayed live to the before-queue filter (Postfix's smtpd_proxy.c
//! and smtpd.c). At the first recipient our own restrictions accept, the filter is
//! connected and given the client's MAIL FROM command as received; every accepted
//! RCPT, then DATA and the content (our Received: header first) follow, and the
//! client gets the filter's replies: a message the filter (or the smtpd behind it)
//! refuses is refused in this session and nothing is queued here. Trouble with the
//! filter answers `451 4.3.0 Error: queue file write error`. The end of the message
//! is logged as `proxy-accept: END-OF-MESSAGE: REPLY; from=<s> to=<r> proto=P
//! helo=<h>` (or proxy-reject). One filter connection per transaction: RSET, HELO
//! and the end of DATA close it with QUIT.
//!
//! Not here as in Postfix: BDAT (CHUNKING is not offered while a filter is set) and
//! smtpd_proxy_options = speed_adjust (reported as not implemented).

use super::{DataOutcome, Session, Transaction};
use crate::data::DataMachine;
use crate::headers::HeaderScanner;
use crate::io::{is_timeout, SmtpIo};
use crate::proxy_client::{proxy_failure, ClientAttrs, ProxyConn, Refused};
use crate::reply::Reply;
use crate::sink::QueueSink;
use crate::tls::Transport;

/// The filter connection of the current transaction.
#[derive(Default)]
pub(super) enum ProxyState {
    /// Not connected yet (no recipient accepted so far).
    #[default]
    Idle,
    Open(ProxyConn),
    /// It failed after it had recipients: the rest of the transaction fails too
    /// (reconnecting would lose the recipients the filter already had).
    Broken,
}

impl<S: QueueSink> Session<'_, S> {
    /// Ends the filter conversation of this transaction.
    pub(super) fn proxy_close(&mut self) {
        if let ProxyState::Open(conn) = std::mem::take(&mut self.proxy) {
            conn.quit();
        }
    }

    /// What XFORWARD tells the filter: the original client when our own client
    /// forwarded one, else our client.
    fn proxy_client_attrs(&self) -> ClientAttrs {
        let f = self.forward.clone().unwrap_or_default();
        let addr = f.addr.or_else(|| self.client.ip.map(|ip| ip.to_string()));
        let addr = addr.map(|a| {
            if a.contains(':') && !a.to_ascii_uppercase().starts_with("IPV6:") {
                format!("IPV6:{a}")
            } else {
                a
            }
        });
        ClientAttrs {
            name: f
                .name
                .or_else(|| Some(self.client.name.clone()))
                .filter(|n| n != "unknown"),
            addr,
            port: None,
            proto: f
                .proto
                .or_else(|| Some(if self.esmtp { "ESMTP" } else { "SMTP" }.to_string())),
            helo: f.helo.or_else(|| self.helo.clone()),
            ident: f.ident,
            source: "REMOTE",
        }
    }

    /// RCPT, our restrictions passed: connect when this is the first recipient, then
    /// the filter's answer to the client's command. Err(reply) refuses the recipient.
    pub(super) fn proxy_rcpt(&mut self, command: &str) -> Result<(), Reply> {
        let Some(settings) = self.cfg.proxy_filter.as_ref() else {
            return Ok(());
        };
        if matches!(self.proxy, ProxyState::Idle) {
            let mail = self.txn.as_ref().map(|t| t.mail_line.clone());
            let mail = mail.unwrap_or_default();
            match ProxyConn::open(settings, &self.proxy_client_attrs(), &mail) {
                Ok(conn) => self.proxy = ProxyState::Open(conn),
                Err(Refused::Reply(r)) => return Err(r.to_reply()),
                Err(Refused::Failed) => return Err(proxy_failure()),
            }
        }
        let ProxyState::Open(conn) = &mut self.proxy else {
            return Err(proxy_failure());
        };
        match conn.expect(command, 2) {
            Ok(_) => Ok(()),
            Err(Refused::Reply(r)) => Err(r.to_reply()),
            Err(Refused::Failed) => {
                self.proxy = ProxyState::Broken;
                Err(proxy_failure())
            }
        }
    }

    /// DATA through the filter, once the DATA restrictions passed.
    pub(super) fn proxy_data<T: Transport>(
        &mut self,
        txn: Transaction,
        io: &mut SmtpIo<T>,
    ) -> DataOutcome {
        let conn = match std::mem::take(&mut self.proxy) {
            ProxyState::Open(mut conn) => match conn.expect("DATA", 3) {
                Ok(_) => conn,
                Err(Refused::Reply(r)) => {
                    conn.quit();
                    return DataOutcome::Reply(r.to_reply());
                }
                Err(Refused::Failed) => return DataOutcome::Reply(proxy_failure()),
            },
            _ => return DataOutcome::Reply(proxy_failure()),
        };
        self.proxy_message(conn, txn, io)
    }

    fn proxy_message<T: Transport>(
        &mut self,
        mut conn: ProxyConn,
        txn: Transaction,
        io: &mut SmtpIo<T>,
    ) -> DataOutcome {
        io.send(&Reply::plain(
            354,
            vec!["End data with <CR><LF>.<CR><LF>".into()],
        ));
        let header = self.header_block(&txn, "");
        let limit = self.cfg.message_size_limit;
        let mut size = header.len() as u64;
        let mut scanner = HeaderScanner::new();
        scanner.feed(header.as_bytes());
        // The first failure decides; the content is still read to its end.
        let mut failed = conn.content(header.as_bytes()).err();
        let mut machine = DataMachine::new();
        let mut out = Vec::with_capacity(super::WRITE_CHUNK + 1024);
        loop {
            let step = match io.fill() {
                Ok([]) => None,
                Ok(buf) => Some((machine.feed(buf, &mut out), buf.len())),
                Err(e) if is_timeout(&e) => return DataOutcome::Timeout,
                Err(e) => {
                    log::debug!("read error in DATA from {}: {e}", self.client.log_name());
                    None
                }
            };
            let Some((end, available)) = step else {
                return DataOutcome::Lost;
            };
            io.consume(end.unwrap_or(available));
            size = size.saturating_add(out.len() as u64);
            scanner.feed(&out);
            let too_big = limit > 0 && size > limit;
            if failed.is_none() && !too_big && !out.is_empty() {
                failed = conn.content(&out).err();
            }
            out.clear();
            if end.is_some() {
                break;
            }
        }
        let rcpt = txn.recipients.first().cloned().unwrap_or_default();
        if machine.saw_bare_lf() && self.cfg.proto.rejects_bare_lf(self.client.ip) {
            let reply = Reply::new(
                self.cfg.proto.bare_newline_code,
                "5.5.2",
                format!("{} Error: bare <LF> received", self.cfg.myhostname),
            );
            self.log_reject(
                "NOQUEUE",
                ("DATA", super::BARE_LF),
                &reply,
                &txn.sender,
                &rcpt,
            );
            return DataOutcome::BareNewline;
        }
        // Without the final dot the filter never takes the message: dropping the
        // connection is how the refusals below keep it from being queued.
        let refusal = if let Some(e) = failed {
            log::warn!("{e}");
            Some((proxy_failure(), "proxy"))
        } else if limit > 0 && size > limit {
            let reply = Reply::new(552, "5.3.4", "Error: message file too big");
            Some((reply, "message_size_limit"))
        } else if scanner.received_count() >= self.cfg.hopcount_limit {
            Some((
                Reply::new(554, "5.4.0", "Error: too many hops"),
                "hopcount_limit",
            ))
        } else {
            self.restriction_check(super::CheckPoint::EndOfData, Some(&txn.sender), None)
                .map(|r| (r, super::END_OF_DATA))
        };
        if let Some((reply, class)) = refusal {
            let stage = ("END-OF-MESSAGE", class);
            self.log_reject("NOQUEUE", stage, &reply, &txn.sender, &rcpt);
            return DataOutcome::Reply(reply);
        }
        let (reply, accepted) = match conn.finish() {
            Ok(r) => {
                let ok = r.code / 100 == 2;
                (r.to_reply(), ok)
            }
            Err(e) => {
                log::warn!("{e}");
                (proxy_failure(), false)
            }
        };
        conn.quit();
        if accepted {
            // The before-queue filter queued it: accepted as far as the client knows.
            crate::metrics::accepted(size);
        }
        log::info!(
            "proxy-{}: END-OF-MESSAGE: {};{}",
            if accepted { "accept" } else { "reject" },
            reply.log_text(),
            self.whatsup(Some(&txn.sender), Some(&rcpt))
        );
        DataOutcome::Reply(reply)
    }
}
