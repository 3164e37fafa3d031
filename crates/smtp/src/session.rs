//! The SMTP/LMTP client conversation with one server, over any [`Transport`] so it is
//! unit-tested against a scripted server.
//!
//! [`open`] does the set-up: greeting, EHLO (HELO fallback on 5xx) or LHLO, STARTTLS per
//! the TLS level (then EHLO again), AUTH when credentials are given. A [`Client`] then
//! runs one [`Client::transaction`] per message (MAIL with SIZE/BODY/SMTPUTF8/DSN
//! parameters, RCPT per recipient pipelined when offered, DATA dot-stuffed; in LMTP mode
//! one reply per accepted recipient after the final dot), and may be kept for the next
//! message: [`Client::reset`] (RSET) checks it is still usable. Every read is bounded in
//! size (see `reply`) and in time (the Postfix `smtp_*_timeout` of the stage).
//!
//! Failures that concern the whole message at this server are [`SiteFailure`]s
//! (connection lost, 4xx greeting/EHLO/MAIL, TLS or AUTH failure: try the next server;
//! 5xx to HELO/MAIL: bounce everything).

use crate::conn::{TlsStart, Transport};
use crate::content::{Content, SendError};
use crate::envelope::{mail_command, rcpt_command, Envelope, Offers};
use crate::reply::{read_reply, Reply, ReplyError};
use crate::sasl::{self, Credentials, Mechanism, SecurityOptions};
use crate::tls::{Level, TlsClient, TlsInfo, Trust};
use rostfix_proto::DeliveryStatus;
use std::io::BufReader;
use std::time::{Duration, Instant};

/// The Postfix stage timeouts (smtp_helo_timeout, smtp_mail_timeout, ...).
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub helo: Duration,
    pub mail: Duration,
    pub rcpt: Duration,
    pub data_init: Duration,
    pub data_xfer: Duration,
    pub data_done: Duration,
    pub quit: Duration,
    pub rset: Duration,
    pub starttls: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = Duration::from_secs;
        Timeouts {
            helo: s(300),
            mail: s(300),
            rcpt: s(300),
            data_init: s(120),
            data_xfer: s(180),
            data_done: s(600),
            quit: s(300),
            rset: s(20),
            starttls: s(300),
        }
    }
}

/// TLS wanted for this session.
pub struct TlsRequest<'a> {
    pub level: Level,
    pub client: &'a TlsClient,
    /// Names the certificate must match at verify/secure (and, at the DANE level,
    /// for DANE-TA records).
    pub match_names: Vec<String>,
    /// Usable TLSA records when `level` is a DANE level.
    pub dane: Option<std::sync::Arc<Vec<crate::dane::Tlsa>>>,
    /// smtp_tls_loglevel: 1 and up log the "TLS connection established" line.
    pub loglevel: i64,
}

/// AUTH wanted for this session.
pub struct SaslRequest<'a> {
    pub creds: &'a Credentials,
    pub plain_opts: SecurityOptions,
    pub tls_opts: SecurityOptions,
    /// smtp_sasl_auth_soft_bounce: a 5xx AUTH reply defers instead of bouncing.
    pub soft_bounce: bool,
}

/// How to set a session up.
pub struct OpenOptions<'a> {
    pub helo_name: &'a str,
    pub lmtp: bool,
    pub timeouts: &'a Timeouts,
    pub tls: Option<TlsRequest<'a>>,
    pub sasl: Option<SaslRequest<'a>>,
    /// `host[addr]` for texts, `host[addr]:port` for the TLS log line.
    pub peer: &'a str,
    pub relay: &'a str,
    /// The server host name (rustls `ServerName`; never sent as SNI).
    pub server_name: &'a str,
}

/// The outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: DeliveryStatus,
    pub dsn: String,
    pub text: String,
}

/// A failure that concerns every recipient of the message at this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFailure {
    pub status: DeliveryStatus,
    pub dsn: String,
    pub text: String,
    /// Whether the next MX host should be tried (temporary, server-specific failures).
    pub try_next: bool,
}

/// An open session, ready for a transaction.
pub struct Client<T: Transport> {
    io: BufReader<T>,
    peer: String,
    relay: String,
    offers: Offers,
    lmtp: bool,
    timeouts: Timeouts,
    /// What TLS negotiated, if any.
    pub tls: Option<TlsInfo>,
    /// Transactions started on this connection (Postfix's conn_use).
    pub uses: u32,
    /// When the connection was made, for smtp_connection_reuse_time_limit.
    pub created: Instant,
    /// Set when the server closed the session (421) or lost it half-way.
    broken: bool,
    /// Set when a transaction stopped inside DATA (the content became unreadable):
    /// anything written now would be message content, so not even QUIT is sent.
    abandoned: bool,
}

