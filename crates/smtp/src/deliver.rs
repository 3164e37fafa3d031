//! One delivery request from qmgr, end to end: parse the next hop, read the message and
//! its DSN/8-bit/SMTPUTF8 attributes from the queue file, reuse a cached session to
//! the destination or find the servers (MX lookup, the bracketed host, or the LMTP
//! socket) and open one (TLS per policy, AUTH with the relayhost password), run the
//! transaction, keep the session for the next request when it is still good, mark sent
//! recipients done in the queue file, and build the reply and the log lines.
//!
//! Host selection follows Postfix: a connection failure, a lost connection, a 4xx at
//! greeting/EHLO/MAIL, or a TLS or AUTH failure moves on to the next address (at most
//! smtp_mx_address_limit); after the last one every recipient gets the last failure.

use crate::cache::Cache;
use crate::conn::{Conn, Socket};
use crate::content::{Content, Scan};
use crate::dane;
use crate::dns::{Dns, LookupError};
use crate::envelope::{Envelope, Rcpt};
use crate::mta_sts;
use crate::nexthop::{self, LmtpHop};
use crate::policy;
use crate::sasl;
use crate::session::{self, Client, OpenOptions, Outcome, SaslRequest, SiteFailure, TlsRequest};
use crate::settings::{Mode, Settings};
use crate::tls::{Level, Trust};
use crate::tls_report;
use rostfix_maillog::DeliveryLine;
use rostfix_proto::{DeliveryReply, DeliveryRequest, DeliveryStatus, Dsn, RecipientResult};
use rostfix_queue::{open_requested_stream, queue_path, MessageContent, RequestedStream};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The process-wide state a delivery uses.
pub struct Agent {
    pub settings: Settings,
    /// master.cf `flags=` (D, O, R): headers prepended to the message sent.
    pub header_flags: crate::header_flags::HeaderFlags,
    pub dns: Option<Dns>,
    pub cache: Arc<Cache>,
}

/// Where one connection attempt goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Addr {
    Inet(IpAddr, u16),
    Unix(String),
}

/// One server to try: host name (for texts, TLS names, SASL keys), address, and
/// whether DNSSEC proved the address records (for DANE).
type Target = (String, Addr, bool);

/// The servers for a next hop, with what DANE needs to know about the lookups.
struct Targets {
    list: Vec<Target>,
    /// The next-hop domain (for `secure` name matching).
    domain: String,
    /// The DNSSEC status of the MX set, when there was one.
    mx_secure: Option<bool>,
}

/// The message as read from the queue file: its envelope attributes, and its content
/// left in the open file, to be streamed.
struct Message {
    content: MessageContent,
    rcpts: Vec<Rcpt>,
    ret: Option<String>,
    envid: Option<String>,
    /// Received with BODY=8BITMIME.
    body_8bitmime: bool,
    /// Received with SMTPUTF8.
    smtputf8_requested: bool,
    /// The sender or a recipient is not ASCII.
    non_ascii_address: bool,
    requiretls: bool,
    xforward: crate::xforward::Attributes,
}

impl Message {
    /// Whether the message goes with BODY=8BITMIME: received so, or 8-bit data in it.
    fn eight_bit(&self, scan: &Scan) -> bool {
        self.body_8bitmime || scan.eight_bit
    }

    /// Whether the message needs SMTPUTF8: a non-ASCII address, or received with
    /// SMTPUTF8 and UTF-8 in its headers.
    fn smtputf8(&self, scan: &Scan) -> bool {
        self.non_ascii_address || (self.smtputf8_requested && scan.headers_8bit)
    }
}

