//! One SMTP session: the state machine from the greeting to QUIT, over any
//! `Read + Write` (a TCP socket in production, in-memory buffers in tests), handing
//! accepted messages to a [`QueueSink`].
//!
//! Protocol state: HELO/EHLO (optional, as with Postfix's default
//! `smtpd_helo_required = no`), one mail transaction at a time (MAIL, RCPT..., DATA),
//! RSET/HELO/EHLO reset it. Every reply carries an enhanced status code except the
//! greeting, the HELO/EHLO replies and 354, as in Postfix. Errors (4xx/5xx replies) are
//! counted; at `smtpd_hard_error_limit` the session ends with 421. A read timeout ends it
//! with 421 too. AUTH and restriction lists are later layers: the command dispatch in
//! [`Session::dispatch`] is where they hook in.
//!
//! TLS (RFC 3207): STARTTLS is offered in EHLO only while the session is plain and a
//! certificate is loaded. Input the client pipelined after STARTTLS is discarded before
//! the handshake (CVE-2011-0411), and after it the session starts over (no HELO, no
//! transaction). With smtpd_tls_security_level=encrypt, only EHLO HELO STARTTLS NOOP
//! QUIT RSET HELP are allowed before TLS; the rest get 530.
//!
//! ESMTP extensions and limits kept in their own files: the MAIL/RCPT parameters (SIZE,
//! BODY, SMTPUTF8, DSN) in dsn_params.rs, BDAT in bdat.rs and chunk.rs, the queue-file
//! intake shared by DATA and BDAT in receive.rs, the soft error delay, bare-newline
//! policy and header limit in limits.rs, and the anvil rate limits in anvil_client.rs.
//! With smtpd_forbid_bare_newline = yes a command or message with a bare LF gets
//! `550 5.5.2 <host> Error: bare <LF> received` and the session ends (Postfix 3.9).
//! Input sent ahead of a reply the client had to wait for is improper pipelining
//! (pipelining.rs): under smtpd_forbid_unauth_pipelining it ends the session with 554.

use crate::anvil_client::Anvil;
use crate::client::ClientInfo;
use crate::command::{parse_command, Command, CommandError, PathArg};
use crate::data::DataMachine;
use crate::dsn_params::{
    mail_params, needs_smtputf8, rcpt_params, utf8_without_smtputf8, MailParams, ParamPolicy,
    RcptParams, VerpPolicy,
};
use crate::io::{is_timeout, LineRead, SmtpIo};
use crate::limits::error_delay;
use crate::reply::Reply;
use crate::settings::Settings;
use crate::sink::QueueSink;
use crate::stats::CommandStats;
#[cfg(test)]
use crate::tls::Duplex;
use crate::tls::{SecurityLevel, TlsInfo, Transport};
use rostfix_queue::{Envelope, Recipient};
use std::time::{SystemTime, UNIX_EPOCH};

/// At most this much input is read and dropped before hanging up on improper
/// pipelining (see [`SmtpIo::discard_sent_input`]).
const DISCARD_LIMIT: usize = 64 * 1024;

/// Content is handed to the queue in pieces of about this size.
const WRITE_CHUNK: usize = 64 * 1024;

/// The restriction class of a bare-LF refusal in the metrics (crate::metrics).
const BARE_LF: &str = "smtpd_forbid_bare_newline";
/// The restriction class of an smtpd_end_of_data_restrictions refusal.
const END_OF_DATA: &str = "smtpd_end_of_data_restrictions";

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Quit,
    /// The client closed the connection without QUIT.
    Lost,
    Timeout,
    TooManyErrors,
    /// An HTTP or header-like line: not an SMTP client.
    Forbidden,
    /// A bare LF under smtpd_forbid_bare_newline = yes.
    BareNewline,
    /// Input sent before a reply it had to wait for, under
    /// smtpd_forbid_unauth_pipelining (pipelining.rs).
    ImproperPipelining,
    /// smtpd_tls_req_ccert: the client had no trusted certificate.
    CertRequired,
}

/// The current mail transaction.
#[derive(Debug, Clone)]
struct Transaction {
    /// Tells this transaction's BDAT message from one of an earlier transaction.
    serial: u64,
    sender: String,
    recipients: Vec<String>,
    /// MAIL FROM parameters (SIZE, BODY, SMTPUTF8, RET, ENVID).
    params: MailParams,
    /// NOTIFY and ORCPT of each recipient, parallel to `recipients`.
    rcpt_dsn: Vec<RcptParams>,
    /// The MAIL command as the client sent it, for smtpd_proxy_filter (proxy.rs).
    mail_line: String,
}

/// What the DATA phase ended with.
enum DataOutcome {
    Reply(Reply),
    Timeout,
    Lost,
    /// A bare LF under smtpd_forbid_bare_newline = yes: reply and end the session.
    BareNewline,
}