/// Greets, says EHLO/LHLO, starts TLS and authenticates as `opts` asks.
pub fn open<T: Transport>(stream: T, opts: &OpenOptions<'_>) -> Result<Client<T>, SiteFailure> {
    let mut c = Client {
        io: BufReader::new(stream),
        peer: opts.peer.to_string(),
        relay: opts.relay.to_string(),
        offers: Offers::default(),
        lmtp: opts.lmtp,
        timeouts: opts.timeouts.clone(),
        tls: None,
        uses: 0,
        created: Instant::now(),
        broken: false,
        abandoned: false,
    };
    match c.setup(opts) {
        Ok(()) => Ok(c),
        Err(f) => {
            if f.dsn != "4.4.2" {
                c.quit();
            }
            Err(f)
        }
    }
}

impl<T: Transport> Client<T> {
    fn setup(&mut self, opts: &OpenOptions<'_>) -> Result<(), SiteFailure> {
        let t = opts.timeouts;
        self.set_timeout(t.helo, "receiving the initial server greeting")?;
        let greeting = self.read("receiving the initial server greeting")?;
        if greeting.class() != 2 {
            // smtp_skip_5xx_greeting: a 5xx greeting is treated as this host being
            // unusable, not as a verdict on the message.
            return Err(self.failure(
                &format!("4{}", &greeting.dsn()[1..]),
                format!(
                    "host {} refused to talk to me: {}",
                    self.peer,
                    greeting.text()
                ),
            ));
        }
        let mut ext = self.hello(opts.helo_name, t)?;
        if let Some(tls) = &opts.tls {
            if tls.level != Level::None {
                if let Some(again) = self.starttls(tls, opts, &ext)? {
                    ext = again;
                }
            }
        }
        self.offers = Offers::from_extensions(&ext);
        if let Some(sasl) = &opts.sasl {
            self.authenticate(sasl, &ext, t)?;
        }
        Ok(())
    }

    /// EHLO (HELO after a 5xx in SMTP) or LHLO; returns the upper-cased keywords.
    fn hello(&mut self, name: &str, t: &Timeouts) -> Result<Vec<String>, SiteFailure> {
        let (verb, stage) = if self.lmtp {
            ("LHLO", "performing the LHLO handshake")
        } else {
            ("EHLO", "performing the EHLO handshake")
        };
        let reply = self.command(&format!("{verb} {name}"), t.helo, stage)?;
        match reply.class() {
            2 => Ok(reply
                .lines
                .iter()
                .skip(1)
                .map(|l| l.to_ascii_uppercase())
                .collect()),
            5 if !self.lmtp => {
                let helo = self.command(
                    &format!("HELO {name}"),
                    t.helo,
                    "performing the HELO handshake",
                )?;
                if helo.class() != 2 {
                    return Err(self.said(&helo, "HELO"));
                }
                Ok(Vec::new())
            }
            _ => Err(self.said(&reply, verb)),
        }
    }