/// Delivers `req`; returns the reply for qmgr and one log line per recipient.
pub fn deliver(req: &DeliveryRequest, agent: &Agent) -> (DeliveryReply, Vec<String>) {
    let started = Instant::now();
    let before = (now() - req.arrival as f64).max(0.0);
    let mut relay = "none".to_string();
    let mut setup = started.elapsed().as_secs_f64();
    let mut conn_use = 0;
    let mut tls = None;
    let flags = agent.header_flags;
    let outcomes = match read_message(req) {
        Err(failure) => vec![failure; req.recipients.len()],
        Ok(_) if flags.needs_single_recipient() && req.recipients.len() > 1 => {
            log::warn!(
                "{}: flags=D or flags=O requires {}_destination_recipient_limit = 1",
                req.queue_id,
                agent.settings.mode.prefix()
            );
            let o = defer("4.3.5", "mail system configuration error".into());
            vec![o; req.recipients.len()]
        }
        Ok(msg) => {
            let head = match (flags.any(), msg.rcpts.first()) {
                (true, Some(r)) => flags.headers(&req.sender, &r.address, &r.orig),
                _ => Vec::new(),
            };
            // One pass over the content before any connection: its size on the wire
            // and what decides BODY=, SMTPUTF8 and TLS-Required.
            match Content::scan(head, &msg.content) {
                Err(e) => {
                    let o = defer("4.3.0", format!("cannot read message content: {e}"));
                    vec![o; req.recipients.len()]
                }
                Ok((content, scan)) => {
                    let env = Envelope {
                        sender: &req.sender,
                        recipients: &msg.rcpts,
                        content: &content,
                        ret: msg.ret.as_deref(),
                        envid: msg.envid.as_deref(),
                        eight_bit: msg.eight_bit(&scan),
                        smtputf8: msg.smtputf8(&scan),
                        mime_downgrade: agent.settings.mime_downgrade,
                        xforward: agent.settings.send_xforward.then_some(&msg.xforward),
                        probe: req.probe,
                        requiretls: msg.requiretls,
                        // RFC 8689 5: with REQUIRETLS the header is ignored.
                        tls_optional: !msg.requiretls && scan.tls_required_no,
                    };
                    let mut run = Run {
                        req,
                        agent,
                        started,
                        setup: &mut setup,
                        relay: &mut relay,
                        conn_use: &mut conn_use,
                        tls: &mut tls,
                    };
                    run.deliver(&env)
                }
            }
        }
    };
    let total_agent = started.elapsed().as_secs_f64();
    let (in_queue, in_qmgr) = req.split_before(before);
    let delay = before + total_agent;
    let delays = [in_queue, in_qmgr, setup, (total_agent - setup).max(0.0)];
    let mut results = Vec::with_capacity(req.recipients.len());
    let mut lines = Vec::with_capacity(req.recipients.len());
    // Every recipient the server took, marked done in one pass (one envelope parse,
    // one fdatasync) after the server's reply. Offset 0 is a recipient local passed
    // on (mailbox_transport): local records its outcome (docs/ipc.md).
    let sent: Vec<u64> = req
        .recipients
        .iter()
        .zip(&outcomes)
        .filter(|(r, o)| o.status == DeliveryStatus::Sent && r.offset != 0)
        .map(|(r, _)| r.offset)
        .collect();
    let path = queue_path(Path::new("."), req.queue_name, &req.queue_id);
    let marked = rostfix_queue::QueueFile::mark_done_many(&path, &sent);
    if let Err(e) = &marked {
        log::warn!("{}: cannot update queue file: {e}", req.queue_id);
    }
    for (rcpt, mut o) in req.recipients.iter().zip(outcomes) {
        if o.status == DeliveryStatus::Sent {
            if let Err(e) = &marked {
                // Delivered but not recorded: defer, so a retry may duplicate rather
                // than the queue claim something it cannot prove.
                o = defer(
                    "4.3.0",
                    format!("delivered but cannot update queue file: {e}"),
                );
            }
        }
        lines.push(
            DeliveryLine {
                queue_id: &req.queue_id,
                to: &rcpt.address,
                orig_to: &rcpt.orig_address,
                relay: &relay,
                conn_use,
                delay,
                delays,
                dsn: &o.dsn,
                status: if req.probe {
                    probe_status(o.status)
                } else {
                    o.status.as_str()
                },
                text: Some(&o.text),
            }
            .to_string(),
        );
        results.push(RecipientResult {
            offset: rcpt.offset,
            status: o.status,
            dsn: Dsn::or_class(&o.dsn, o.status),
            text: o.text,
            relay: relay.clone(),
            notify_sender: None,
        });
    }
    let mut reply = DeliveryReply::new(results);
    reply.tls = tls;
    reply.delays_ms = Some(delays.map(|s| (s.max(0.0) * 1000.0).round() as u64));
    (reply, lines)
}

/// A probe's log word, as Postfix logs verification results.
fn probe_status(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Sent => "deliverable",
        DeliveryStatus::Bounced => "undeliverable",
        DeliveryStatus::Deferred => "deferred",
    }
}