/// One client session.
pub struct Session<'a, S: QueueSink> {
    cfg: &'a Settings,
    client: ClientInfo,
    /// Client address is in mynetworks.
    trusted: bool,
    sink: S,
    helo: Option<String>,
    esmtp: bool,
    txn: Option<Transaction>,
    errors: u32,
    junk: u32,
    stats: CommandStats,
    /// Upper-case name of the last command, for "lost connection after X".
    last: String,
    /// Set once the TLS handshake completed.
    tls: Option<TlsInfo>,
    /// The client's certificate, when one was asked for (smtpd_tls_ask_ccert) and sent.
    ccert: Option<crate::ccert::ClientCert>,
    /// The ETRN domain while smtpd_etrn_restrictions run (policy requests, replies).
    etrn_domain: Option<String>,
    /// The message being received with BDAT, between chunks.
    bdat_msg: Option<bdat::BdatMessage<S::Message>>,
    /// Transactions started so far (the next one's serial).
    serial: u64,
    /// Per-client rate limits (anvil_client.rs); disabled unless main.rs sets it.
    anvil: Anvil,
    /// SMTP AUTH state (auth.rs).
    auth: crate::auth::AuthState,
    /// Improper pipelining was seen (and logged) in this session.
    ill_pipelining: bool,
    /// Headers the restrictions' PREPEND actions asked for, for this transaction
    /// (a cell: the checks run on a shared borrow of the session).
    prepend: std::cell::RefCell<Vec<String>>,
    /// HOLD, DISCARD, FILTER, REDIRECT, BCC the restrictions asked for, for this
    /// transaction (a cell for the same reason).
    actions: std::cell::RefCell<crate::restrictions::queue_actions::QueueActions>,
    /// The connecting client is in smtpd_authorized_xclient_hosts /
    /// smtpd_authorized_xforward_hosts (decided once, as Postfix does).
    xclient_allowed: bool,
    xforward_allowed: bool,
    /// XFORWARD's description of the next message's original client.
    forward: Option<xclient::Forwarded>,
    /// The current command line as received (smtpd_proxy_filter relays it).
    line: String,
    /// The before-queue filter connection of this transaction (proxy.rs).
    proxy: proxy::ProxyState,
    /// smtpd_milters of this session (milter.rs), connected before the greeting.
    milters: Option<rostfix_milter::Milters>,
    /// A milter refused the connection: the reply to every command but QUIT.
    milter_denied: Option<Reply>,
    /// A milter said DISCARD before the end of the message.
    milter_discard: bool,
}

impl<'a, S: QueueSink> Session<'a, S> {
    pub fn new(cfg: &'a Settings, client: ClientInfo, sink: S) -> Self {
        let trusted = client.ip.is_some_and(|ip| cfg.mynetworks.contains(ip));
        let xclient_allowed = cfg.session.xclient_hosts.contains(client.ip);
        let xforward_allowed = cfg.session.xforward_hosts.contains(client.ip);
        Session {
            cfg,
            client,
            trusted,
            sink,
            helo: None,
            esmtp: false,
            txn: None,
            errors: 0,
            junk: 0,
            stats: CommandStats::default(),
            last: "CONNECT".into(),
            tls: None,
            ccert: None,
            etrn_domain: None,
            bdat_msg: None,
            serial: 0,
            anvil: Anvil::disabled(),
            auth: crate::auth::AuthState::default(),
            ill_pipelining: false,
            prepend: std::cell::RefCell::new(Vec::new()),
            actions: std::cell::RefCell::default(),
            xclient_allowed,
            xforward_allowed,
            forward: None,
            line: String::new(),
            proxy: proxy::ProxyState::default(),
            milters: None,
            milter_denied: None,
            milter_discard: false,
        }
    }

    /// Uses `anvil` for the message, recipient (and AUTH) rate limits.
    pub fn with_anvil(mut self, anvil: Anvil) -> Self {
        self.anvil = anvil;
        self
    }

    /// Runs the whole session and logs connect/disconnect.
    #[cfg(test)]
    pub fn run<R: std::io::Read, W: std::io::Write>(&mut self, input: R, output: W) -> SessionEnd {
        self.run_over(Duplex { input, output }, false)
    }