    /// STARTTLS per the level; returns the keywords of the EHLO after the handshake,
    /// or None when the session stays plaintext (level may, not offered or refused).
    fn starttls(
        &mut self,
        tls: &TlsRequest<'_>,
        opts: &OpenOptions<'_>,
        ext: &[String],
    ) -> Result<Option<Vec<String>>, SiteFailure> {
        if !ext.iter().any(|e| e == "STARTTLS") {
            if tls.level.mandatory() {
                return Err(self.failure(
                    "4.7.4",
                    format!("TLS is required, but was not offered by host {}", self.peer),
                ));
            }
            return Ok(None);
        }
        let reply = self.command("STARTTLS", opts.timeouts.starttls, "sending STARTTLS")?;
        if reply.code != 220 {
            if tls.level.mandatory() {
                return Err(self.failure(
                    "4.7.5",
                    format!(
                        "TLS is required, but host {} refused to start TLS: {}",
                        self.peer,
                        reply.text()
                    ),
                ));
            }
            return Ok(None);
        }
        if !self.io.buffer().is_empty() {
            // Data after the 220 was sent before TLS and cannot be trusted (the client
            // side of CVE-2011-0411): give up on this server.
            return Err(self.failure(
                "4.7.5",
                format!(
                    "host {} sent unexpected data after STARTTLS reply",
                    self.peer
                ),
            ));
        }
        let (config, recorder) = tls
            .client
            .config(tls.level, &tls.match_names, tls.dane.clone())
            .map_err(|e| self.failure("4.7.5", format!("Cannot start TLS: {e}")))?;
        let start = TlsStart {
            config,
            recorder: &recorder,
            server: opts.server_name,
            timeout: opts.timeouts.starttls,
        };
        let info = self.io.get_mut().start_tls(&start).map_err(|e| {
            // A dead connection: nothing more can be said on it.
            SiteFailure {
                status: DeliveryStatus::Deferred,
                dsn: "4.4.2".into(),
                text: format!(
                    "Cannot start TLS: handshake failure with {}: {e}",
                    self.peer
                ),
                try_next: true,
            }
        })?;
        if info.resumed && tls.loglevel >= 2 {
            log::info!("{}: Reusing old session", opts.relay);
        }
        if tls.loglevel >= 1 {
            log::info!(
                "{} TLS connection established to {}: {}",
                info.trust.word(),
                opts.relay,
                info.summary()
            );
        }
        if tls.level.verifies() && info.trust != Trust::Verified {
            let why = if info.trust == Trust::Untrusted {
                "Server certificate not trusted"
            } else {
                "Server certificate not verified"
            };
            log::info!("{}: {why}", opts.relay);
            self.tls = Some(info);
            return Err(self.failure("4.7.5", why.to_string()));
        }
        self.tls = Some(info);
        self.hello(opts.helo_name, opts.timeouts).map(Some)
    }

    fn authenticate(
        &mut self,
        req: &SaslRequest<'_>,
        ext: &[String],
        t: &Timeouts,
    ) -> Result<(), SiteFailure> {
        // A server that offers no AUTH gets the mail unauthenticated, as in Postfix.
        let Some(offered) = sasl::offered(ext) else {
            return Ok(());
        };
        let opts = if self.tls.is_some() {
            req.tls_opts
        } else {
            req.plain_opts
        };
        let Some(mech) = sasl::choose(&offered, opts) else {
            return Err(self.failure(
                "4.7.0",
                format!(
                    "SASL authentication failed; cannot authenticate to server {}: no mechanism available",
                    self.peer
                ),
            ));
        };
        let stage = "sending AUTH";
        let reply = match mech {
            Mechanism::Plain => self.command(
                &format!("AUTH PLAIN {}", sasl::plain_response(req.creds)),
                t.helo,
                stage,
            )?,
            Mechanism::Login => {
                let mut r = self.command("AUTH LOGIN", t.helo, stage)?;
                for part in [&req.creds.user, &req.creds.password] {
                    if r.code != 334 {
                        break;
                    }
                    r = self.command(&sasl::base64(part.as_bytes()), t.helo, stage)?;
                }
                r
            }
        };
        if reply.code == 235 {
            return Ok(());
        }
        let mut dsn = reply.dsn();
        if reply.class() != 4 && (req.soft_bounce || reply.class() != 5) {
            dsn = format!("4{}", &dsn[1..]);
        }
        let text = format!(
            "SASL authentication failed; server {} said: {}",
            self.peer,
            reply.text()
        );
        log::warn!("{text}");
        Err(SiteFailure {
            status: if dsn.starts_with('5') {
                DeliveryStatus::Bounced
            } else {
                DeliveryStatus::Deferred
            },
            try_next: !dsn.starts_with('5'),
            dsn,
            text,
        })
    }