/// Opens the queue file (held open for the delivery: the content is streamed from it)
/// and reads the per-message attributes.
fn read_message(req: &DeliveryRequest) -> Result<Message, Outcome> {
    // Only the request's recipients: a newsletter's file holds 100 000.
    let RequestedStream { file, content } =
        open_requested_stream(Path::new("."), req).map_err(|e| defer("4.3.0", e.to_string()))?;
    let envl = &file.envelope;
    let rcpts: Vec<Rcpt> = req
        .recipients
        .iter()
        .map(|r| Rcpt {
            address: r.address.clone(),
            orig: r.orig_address.clone(),
            notify: envl
                .recipients
                .iter()
                .find(|q| q.offset == r.offset)
                .map(|q| q.notify.clone())
                .unwrap_or_default(),
        })
        .collect();
    let attr = |n: &str| envl.attr(n).map(str::to_string).filter(|v| !v.is_empty());
    let truthy = |n: &str| {
        attr(n).is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "no" | "false"))
    };
    Ok(Message {
        requiretls: truthy("requiretls"),
        body_8bitmime: attr("body_type").is_some_and(|b| b.eq_ignore_ascii_case("8BITMIME")),
        smtputf8_requested: truthy("smtputf8"),
        non_ascii_address: !req.sender.is_ascii()
            || req.recipients.iter().any(|r| !r.address.is_ascii()),
        ret: attr("dsn_ret"),
        envid: attr("dsn_envid"),
        xforward: crate::xforward::Attributes::from_queue(|n| envl.attr(n), &req.queue_id),
        content,
        rcpts,
    })
}

/// One request's delivery state.
struct Run<'a> {
    req: &'a DeliveryRequest,
    agent: &'a Agent,
    started: Instant,
    setup: &'a mut f64,
    relay: &'a mut String,
    conn_use: &'a mut u32,
    /// What TLS the session that carried the transaction negotiated, for qmgr's
    /// JSON delivery log.
    tls: &'a mut Option<String>,
}