    /// Runs the whole session over `transport`; `wrapper` (smtpd_tls_wrappermode) does
    /// the TLS handshake before the greeting.
    pub fn run_over<T: Transport>(&mut self, transport: T, wrapper: bool) -> SessionEnd {
        let who = self.client.log_name();
        log::info!("connect from {who}");
        self.milter_connect();
        let mut io = SmtpIo::over(transport);
        if self.cfg.per_record_deadline {
            io.set_record_deadline(self.cfg.timeout);
        }
        if wrapper && !self.handshake(&mut io) {
            log::info!("disconnect from {who} {}", self.stats.summary());
            return SessionEnd::Lost;
        }
        let refused = if wrapper {
            self.refuse_without_cert(&mut io, false)
        } else {
            None
        };
        let end = match refused.or_else(|| self.pipelining_before_greeting(&mut io, wrapper)) {
            Some(end) => end,
            None => {
                io.send(&Reply::plain(220, vec![self.cfg.banner.clone()]));
                self.command_loop(&mut io)
            }
        };
        if let Err(e) = io.flush() {
            log::debug!("flush to {who} failed: {e}");
        }
        if end == SessionEnd::ImproperPipelining {
            io.discard_sent_input(DISCARD_LIMIT);
        }
        self.milter_quit();
        log::info!("disconnect from {who} {}", self.stats.summary());
        end
    }

    fn command_loop<T: Transport>(&mut self, io: &mut SmtpIo<T>) -> SessionEnd {
        let who = self.client.log_name();
        loop {
            if self.errors >= self.cfg.hard_error_limit {
                log::info!("too many errors after {} from {who}", self.last);
                io.send(&Reply::new(
                    421,
                    "4.7.0",
                    format!("{} Error: too many errors", self.cfg.myhostname),
                ));
                return SessionEnd::TooManyErrors;
            }
            let line = match io.read_line(self.cfg.line_length_limit) {
                Ok(LineRead::Line(line)) => line,
                Ok(LineRead::TooLong) => {
                    self.finish(
                        "unknown",
                        io,
                        Reply::new(500, "5.5.2", "Error: line too long"),
                    );
                    continue;
                }
                Ok(LineRead::Eof) => {
                    log::info!("lost connection after {} from {who}", self.last);
                    return SessionEnd::Lost;
                }
                Err(e) if is_timeout(&e) => return self.timeout(io),
                Err(e) => {
                    log::info!("lost connection after {} from {who}: {e}", self.last);
                    return SessionEnd::Lost;
                }
            };
            if io.last_line_bare_lf() && self.cfg.proto.rejects_bare_lf(self.client.ip) {
                return self.bare_newline(io, "unknown");
            }
            match parse_command(&line) {
                Ok(cmd) => {
                    if self.cfg.proxy_filter.is_some() {
                        self.line = String::from_utf8_lossy(&line)
                            .trim_end_matches(['\r', '\n'])
                            .to_string();
                    }
                    self.last = cmd.name().to_ascii_uppercase();
                    if cmd.ends_group() {
                        if let Some(end) = self.pipelining_after(cmd.name(), io) {
                            return end;
                        }
                    }
                    if let Some(end) = self.dispatch(cmd, io) {
                        return end;
                    }
                }
                Err(CommandError::Forbidden(_)) => return self.forbidden(io, &line),
                Err(CommandError::Unknown(verb))
                    if self.cfg.session.forbidden_commands.matches(&verb) =>
                {
                    return self.forbidden(io, &line)
                }
                Err(e) => {
                    self.last = e.name().to_ascii_uppercase();
                    let milter = match e {
                        CommandError::Unknown(_) => self.milter_unknown(&line),
                        _ => None,
                    };
                    let reply = milter.unwrap_or_else(|| error_reply(&e));
                    self.finish(e.name(), io, reply);
                }
            }
        }
    }

    /// A header-like line or a verb in smtpd_forbidden_commands: not an SMTP client
    /// (a web browser, a pasted message); Postfix's reply and hang-up.
    fn forbidden<T: Transport>(&mut self, io: &mut SmtpIo<T>, line: &[u8]) -> SessionEnd {
        let who = self.client.log_name();
        let shown: String = String::from_utf8_lossy(line).chars().take(100).collect();
        log::warn!("non-SMTP command from {who}: {shown}");
        self.stats.record("unknown", false);
        io.send(&Reply::new(
            221,
            "2.7.0",
            "Error: I can break rules, too. Goodbye.",
        ));
        SessionEnd::Forbidden
    }

    /// smtpd_forbid_bare_newline: the reply, the log line, and the end of the session.
    fn bare_newline<T: Transport>(&mut self, io: &mut SmtpIo<T>, name: &str) -> SessionEnd {
        log::info!(
            "bare <LF> received after {} from {}",
            self.last,
            self.client.log_name()
        );
        self.stats.record(name, false);
        io.send(&Reply::new(
            self.cfg.proto.bare_newline_code,
            "5.5.2",
            format!("{} Error: bare <LF> received", self.cfg.myhostname),
        ));
        SessionEnd::BareNewline
    }