    /// Delivers one message. On `Err` the connection must not be reused.
    /// RFC 8689 4.2.1: REQUIRETLS mail goes only over TLS whose certificate was
    /// verified (DANE, MTA-STS or PKIX; deliver.rs chose the level) and only to a server
    /// that offers REQUIRETLS. Another MX host may do better: try_next.
    fn requiretls_check(&self, offers: &Offers) -> Result<(), SiteFailure> {
        let failure = |dsn: &str, text: String| SiteFailure {
            status: DeliveryStatus::Bounced,
            dsn: dsn.into(),
            text,
            try_next: true,
        };
        match &self.tls {
            None => Err(failure(
                "5.7.10",
                format!("REQUIRETLS: no TLS with host {}", self.peer),
            )),
            Some(t) if t.trust != Trust::Verified => Err(failure(
                "5.7.10",
                format!(
                    "REQUIRETLS: {} TLS connection with host {}, certificate not verified",
                    t.trust.word(),
                    self.peer
                ),
            )),
            Some(_) if !offers.requiretls => Err(failure(
                "5.7.30",
                format!(
                    "REQUIRETLS support required, but not offered by host {}",
                    self.peer
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    pub fn transaction(&mut self, env: &Envelope<'_>) -> Result<Vec<Outcome>, SiteFailure> {
        self.uses += 1;
        let t = self.timeouts.clone();
        let offers = self.offers;
        if env.requiretls {
            self.requiretls_check(&offers)?;
        }
        if env.smtputf8 && !offers.smtputf8 {
            return Err(SiteFailure {
                status: DeliveryStatus::Bounced,
                dsn: "5.6.7".into(),
                text: format!(
                    "SMTPUTF8 is required, but was not offered by host {}",
                    self.peer
                ),
                try_next: false,
            });
        }
        // RFC 6152: 8-bit content to a server without 8BITMIME is converted first, in
        // memory (Content::read_all says why); everything else is streamed.
        let downgraded = if env.eight_bit && !offers.eight_bit_mime && env.mime_downgrade {
            let whole = env.content.read_all().map_err(|e| SiteFailure {
                status: DeliveryStatus::Deferred,
                dsn: "4.3.0".into(),
                text: unreadable(&e),
                // Another server would need the same content.
                try_next: false,
            })?;
            crate::downgrade::to_7bit(&whole)
        } else {
            None
        };
        let downgraded = downgraded.as_deref().map(Content::from_bytes);
        let content = downgraded.as_ref().unwrap_or(env.content);
        let size = content.wire_size();
        if let Some(limit) = offers.size.filter(|l| *l > 0 && size > *l) {
            return Err(SiteFailure {
                status: DeliveryStatus::Bounced,
                dsn: "5.3.4".into(),
                text: format!(
                    "message size {size} exceeds size limit {limit} of server {}",
                    self.peer
                ),
                try_next: false,
            });
        }
        if let (Some(x), Some(offered)) = (env.xforward, offers.xforward) {
            // Not pipelined: Postfix waits for each XFORWARD reply too, and a refusal
            // must stop the transaction before MAIL.
            for cmd in x.commands(offered) {
                let reply = self.command(&cmd, t.mail, "sending XFORWARD")?;
                if reply.class() != 2 {
                    return Err(self.said(&reply, "XFORWARD"));
                }
            }
        }
        let mail = mail_command(env, &offers, size);
        let rcpt_cmds: Vec<String> = env
            .recipients
            .iter()
            .map(|r| rcpt_command(r, &offers))
            .collect();
        self.set_timeout(t.mail, "sending MAIL FROM")?;
        if offers.pipelining {
            // One write for the whole envelope and DATA (RFC 2920 lets DATA end a
            // group); the replies are then read in order. A round trip saved per
            // message is much of a reused session's cost.
            let mut batch = format!("{mail}\r\n");
            for c in &rcpt_cmds {
                batch.push_str(c);
                batch.push_str("\r\n");
            }
            if !env.probe {
                batch.push_str("DATA\r\n");
            }
            self.write(batch.as_bytes(), "sending MAIL FROM")?;
        } else {
            self.write(format!("{mail}\r\n").as_bytes(), "sending MAIL FROM")?;
        }
        let mail_reply = self.read("sending MAIL FROM")?;
        if mail_reply.class() != 2 {
            if offers.pipelining {
                // Drain the pipelined RCPT and DATA replies so the session stays in
                // step; a DATA the server took anyway is ended empty.
                for _ in &rcpt_cmds {
                    self.read("sending RCPT TO")?;
                }
                if env.probe {
                    self.end_probe()?;
                } else {
                    self.abandon_pipelined_data()?;
                }
            }
            return Err(self.said(&mail_reply, "MAIL FROM"));
        }

        let mut outcomes: Vec<Option<Outcome>> = vec![None; env.recipients.len()];
        let mut accepted = Vec::new();
        for (i, cmd) in rcpt_cmds.iter().enumerate() {
            self.set_timeout(t.rcpt, "sending RCPT TO")?;
            if !offers.pipelining {
                self.write(format!("{cmd}\r\n").as_bytes(), "sending RCPT TO")?;
            }
            let reply = self.read("sending RCPT TO")?;
            if reply.class() == 2 {
                if env.probe {
                    // A probe's answer is this reply: nothing goes past RCPT.
                    outcomes[i] = Some(Outcome {
                        status: DeliveryStatus::Sent,
                        dsn: reply.dsn(),
                        text: reply.text(),
                    });
                }
                accepted.push(i);
                continue;
            }
            let outcome = self.outcome(&reply, "RCPT TO");
            if reply.code == 421 {
                // The server is closing: nothing more will be accepted in this session.
                for o in outcomes.iter_mut().filter(|o| o.is_none()) {
                    *o = Some(outcome.clone());
                }
                self.broken = true;
                return Ok(finish(outcomes));
            }
            outcomes[i] = Some(outcome);
        }
        if env.probe {
            self.end_probe()?;
            return Ok(finish(outcomes));
        }
        if accepted.is_empty() {
            if offers.pipelining {
                self.set_timeout(t.data_init, "sending DATA")?;
                self.abandon_pipelined_data()?;
            }
            return Ok(finish(outcomes));
        }

        let data = if offers.pipelining {
            self.set_timeout(t.data_init, "sending DATA")?;
            self.read("sending DATA")?
        } else {
            self.command("DATA", t.data_init, "sending DATA")?
        };
        if data.code != 354 {
            let outcome = self.outcome(&data, "DATA");
            return Ok(fill(outcomes, &accepted, &outcome));
        }
        self.set_timeout(t.data_xfer, "sending message body")?;
        let sent = content.send(&mut |wire: &[u8]| self.write(wire, "sending message body"));
        match sent {
            Ok(()) => {}
            Err(SendError::Write(f)) => return Err(f),
            Err(SendError::Read(e)) => {
                // Part of the message is out and the rest cannot be read: the end of
                // data must not be sent, or the server would deliver it truncated.
                // Only closing the connection undoes it (no QUIT either: inside DATA
                // that would be content).
                self.abandoned = true;
                self.broken = true;
                let outcome = Outcome {
                    status: DeliveryStatus::Deferred,
                    dsn: "4.3.0".into(),
                    text: unreadable(&e),
                };
                return Ok(fill(outcomes, &accepted, &outcome));
            }
        }
        let stage = "sending end of data -- message may be sent more than once";
        self.set_timeout(t.data_done, stage)?;
        if !self.lmtp {
            let done = self.read(stage)?;
            let outcome = self.final_outcome(&done);
            return Ok(fill(outcomes, &accepted, &outcome));
        }
        // LMTP: one reply per accepted recipient, in RCPT order. A connection lost
        // half-way must not turn recipients already confirmed into retries.
        for (n, &i) in accepted.iter().enumerate() {
            match self.read(stage) {
                Ok(reply) => outcomes[i] = Some(self.final_outcome(&reply)),
                Err(f) => {
                    for &j in &accepted[n..] {
                        outcomes[j] = Some(Outcome {
                            status: f.status,
                            dsn: f.dsn.clone(),
                            text: f.text.clone(),
                        });
                    }
                    self.broken = true;
                    return Ok(finish(outcomes));
                }
            }
        }
        Ok(finish(outcomes))
    }

    fn final_outcome(&self, reply: &Reply) -> Outcome {
        if reply.class() == 2 {
            Outcome {
                status: DeliveryStatus::Sent,
                dsn: reply.dsn(),
                text: reply.text(),
            }
        } else {
            self.outcome(reply, "end of DATA")
        }
    }

    /// Reads the reply to a pipelined DATA whose transaction is abandoned (MAIL or
    /// every RCPT refused). RFC 2920 servers refuse it; one that answers 354 anyway is
    /// given an empty message end, whose reply is read and ignored.
    fn abandon_pipelined_data(&mut self) -> Result<(), SiteFailure> {
        let reply = self.read("sending DATA")?;
        if reply.code == 354 {
            self.write(b".\r\n", "sending end of data")?;
            self.read("sending end of data")?;
        }
        Ok(())
    }

    /// Ends a probe's transaction with RSET, so the session is clean for reuse or
    /// QUIT; a refused RSET makes the session unusable but decides nothing.
    fn end_probe(&mut self) -> Result<(), SiteFailure> {
        let t = self.timeouts.rset;
        let reply = self.command("RSET", t, "sending RSET")?;
        if reply.class() != 2 {
            self.broken = true;
        }
        Ok(())
    }

    /// RSET before reusing the connection; false when it is no longer usable.
    pub fn reset(&mut self) -> bool {
        if self.abandoned {
            return false;
        }
        let t = self.timeouts.rset;
        matches!(self.command("RSET", t, "sending RSET"), Ok(r) if r.class() == 2)
    }

    /// QUIT, as a courtesy: its failure changes nothing that was decided.
    pub fn quit(&mut self) {
        if self.abandoned {
            return;
        }
        let t = self.timeouts.quit;
        let _ = self.command("QUIT", t, "sending QUIT");
    }

    /// The `host[addr]:port` label for `relay=`.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// A non-2xx reply as a per-recipient outcome.
    fn outcome(&self, reply: &Reply, command: &str) -> Outcome {
        Outcome {
            status: status_of(reply),
            dsn: reply.dsn(),
            text: format!(
                "host {} said: {} (in reply to {command} command)",
                self.peer,
                reply.text()
            ),
        }
    }

    /// A non-2xx reply that ends the session for every recipient.
    fn said(&self, reply: &Reply, command: &str) -> SiteFailure {
        let o = self.outcome(reply, command);
        SiteFailure {
            try_next: o.status != DeliveryStatus::Bounced,
            status: o.status,
            dsn: o.dsn,
            text: o.text,
        }
    }

    /// A temporary failure at this server: try the next one.
    fn failure(&self, dsn: &str, text: String) -> SiteFailure {
        SiteFailure {
            status: DeliveryStatus::Deferred,
            dsn: dsn.into(),
            text,
            try_next: true,
        }
    }

    fn command(&mut self, cmd: &str, timeout: Duration, stage: &str) -> Result<Reply, SiteFailure> {
        self.set_timeout(timeout, stage)?;
        self.write(format!("{cmd}\r\n").as_bytes(), stage)?;
        self.read(stage)
    }

    fn set_timeout(&mut self, timeout: Duration, stage: &str) -> Result<(), SiteFailure> {
        self.io
            .get_mut()
            .set_timeout(timeout)
            .map_err(|e| self.lost(ReplyError::from(e), stage))
    }

    fn write(&mut self, bytes: &[u8], stage: &str) -> Result<(), SiteFailure> {
        let io = self.io.get_mut();
        io.write_all(bytes)
            .and_then(|()| io.flush())
            .map_err(|e| self.lost(ReplyError::from(e), stage))
    }

    fn read(&mut self, stage: &str) -> Result<Reply, SiteFailure> {
        read_reply(&mut self.io).map_err(|e| self.lost(e, stage))
    }

    /// Postfix's texts for a broken conversation; always worth another host.
    fn lost(&self, e: ReplyError, stage: &str) -> SiteFailure {
        let text = match e {
            ReplyError::Timeout => {
                format!("conversation with {} timed out while {stage}", self.peer)
            }
            ReplyError::Closed => format!("lost connection with {} while {stage}", self.peer),
            other => format!("error talking to {} while {stage}: {other}", self.peer),
        };
        SiteFailure {
            status: DeliveryStatus::Deferred,
            dsn: "4.4.2".into(),
            text,
            try_next: true,
        }
    }
}

impl<T: Transport> Client<T> {
    /// Whether the session can carry another transaction (not after a 421 or a
    /// connection lost in LMTP's reply phase).
    pub fn reusable(&self) -> bool {
        !self.broken && self.io.buffer().is_empty()
    }
}

fn status_of(reply: &Reply) -> DeliveryStatus {
    match reply.class() {
        2 => DeliveryStatus::Sent,
        5 => DeliveryStatus::Bounced,
        _ => DeliveryStatus::Deferred,
    }
}

/// Gives every accepted recipient the same outcome.
fn fill(mut outcomes: Vec<Option<Outcome>>, accepted: &[usize], outcome: &Outcome) -> Vec<Outcome> {
    for &i in accepted {
        outcomes[i] = Some(outcome.clone());
    }
    finish(outcomes)
}

/// Every recipient has an outcome by construction; a gap would be a bug, reported as
/// a deferral rather than a panic.
fn finish(outcomes: Vec<Option<Outcome>>) -> Vec<Outcome> {
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome {
                status: DeliveryStatus::Deferred,
                dsn: "4.3.0".into(),
                text: "internal error: no outcome for recipient".into(),
            })
        })
        .collect()
}

/// The text for content that could not be read from the queue file.
fn unreadable(e: &std::io::Error) -> String {
    format!("cannot read message content: {e}")
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