impl Run<'_> {
    fn deliver(&mut self, env: &Envelope<'_>) -> Vec<Outcome> {
        let n = env.recipients.len();
        let s = &self.agent.settings;
        let key = format!("{}:{}", s.mode.prefix(), self.req.nexthop);
        // A cached session may be plaintext or unverified: REQUIRETLS mail opens its own.
        let cached = if self.cacheable() && !env.requiretls {
            self.agent.cache.take(&key)
        } else {
            None
        };
        if cached.is_none() && self.req.shaping.is_some() {
            // qmgr counts a shaping bucket's connections as its agent streams: this
            // process holds at most one open session while it delivers bucket mail.
            self.agent.cache.close_all();
        }
        if let Some(mut client) = cached {
            *self.setup = self.started.elapsed().as_secs_f64();
            *self.relay = client.relay().to_string();
            *self.tls = client.tls.as_ref().map(|t| t.summary());
            let r = client.transaction(env);
            *self.conn_use = client.uses;
            match r {
                Ok(outcomes) => {
                    self.keep(key, client);
                    return outcomes;
                }
                // A reused session that breaks gets no second chance here: the
                // recipients are deferred and retried with a fresh connection.
                Err(f) => return site_outcomes(&f, n),
            }
        }
        let Targets {
            list: targets,
            domain: nexthop_domain,
            mx_secure,
        } = match self.targets() {
            Ok(t) => t,
            Err(o) => {
                *self.setup = self.started.elapsed().as_secs_f64();
                return vec![o; n];
            }
        };
        let policy = match policy::lookup(&s.tls_policy_maps, &self.req.nexthop, s.tls_level) {
            Ok(p) => p,
            Err(e) => return vec![defer("4.7.5", e.to_string()); n],
        };
        // MTA-STS: only for a domain whose MX hosts were looked up (docs/mta-sts.md).
        let sts_policy = match (s.mta_sts, mx_secure) {
            (Some(timeout), Some(_)) if !env.tls_optional => {
                mta_sts::lookup(&nexthop_domain, timeout, &self.req.queue_id)
            }
            _ => None,
        };
        let mut last: Option<SiteFailure> = None;
        for (host, addr, host_secure) in &targets {
            // The DANE levels become may, encrypt or dane for this server, or skip it.
            let (level, tlsa_records, dane_names) = match policy.level {
                Level::Dane(dl) => {
                    let port = match addr {
                        Addr::Inet(_, port) => *port,
                        Addr::Unix(_) => 0,
                    };
                    let facts = dane::Facts {
                        level: dl,
                        dnssec: s.dnssec && self.agent.dns.as_ref().is_some_and(Dns::is_validating),
                        mx_secure,
                        host_secure: *host_secure,
                        insecure_mx_may: s.dane_insecure_mx_may,
                        nexthop: &self.req.nexthop,
                        host,
                        port,
                    };
                    let (decision, warning) = if port == 0 {
                        // Postfix: DANE is invalid for delivery over unix-domain sockets.
                        let text = format!(
                            "{}: the \"{}\" security level is invalid for delivery via unix-domain sockets",
                            self.req.nexthop,
                            dl.name()
                        );
                        (
                            dane::Decision::Defer {
                                dsn: "4.7.0",
                                text: "client TLS configuration problem".into(),
                            },
                            Some(text),
                        )
                    } else {
                        dane::decide(&facts, || match &self.agent.dns {
                            Some(d) => d.tlsa(host, port),
                            None => dane::TlsaAnswer::Error,
                        })
                    };
                    if let Some(w) = warning {
                        log::warn!("{w}");
                    }
                    match decision {
                        dane::Decision::May => (Level::May, None, None),
                        dane::Decision::Encrypt => (Level::Encrypt, None, None),
                        dane::Decision::Dane(records) => {
                            // The TLSA base domain, and the next-hop domain when it was
                            // the MX query name (Postfix's DANE match list).
                            let mut names = vec![host.clone()];
                            if mx_secure.is_some() && !names.contains(&nexthop_domain) {
                                names.push(nexthop_domain.clone());
                            }
                            (policy.level, Some(Arc::new(records)), Some(names))
                        }
                        dane::Decision::Defer { dsn, text } => {
                            log::info!("{}: {text}", self.req.queue_id);
                            last = Some(SiteFailure {
                                status: DeliveryStatus::Deferred,
                                dsn: dsn.into(),
                                text,
                                try_next: true,
                            });
                            continue;
                        }
                    }
                }
                other => (other, None, None),
            };
            // DANE wins over MTA-STS (RFC 8461 section 2); explicit verify and secure
            // stand as configured.
            let sts = match &sts_policy {
                Some(p) if mta_sts::applies(level, tlsa_records.is_some()) => {
                    Some(mta_sts::for_host(p, &nexthop_domain, host))
                }
                _ => None,
            };
            let (level, sts_names) = match &sts {
                None => (level, None),
                Some(mta_sts::Action::Skip(text)) => {
                    log::info!("{}: {text}", self.req.queue_id);
                    if let (Some(period), Some(facts)) = (
                        s.tlsrpt,
                        tls_report::PolicyFacts::of(sts_policy.as_ref(), None),
                    ) {
                        let ip = match addr {
                            Addr::Inet(ip, _) => Some(*ip),
                            Addr::Unix(_) => None,
                        };
                        tls_report::record(
                            period,
                            &nexthop_domain,
                            &facts,
                            "validation-failure",
                            (host, ip),
                            text,
                        );
                    }
                    last = Some(SiteFailure {
                        status: DeliveryStatus::Deferred,
                        dsn: "4.7.5".into(),
                        text: text.clone(),
                        try_next: true,
                    });
                    continue;
                }
                Some(mta_sts::Action::Enforce) => (Level::Secure, Some(vec![host.clone()])),
                Some(mta_sts::Action::Test { mismatch }) => {
                    if let Some(text) = mismatch {
                        log::warn!(
                            "{}: MTA-STS policy testing: {text}; delivering anyway",
                            self.req.queue_id
                        );
                    }
                    // TLS is tried so that its outcome can be reported.
                    (level.max(Level::May), Some(vec![host.clone()]))
                }
            };
            // TLS-Required: No: the domain's policies are not enforced, TLS is tried.
            let (level, tlsa_records, dane_names) = if env.tls_optional {
                (level.min(Level::May), None, None)
            } else {
                (level, tlsa_records, dane_names)
            };
            if env.requiretls {
                // RFC 8689 4.2.1: the MX hosts must come from DNSSEC or an MTA-STS
                // policy, and the certificate must verify (DANE, or PKIX at verify).
                let by_policy = tlsa_records.is_some() || sts == Some(mta_sts::Action::Enforce);
                if !by_policy && mx_secure == Some(false) {
                    last = Some(SiteFailure {
                        status: DeliveryStatus::Bounced,
                        dsn: "5.7.10".into(),
                        text: format!(
                            "REQUIRETLS: the MX records of {nexthop_domain} are not DNSSEC-validated and it has no MTA-STS policy"
                        ),
                        try_next: false,
                    });
                    break;
                }
            }
            let level = if env.requiretls && tlsa_records.is_none() {
                level.max(Level::Verify)
            } else {
                level
            };
            let (peer, relay) = match addr {
                Addr::Inet(ip, port) => (format!("{host}[{ip}]"), format!("{host}[{ip}]:{port}")),
                Addr::Unix(path) => {
                    let l = format!("{}[{path}]", s.myhostname);
                    (l.clone(), l)
                }
            };
            *self.relay = relay.clone();
            let conn = match connect(addr, s) {
                Ok(c) => c,
                Err(why) => {
                    let what = match addr {
                        Addr::Inet(..) => relay.clone(),
                        Addr::Unix(path) => path.clone(),
                    };
                    log::info!("{}: connect to {what}: {why}", self.req.queue_id);
                    last = Some(SiteFailure {
                        status: DeliveryStatus::Deferred,
                        dsn: "4.4.1".into(),
                        text: format!("connect to {what}: {why}"),
                        try_next: true,
                    });
                    continue;
                }
            };
            let creds = match &s.sasl {
                Some(sasl_settings) => {
                    let by_sender = if sasl_settings.sender_dependent {
                        sasl::lookup_sender(
                            &sasl_settings.password_maps,
                            &self.req.sender,
                            &sasl_settings.delimiter,
                        )
                    } else {
                        Ok(None)
                    };
                    let found = by_sender.and_then(|c| match c {
                        Some(c) => Ok(Some(c)),
                        None => sasl::lookup(&sasl_settings.password_maps, &self.req.nexthop, host),
                    });
                    match found {
                        Ok(c) => c,
                        Err(e) => {
                            *self.setup = self.started.elapsed().as_secs_f64();
                            return vec![defer("4.3.0", e.to_string()); n];
                        }
                    }
                }
                None => None,
            };
            let match_patterns = policy.matches.clone().unwrap_or_else(|| {
                if level == Level::Secure {
                    s.secure_match.clone()
                } else {
                    s.verify_match.clone()
                }
            });
            let opts = OpenOptions {
                helo_name: &s.helo_name,
                lmtp: s.mode == Mode::Lmtp,
                timeouts: &s.timeouts,
                tls: (level != Level::None).then(|| TlsRequest {
                    level,
                    client: &s.tls,
                    match_names: dane_names.clone().or(sts_names).unwrap_or_else(|| {
                        policy::match_names(&match_patterns, host, &nexthop_domain)
                    }),
                    dane: tlsa_records.clone(),
                    loglevel: s.tls_loglevel,
                }),
                sasl: match (&s.sasl, &creds) {
                    (Some(ss), Some(c)) => Some(SaslRequest {
                        creds: c,
                        plain_opts: ss.plain_opts,
                        tls_opts: ss.tls_opts,
                        soft_bounce: ss.soft_bounce,
                    }),
                    _ => None,
                },
                peer: &peer,
                relay: &relay,
                server_name: host,
            };
            let opened = session::open(conn, &opts);
            self.report_tls(
                &opened,
                &nexthop_domain,
                (host, addr),
                sts_policy.as_ref().filter(|_| {
                    matches!(
                        sts,
                        Some(mta_sts::Action::Enforce | mta_sts::Action::Test { .. })
                    )
                }),
                tlsa_records.as_deref().map(Vec::as_slice),
            );
            *self.setup = self.started.elapsed().as_secs_f64();
            let mut client = match opened {
                Ok(c) => c,
                Err(mut f) if f.try_next => {
                    if env.requiretls && f.dsn.starts_with("4.7.") {
                        // No verified TLS with this host: the message may not go there.
                        f.status = DeliveryStatus::Bounced;
                        f.dsn = "5.7.10".into();
                        f.text = format!("REQUIRETLS: {}", f.text);
                    }
                    if sts == Some(mta_sts::Action::Enforce) && f.dsn.starts_with("4.7.") {
                        f.text = format!(
                            "{} (MTA-STS policy of {nexthop_domain} requires verified TLS)",
                            f.text
                        );
                    }
                    log::info!("{}: {}", self.req.queue_id, f.text);
                    last = Some(f);
                    continue;
                }
                Err(f) => return site_outcomes(&f, n),
            };
            if let Some(mta_sts::Action::Test { .. }) = sts {
                let failure = match &client.tls {
                    None => Some("TLS was not negotiated".to_string()),
                    Some(info) if info.trust != Trust::Verified => Some(format!(
                        "{} TLS connection: certificate not verified for {host}",
                        info.trust.word()
                    )),
                    Some(_) => None,
                };
                if let Some(why) = failure {
                    log::warn!(
                        "{}: MTA-STS policy testing of {nexthop_domain}: {peer}: {why}; delivering anyway",
                        self.req.queue_id
                    );
                }
            }
            *self.tls = client.tls.as_ref().map(|t| t.summary());
            let r = client.transaction(env);
            *self.conn_use = client.uses;
            match r {
                Ok(outcomes) => {
                    self.keep(key, client);
                    return outcomes;
                }
                Err(f) => {
                    if f.dsn != "4.4.2" {
                        client.quit();
                    }
                    if f.try_next {
                        log::info!("{}: {}", self.req.queue_id, f.text);
                        last = Some(f);
                        continue;
                    }
                    return site_outcomes(&f, n);
                }
            }
        }
        match last {
            Some(f) => site_outcomes(&f, n),
            None => vec![defer("4.4.3", "no server address to try".into()); n],
        }
    }

    /// SMTP TLS reporting (rostfix_tlsrpt_enable): the session's TLS outcome, for a
    /// domain with a policy in force.
    fn report_tls(
        &self,
        opened: &Result<Client<Conn>, SiteFailure>,
        domain: &str,
        (host, addr): (&str, &Addr),
        sts: Option<&rostfix_mtasts::policy::Policy>,
        tlsa: Option<&[crate::dane::Tlsa]>,
    ) {
        let Some(period) = self.agent.settings.tlsrpt else {
            return;
        };
        let Some(facts) = tls_report::PolicyFacts::of(sts, tlsa) else {
            return;
        };
        let ip = match addr {
            Addr::Inet(ip, _) => Some(*ip),
            Addr::Unix(_) => None,
        };
        let (result, reason) = match opened {
            Ok(c) => (tls_report::of_session(&facts, c.tls.as_ref()), ""),
            Err(f) => match tls_report::of_failure(&facts, f) {
                Some(r) => (r, f.text.as_str()),
                None => return,
            },
        };
        tls_report::record(period, domain, &facts, result, (host, ip), reason);
    }

    /// False with sender-dependent authentication: as Postfix, no session is cached
    /// or reused then, since it is logged in with one sender's credentials.
    fn cacheable(&self) -> bool {
        !self
            .agent
            .settings
            .sasl
            .as_ref()
            .is_some_and(|s| s.sender_dependent)
    }

    /// Caches a good session, or closes it (also when it carried its messages per
    /// connection: the shaping bucket's, else smtp_connection_reuse_count_limit).
    fn keep(&self, key: String, mut client: Client<Conn>) {
        let c = &self.agent.settings.cache;
        let count_limit = match &self.req.shaping {
            Some(h) if h.reuse_count_limit > 0 => h.reuse_count_limit,
            _ => c.reuse_count_limit,
        };
        let worn_out = count_limit > 0 && client.uses >= count_limit;
        let wanted = self.cacheable()
            && !worn_out
            && (c.on_demand || c.destinations.iter().any(|d| d == &self.req.nexthop));
        if wanted && client.reusable() {
            self.agent.cache.put(key, client);
        } else {
            client.quit();
        }
    }

    /// The servers to try and the next-hop domain (for `secure` name matching).
    fn targets(&self) -> Result<Targets, Outcome> {
        let s = &self.agent.settings;
        let hop = match s.mode {
            Mode::Lmtp => match nexthop::parse_lmtp(&self.req.nexthop) {
                Ok(LmtpHop::Unix(path)) => {
                    return Ok(Targets {
                        list: vec![(s.myhostname.clone(), Addr::Unix(path), false)],
                        domain: String::new(),
                        mx_secure: None,
                    })
                }
                Ok(LmtpHop::Inet(h)) => h,
                Err(e) => return Err(defer("4.3.5", e.to_string())),
            },
            Mode::Smtp => {
                nexthop::parse(&self.req.nexthop).map_err(|e| defer("4.3.5", e.to_string()))?
            }
        };
        let domain = hop.host.clone();
        if let Ok(ip) = hop.host.parse::<IpAddr>() {
            return Ok(Targets {
                list: vec![(ip.to_string(), Addr::Inet(ip, hop.port), false)],
                domain,
                mx_secure: None,
            });
        }
        let dns = self
            .agent
            .dns
            .as_ref()
            .ok_or_else(|| defer("4.4.3", "no DNS resolver configuration".to_string()))?;
        let (hosts, mx_secure) = if hop.mx_lookup {
            match dns.mx(&hop.host) {
                Ok(Some(list)) => (list.value, Some(list.secure)),
                Ok(None) => (vec![hop.host.clone()], None),
                Err(e) => return Err(lookup_failure(e)),
            }
        } else {
            (vec![hop.host.clone()], None)
        };
        let via_mx = mx_secure.is_some();
        let limit = s.mx_address_limit.max(1);
        let mut targets = Vec::new();
        let mut last_err = None;
        for host in hosts {
            if targets.len() >= limit {
                break;
            }
            let addrs = match host.parse::<IpAddr>() {
                Ok(ip) => Ok(crate::dns::Checked {
                    value: vec![ip],
                    secure: false,
                }),
                Err(_) => dns.addresses(&host),
            };
            match addrs {
                Ok(list) => targets.extend(
                    list.value
                        .into_iter()
                        .map(|ip| (host.clone(), Addr::Inet(ip, hop.port), list.secure)),
                ),
                Err(e) => last_err = Some(e),
            }
        }
        targets.truncate(limit);
        if targets.is_empty() {
            let e = last_err.unwrap_or(LookupError::Temporary {
                name: hop.host.clone(),
                rtype: "A",
            });
            // An MX host without addresses is the destination's temporary problem; the
            // destination itself not existing is permanent.
            return Err(match (&e, via_mx) {
                (LookupError::NotFound { .. }, true) => defer("4.4.3", e.to_string()),
                _ => lookup_failure(e),
            });
        }
        Ok(Targets {
            list: targets,
            domain,
            mx_secure,
        })
    }
}