    /// Sends a command's final reply, counting it for statistics and the error limit.
    /// Past smtpd_soft_error_limit an error reply is delayed by smtpd_error_sleep_time
    /// (the replies before it are flushed first, so pipelined replies keep their order).
    fn finish<T: Transport>(&mut self, name: &str, io: &mut SmtpIo<T>, reply: Reply) {
        if reply.is_error() {
            self.errors = self.errors.saturating_add(1);
            if let Some(pause) = error_delay(&self.cfg.proto, self.errors) {
                if let Err(e) = io.flush() {
                    log::debug!("flush failed: {e}");
                }
                std::thread::sleep(pause);
            }
        }
        self.stats.record(name, !reply.is_error());
        io.send(&reply);
    }

    fn timeout<T: Transport>(&mut self, io: &mut SmtpIo<T>) -> SessionEnd {
        log::info!(
            "timeout after {} from {}",
            self.last,
            self.client.log_name()
        );
        io.send(&Reply::new(
            421,
            "4.4.2",
            format!("{} Error: timeout exceeded", self.cfg.myhostname),
        ));
        SessionEnd::Timeout
    }

    /// The TLS handshake; false (logged) when it failed and the session must end.
    fn handshake<T: Transport>(&mut self, io: &mut SmtpIo<T>) -> bool {
        let who = self.client.log_name();
        if self.cfg.session.tls_loglevel >= 2 {
            log::info!("setting up TLS connection from {who}");
        }
        match io.start_tls() {
            Ok(((info, ccert), discarded)) => {
                if discarded > 0 {
                    log::info!("discarded {discarded} bytes of pipelined plaintext after STARTTLS from {who}");
                }
                // smtpd_tls_loglevel: 0 logs nothing of TLS, 1 the summary line, 2
                // the client certificate's names and fingerprints too.
                if let (Some(c), true) = (&ccert, self.cfg.session.tls_loglevel >= 2) {
                    log::info!(
                        "{who}: subject_CN={}, issuer={}, cert fingerprint={}, pkey fingerprint={}",
                        c.subject_cn,
                        c.issuer_cn,
                        c.cert_fingerprint,
                        c.pkey_fingerprint
                    );
                }
                if self.cfg.session.tls_loglevel >= 1 {
                    let kind = match &ccert {
                        None => "Anonymous",
                        Some(c) if c.trusted => "Trusted",
                        Some(_) => "Untrusted",
                    };
                    log::info!(
                        "{kind} TLS connection established from {who}: {}",
                        info.summary()
                    );
                }
                crate::metrics::tls_handshake(&info.protocol, &info.cipher);
                self.tls = Some(info);
                self.ccert = ccert;
                true
            }
            Err(e) if is_timeout(&e) => {
                log::info!("timeout in TLS handshake from {who}");
                crate::metrics::tls_handshake_failure("timeout");
                false
            }
            Err(e) => {
                log::warn!("TLS handshake failed from {who}: {e}");
                crate::metrics::tls_handshake_failure("error");
                false
            }
        }
    }

    /// smtpd_tls_req_ccert after a handshake without a trusted client certificate:
    /// Postfix's 421, sent (after STARTTLS) in answer to the client's next command,
    /// since the TLS session itself is sound and can carry the reason.
    fn refuse_without_cert<T: Transport>(
        &mut self,
        io: &mut SmtpIo<T>,
        await_command: bool,
    ) -> Option<SessionEnd> {
        if !self.cfg.tls.req_ccert || self.ccert.as_ref().is_some_and(|c| c.trusted) {
            return None;
        }
        let why = match self.ccert {
            Some(_) => "Client certificate not trusted",
            None => "No client certificate presented",
        };
        log::info!("NOQUEUE: abort: TLS from {}: {why}", self.client.log_name());
        if await_command {
            // Whatever it says (EHLO, normally) gets the 421; its content is moot.
            let _ = io.read_line(self.cfg.line_length_limit);
        }
        io.send(&Reply::new(
            421,
            "4.7.1",
            format!("{} Error: {why}", self.cfg.myhostname),
        ));
        Some(SessionEnd::CertRequired)
    }

    /// STARTTLS: 220, the handshake, then a fresh session state (RFC 3207 4.2).
    fn starttls<T: Transport>(&mut self, io: &mut SmtpIo<T>) -> Option<SessionEnd> {
        let name = "starttls";
        let reply = if self.tls.is_some() {
            Reply::new(554, "5.5.1", "Error: TLS already active")
        } else if self.cfg.tls.level == SecurityLevel::None && !io.tls_available() {
            Reply::new(502, "5.5.1", "Error: command not implemented")
        } else if !io.tls_available() {
            Reply::new(454, "4.7.0", "TLS not available")
        } else {
            self.finish(name, io, Reply::new(220, "2.0.0", "Ready to start TLS"));
            if !self.handshake(io) {
                log::info!(
                    "lost connection after STARTTLS from {}",
                    self.client.log_name()
                );
                return Some(SessionEnd::Lost);
            }
            if let Some(end) = self.refuse_without_cert(io, true) {
                return Some(end);
            }
            self.helo = None;
            self.esmtp = false;
            self.txn = None;
            // RFC 3207 4.2: forget everything learned before TLS, AUTH included.
            self.auth = crate::auth::AuthState::default();
            return None;
        };
        self.finish(name, io, reply);
        None
    }

    /// smtpd_tls_security_level=encrypt: what may be done before TLS.
    fn needs_tls_first(&self, cmd: &Command) -> bool {
        self.cfg.tls.level == SecurityLevel::Encrypt
            && self.tls.is_none()
            && !matches!(
                cmd,
                Command::Ehlo(_)
                    | Command::Helo(_)
                    | Command::Starttls
                    | Command::Noop
                    | Command::Quit
                    | Command::Rset
                    | Command::Help
            )
    }

    /// The reply to a DATA or BDAT command (`name`), or how the session ended while the
    /// message text was read.
    fn message_reply<T: Transport>(
        &mut self,
        outcome: DataOutcome,
        name: &str,
        io: &mut SmtpIo<T>,
    ) -> Result<Reply, SessionEnd> {
        match outcome {
            DataOutcome::Reply(r) => Ok(r),
            DataOutcome::Timeout => {
                self.stats.record(name, false);
                Err(self.timeout(io))
            }
            DataOutcome::Lost => {
                self.stats.record(name, false);
                log::info!(
                    "lost connection after {} from {}",
                    name.to_ascii_uppercase(),
                    self.client.log_name()
                );
                Err(SessionEnd::Lost)
            }
            DataOutcome::BareNewline => Err(self.bare_newline(io, name)),
        }
    }

    /// Runs one command; Some(end) when the session is over.
    fn dispatch<T: Transport>(&mut self, cmd: Command, io: &mut SmtpIo<T>) -> Option<SessionEnd> {
        let name = cmd.name();
        if self.needs_tls_first(&cmd) {
            let reply = Reply::new(530, "5.7.0", "Must issue a STARTTLS command first");
            self.finish(name, io, reply);
            return None;
        }
        if let Some(denied) = &self.milter_denied {
            // BDAT falls through: its chunk must be read, and with no MAIL it fails.
            if !matches!(
                cmd,
                Command::Quit | Command::Rset | Command::Noop | Command::Bdat { .. }
            ) {
                let reply = denied.clone();
                self.finish(name, io, reply);
                return None;
            }
        }
        let offer_tls = self.tls.is_none() && io.tls_available();
        let reply = match cmd {
            Command::Bdat { size, last } => {
                let outcome = self.bdat(size, last, io);
                match self.message_reply(outcome, name, io) {
                    Ok(r) => r,
                    Err(end) => return Some(end),
                }
            }
            Command::Starttls => return self.starttls(io),
            Command::Auth { mechanism, initial } => {
                return self.auth_command(mechanism, initial, io)
            }
            Command::Xclient(args) => self.xclient(&args),
            Command::Xforward(args) => self.xforward(&args),
            Command::Helo(host) => self.helo(host, false, offer_tls),
            Command::Ehlo(host) => self.helo(host, true, offer_tls),
            Command::Mail(arg) => self.mail(arg),
            Command::Rcpt(arg) => self.rcpt(arg),
            Command::Data => {
                let outcome = self.data(io);
                if self.txn.is_none() {
                    // XFORWARD describes one message.
                    self.forward = None;
                }
                match self.message_reply(outcome, name, io) {
                    Ok(r) => r,
                    Err(end) => return Some(end),
                }
            }
            Command::Rset => {
                self.junk_command();
                self.proxy_close();
                self.milter_abort();
                self.txn = None;
                self.forward = None;
                Reply::new(250, "2.0.0", "Ok")
            }
            Command::Noop => {
                self.junk_command();
                Reply::new(250, "2.0.0", "Ok")
            }
            Command::Vrfy(_) if self.cfg.proto.disable_vrfy => {
                self.junk_command();
                Reply::new(502, "5.5.1", "VRFY command is disabled")
            }
            Command::Vrfy(what) => {
                self.junk_command();
                // We cannot verify without the local delivery agent's knowledge;
                // RFC 5321 3.5.3 says 252 then.
                Reply::new(252, "2.0.0", what)
            }
            Command::Etrn(arg) => self.etrn(&arg),
            Command::Help => {
                self.junk_command();
                Reply::new(
                    214,
                    "2.0.0",
                    "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT STARTTLS",
                )
            }
            Command::Quit => {
                self.proxy_close();
                self.finish(name, io, Reply::new(221, "2.0.0", "Bye"));
                return Some(SessionEnd::Quit);
            }
        };
        self.finish(name, io, reply);
        None
    }