/// Opens the socket; the error is Postfix's wording.
fn connect(addr: &Addr, s: &Settings) -> Result<Conn, String> {
    let result = match addr {
        Addr::Inet(ip, port) => {
            TcpStream::connect_timeout(&SocketAddr::new(*ip, *port), s.connect_timeout)
                .and_then(|t| {
                    // Every command group and the message are written whole, so
                    // Nagle's algorithm could only delay them.
                    t.set_nodelay(true)?;
                    Ok(t)
                })
                .map(|t| Conn::Plain(Socket::Tcp(t)))
        }
        // Relative paths are below queue_directory, the working directory (and the
        // chroot) of every service.
        Addr::Unix(path) => UnixStream::connect(path).map(|u| Conn::Plain(Socket::Unix(u))),
    };
    result.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "Connection refused".to_string(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            "Connection timed out".to_string()
        }
        std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
        _ => e.to_string(),
    })
}

fn site_outcomes(f: &SiteFailure, n: usize) -> Vec<Outcome> {
    vec![
        Outcome {
            status: f.status,
            dsn: f.dsn.clone(),
            text: f.text.clone(),
        };
        n
    ]
}

fn lookup_failure(e: LookupError) -> Outcome {
    match &e {
        LookupError::NotFound { .. } => Outcome {
            status: DeliveryStatus::Bounced,
            dsn: "5.4.4".into(),
            text: e.to_string(),
        },
        LookupError::NullMx(_) => Outcome {
            status: DeliveryStatus::Bounced,
            dsn: "5.1.0".into(),
            text: e.to_string(),
        },
        LookupError::Temporary { .. } => defer("4.4.3", e.to_string()),
    }
}

fn defer(dsn: &str, text: String) -> Outcome {
    Outcome {
        status: DeliveryStatus::Deferred,
        dsn: dsn.into(),
        text,
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