    /// Postfix's smtpd_junk_command_limit: NOOP/RSET/VRFY/HELP floods become errors.
    fn junk_command(&mut self) {
        self.junk = self.junk.saturating_add(1);
        if self.junk > self.cfg.junk_command_limit {
            self.errors = self.errors.saturating_add(1);
        }
    }

    fn helo(&mut self, host: String, esmtp: bool, offer_tls: bool) -> Reply {
        // RFC 5321 4.1.4: HELO/EHLO in a session resets the transaction.
        self.proxy_close();
        self.milter_abort();
        self.txn = None;
        self.forward = None;
        self.helo = Some(host.clone());
        self.esmtp = esmtp;
        if let Some(reply) = self.restriction_check(CheckPoint::Helo, None, None) {
            return reply;
        }
        if let Some(reply) = self.milter_helo(&host, if esmtp { "EHLO" } else { "HELO" }) {
            return reply;
        }
        let mut lines = vec![self.cfg.myhostname.clone()];
        if esmtp {
            lines.push("PIPELINING".into());
            lines.push(match self.cfg.message_size_limit {
                0 => "SIZE".into(),
                n => format!("SIZE {n}"),
            });
            if !self.cfg.proto.disable_vrfy {
                lines.push("VRFY".into());
            }
            lines.push("ETRN".into());
            if offer_tls {
                lines.push("STARTTLS".into());
            }
            if let Some(auth) = self.auth_ehlo_keyword() {
                lines.push(auth);
            }
            lines.push("ENHANCEDSTATUSCODES".into());
            lines.push("8BITMIME".into());
            lines.push("DSN".into());
            if self.cfg.proto.smtputf8_enable {
                lines.push("SMTPUTF8".into());
            }
            if self.requiretls_offered() {
                lines.push("REQUIRETLS".into());
            }
            if self.cfg.proxy_filter.is_none() {
                // BDAT is not relayed to a before-queue filter (proxy.rs).
                lines.push("CHUNKING".into());
            }
            if self.xclient_allowed {
                lines.push(
                    "XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT".into(),
                );
            }
            if self.xforward_allowed {
                lines.push("XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT".into());
            }
            if self.verp_allowed() {
                lines.push("XVERP".into());
            }
            self.discard_ehlo_keywords(&mut lines);
        }
        Reply::plain(250, lines)
    }

    /// RFC 8689 4.1: REQUIRETLS is offered (and its MAIL parameter taken) only on a
    /// TLS session.
    fn requiretls_offered(&self) -> bool {
        self.cfg.proto.requiretls_enable && self.tls.is_some()
    }

    /// smtpd_authorized_verp_clients, for the client as it is now (XCLIENT may have
    /// changed it), as Postfix matches at MAIL time.
    fn verp_allowed(&self) -> bool {
        self.cfg.session.verp_clients.contains(self.client.ip)
    }

    /// Postfix's smtpd_check_queue (storage.rs): no MAIL while the queue is short of
    /// space.
    fn queue_space_check(&self) -> Option<Reply> {
        let free = self.sink.free_space()?;
        let why =
            crate::storage::shortage(free, self.cfg.queue_minfree, self.cfg.message_size_limit)?;
        log::warn!("{why}");
        Some(crate::storage::insufficient_storage())
    }

    fn mail(&mut self, arg: PathArg) -> Reply {
        if self.cfg.session.helo_required && self.helo.is_none() {
            return Reply::new(503, "5.5.1", "Error: send HELO/EHLO first");
        }
        if self.txn.is_some() {
            return Reply::new(503, "5.5.1", "Error: nested MAIL command");
        }
        let policy = ParamPolicy {
            size_limit: self.cfg.message_size_limit,
            smtputf8_enable: self.cfg.proto.smtputf8_enable,
            requiretls_offered: self.requiretls_offered(),
            verp: self.verp_allowed().then_some(VerpPolicy {
                default: &self.cfg.session.verp_default,
                filter: &self.cfg.session.verp_filter,
            }),
        };
        let params = match mail_params(&arg.params, policy) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        if params.verp.is_some() && arg.address.is_empty() {
            return Reply::new(503, "5.5.4", "Error: XVERP requires non-null sender");
        }
        if !params.smtputf8 && needs_smtputf8(&arg.address) {
            return utf8_without_smtputf8();
        }
        self.prepend.get_mut().clear();
        *self.actions.get_mut() = Default::default();
        self.proxy_close();
        if let Some(reply) = self.restriction_check(CheckPoint::Mail, Some(&arg.address), None) {
            return reply;
        }
        if !self.anvil.message_allowed() {
            return self.anvil.message_rate_reply();
        }
        if let Some(reply) = self.queue_space_check() {
            return reply;
        }
        if let Some(reply) = self.milter_mail(&arg.address, &arg.params) {
            return reply;
        }
        self.serial = self.serial.wrapping_add(1);
        self.txn = Some(Transaction {
            serial: self.serial,
            sender: arg.address,
            recipients: Vec::new(),
            params,
            rcpt_dsn: Vec::new(),
            mail_line: std::mem::take(&mut self.line),
        });
        Reply::new(250, "2.1.0", "Ok")
    }

    fn rcpt(&mut self, arg: PathArg) -> Reply {
        let Some(txn) = self.txn.as_ref() else {
            return Reply::new(503, "5.5.1", "Error: need MAIL command");
        };
        let dsn = match rcpt_params(&arg.params, txn.params.smtputf8) {
            Ok(d) => d,
            Err(reply) => return reply,
        };
        if !txn.params.smtputf8 && needs_smtputf8(&arg.address) {
            return utf8_without_smtputf8();
        }
        if txn.recipients.len() >= self.cfg.recipient_limit {
            return Reply::new(452, "4.5.3", "Error: too many recipients");
        }
        // Client, HELO, sender (smtpd_delay_reject), relay and recipient lists.
        if let Some(reply) =
            self.restriction_check(CheckPoint::Rcpt, Some(&txn.sender), Some(&arg.address))
        {
            self.milter_rejected_rcpt(&arg.address, &arg.params, &reply);
            return reply;
        }
        if let Some(reply) = self.suppression_check(&txn.sender, &arg.address) {
            self.milter_rejected_rcpt(&arg.address, &arg.params, &reply);
            return reply;
        }
        if !self.anvil.recipient_allowed() {
            return self.anvil.recipient_rate_reply();
        }
        if let Some(reply) = self.milter_rcpt(&arg.address, &arg.params) {
            return reply;
        }
        let command = std::mem::take(&mut self.line);
        if let Err(reply) = self.proxy_rcpt(&command) {
            return reply;
        }
        if let Some(txn) = self.txn.as_mut() {
            txn.recipients.push(arg.address);
            txn.rcpt_dsn.push(dsn);
        }
        Reply::new(250, "2.1.5", "Ok")
    }

    fn protocol(&self) -> &'static str {
        // RFC 3848: the A for an authenticated session.
        match (self.esmtp, self.tls.is_some(), self.auth.username.is_some()) {
            (true, true, true) => "ESMTPSA",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, false, false) => "ESMTP",
            (false, _, _) => "SMTP",
        }
    }

    /// `ID: reject: STAGE from C: REPLY; from=<s> to=<r> proto=P helo=<h>`, counted
    /// for the metrics endpoint under `restriction` (the limit or list that refused).
    fn log_reject(
        &self,
        id: &str,
        (stage, restriction): (&str, &str),
        reply: &Reply,
        sender: &str,
        rcpt: &str,
    ) {
        crate::metrics::reject(stage, restriction, reply.code());
        let helo = match &self.helo {
            Some(h) => format!(" helo=<{h}>"),
            None => String::new(),
        };
        log::info!(
            "{id}: reject: {stage} from {}: {}; from=<{sender}> to=<{rcpt}> proto={}{helo}",
            self.client.log_name(),
            reply.log_text(),
            self.protocol()
        );
    }

    fn envelope(&self, txn: &Transaction) -> Envelope {
        let arrival_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mut attrs = vec![
            ("client_name".to_string(), self.client.name.clone()),
            (
                "reverse_client_name".to_string(),
                self.client.reverse_name.clone(),
            ),
            ("client_address".to_string(), self.client.addr()),
        ];
        if let Some(h) = &self.helo {
            attrs.push(("helo_name".to_string(), h.clone()));
        }
        attrs.push(("protocol".to_string(), self.protocol().to_string()));
        attrs.extend(self.auth.queue_attrs());
        attrs.extend(self.forwarded_attrs());
        attrs.extend(txn.params.attributes());
        if self.cfg.receive_overrides.no_address_mappings {
            // receive_override_options = no_address_mappings: the addresses were
            // already rewritten before an after-queue filter handed the mail back;
            // qmgr must not expand virtual aliases a second time.
            attrs.push(("alias_expanded".to_string(), "1".to_string()));
        }
        if let Some(f) = &self.cfg.content_filter {
            attrs.push((rostfix_queue::FILTER_ATTR.to_string(), f.to_attr()));
        }
        Envelope {
            sender: txn.sender.clone(),
            arrival_us,
            attrs,
            recipients: txn
                .recipients
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let dsn = txn.rcpt_dsn.get(i);
                    Recipient {
                        address: r.clone(),
                        orig_address: dsn
                            .and_then(|d| d.orcpt.clone())
                            .unwrap_or_else(|| r.clone()),
                        notify: dsn.map(|d| d.notify.clone()).unwrap_or_default(),
                        ..Recipient::default()
                    }
                })
                .collect(),
        }
    }

    /// DATA: creates the queue file, streams the content into it, commits.
    fn data<T: Transport>(&mut self, io: &mut SmtpIo<T>) -> DataOutcome {
        let serial = self.txn.as_ref().map(|t| t.serial);
        if self
            .bdat_msg
            .as_ref()
            .is_some_and(|b| Some(b.intake.serial) == serial)
        {
            // RFC 3030 3: DATA and BDAT cannot be mixed in one transaction.
            return DataOutcome::Reply(Reply::new(
                503,
                "5.5.1",
                "Error: BDAT and DATA cannot be mixed in one transaction",
            ));
        }
        let txn = match self.txn.take() {
            None => {
                return DataOutcome::Reply(Reply::new(503, "5.5.1", "Error: need RCPT command"))
            }
            Some(t) if t.recipients.is_empty() => {
                self.txn = Some(t);
                return DataOutcome::Reply(Reply::new(554, "5.5.1", "Error: no valid recipients"));
            }
            Some(t) => {
                if let Some(reply) = self.restriction_check(CheckPoint::Data, Some(&t.sender), None)
                {
                    self.txn = Some(t);
                    return DataOutcome::Reply(reply);
                }
                t
            }
        };
        if self.cfg.proxy_filter.is_some() {
            return self.proxy_data(txn, io);
        }
        let mut intake = match self.open_intake(&txn) {
            Ok(i) => i,
            Err(reply) => return DataOutcome::Reply(reply),
        };
        io.send(&Reply::plain(
            354,
            vec!["End data with <CR><LF>.<CR><LF>".into()],
        ));
        let mut machine = DataMachine::new();
        let mut out = Vec::with_capacity(WRITE_CHUNK + 1024);
        loop {
            let step = match io.fill() {
                Ok([]) => None,
                Ok(buf) => Some((machine.feed(buf, &mut out), buf.len())),
                Err(e) if is_timeout(&e) => {
                    intake.abort();
                    return DataOutcome::Timeout;
                }
                Err(e) => {
                    log::debug!("read error in DATA from {}: {e}", self.client.log_name());
                    None
                }
            };
            let Some((end, available)) = step else {
                intake.abort();
                return DataOutcome::Lost;
            };
            io.consume(end.unwrap_or(available));
            if out.len() >= WRITE_CHUNK || end.is_some() {
                intake.push(&out);
                out.clear();
            }
            if end.is_some() {
                break;
            }
        }
        if machine.saw_bare_lf() && self.cfg.proto.rejects_bare_lf(self.client.ip) {
            let id = intake.queue_id().to_string();
            intake.abort();
            let rcpt = txn.recipients.first().cloned().unwrap_or_default();
            let reply = Reply::new(
                self.cfg.proto.bare_newline_code,
                "5.5.2",
                format!("{} Error: bare <LF> received", self.cfg.myhostname),
            );
            self.log_reject(&id, ("DATA", BARE_LF), &reply, &txn.sender, &rcpt);
            return DataOutcome::BareNewline;
        }
        DataOutcome::Reply(self.close_intake(intake, &txn, "DATA"))
    }
}

/// The reply for a line that did not parse.
fn error_reply(e: &CommandError) -> Reply {
    match e {
        CommandError::BadSyntax => Reply::new(500, "5.5.2", "Error: bad syntax"),
        CommandError::BadUtf8 => Reply::new(500, "5.5.2", "Error: bad UTF-8 syntax"),
        CommandError::Unknown(_) | CommandError::Forbidden(_) => {
            Reply::new(502, "5.5.2", "Error: command not recognized")
        }
        CommandError::Usage { usage, .. } => Reply::new(501, "5.5.4", *usage),
        CommandError::BadSender(_) => Reply::new(501, "5.1.7", "Bad sender address syntax"),
        CommandError::BadRecipient(_) => Reply::new(501, "5.1.3", "Bad recipient address syntax"),
        CommandError::BadParam { .. } => Reply::new(501, "5.5.4", "Syntax error in parameters"),
    }
}

mod auth;
mod authverify;
mod bdat;
mod checks;
mod dkim;
mod ehlo_discard;
mod etrn;
mod hygiene;
mod milter;
mod pipelining;
/// Client bytes made printable for a log line (also for the PROXY header warnings).
mod proxy;
mod receive;
mod rewrite;
mod suppression;
mod xclient;
use checks::CheckPoint;

#[cfg(test)]
mod tests;
