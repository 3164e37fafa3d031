//! One client's screening, on its own thread (Postfix's postscreen.c and
//! postscreen_early.c): CONNECT, the per-client connection limit, the permanent
//! access list, the temporary allowlist (cache), the tests before the greeting
//! (pregreet and DNSBL, side by side during postscreen_greet_wait), then either the
//! hand-over to smtpd or postscreen's own SMTP engine (crate::engine) for clients
//! under enforcement or due for the deep protocol tests.

use crate::action::Action;
use crate::cache::{Cache, Stamps, Test, TEST_COUNT};
use crate::lookup::Dnsbl;
use crate::reply::{elapsed, escape};
use crate::settings::Settings;
use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How much a pregreeting client's early bytes are looked at (and logged).
const PEEK_SIZE: usize = 1024;
/// Longest wait for the client's socket before the DNS channel is checked again.
const TICK: Duration = Duration::from_millis(50);
/// Bound on writing one reply to a client.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a hand-off waits for an smtpd process to take the client (Postfix's
/// PSC_SEND_SOCK_NOTIFY_TIMEOUT): until then the client counts against
/// postscreen_post_queue_limit.
const HAND_OFF_TIMEOUT: Duration = Duration::from_secs(100);

/// What every client thread shares.
pub struct Ctx {
    pub settings: Settings,
    pub cache: Option<Mutex<Cache>>,
    pub dnsbl: Option<Arc<Dnsbl>>,
    /// The engine's STARTTLS (certificates loaded before confinement).
    pub tls: Option<Arc<rostfix_smtpd::TlsServer>>,
    concurrency: Mutex<HashMap<IpAddr, u32>>,
    /// Clients sent to smtpd and not yet taken by an smtpd process.
    post_queue: AtomicU32,
}

/// One client in the post-screening queue, counted for as long as the guard lives.
struct PostQueued<'a>(&'a AtomicU32);

impl<'a> PostQueued<'a> {
    fn enter(count: &'a AtomicU32) -> PostQueued<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        PostQueued(count)
    }
}

impl Drop for PostQueued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits for the receiving smtpd to close the pass channel (it does once it holds
/// the client's descriptor); false after HAND_OFF_TIMEOUT.
fn taken(channel: &UnixStream) -> bool {
    use std::io::Read;
    if channel.set_read_timeout(Some(HAND_OFF_TIMEOUT)).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    loop {
        match (&*channel).read(&mut byte) {
            Ok(0) => return true,
            // Nothing is ever sent back; a byte would be a protocol change: go on.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A reset also means the receiver is done with the channel.
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// Counts one of postscreen's verdicts for the metrics service
/// (`rostfix_postscreen_verdicts_total{verdict}`; a fixed set of words).
pub fn verdict(word: &str) {
    rostfix_metrics::process::add(
        "rostfix_postscreen_verdicts_total",
        &[("verdict", word)],
        1.0,
    );
}

/// Reading the per-address counts also gives the total being screened.
fn total(map: &HashMap<IpAddr, u32>) -> u32 {
    map.values().sum()
}

impl Ctx {
    pub fn new(settings: Settings, cache: Option<Cache>, dnsbl: Option<Arc<Dnsbl>>) -> Ctx {
        Ctx {
            settings,
            cache: cache.map(Mutex::new),
            dnsbl,
            tls: None,
            concurrency: Mutex::new(HashMap::new()),
            post_queue: AtomicU32::new(0),
        }
    }

    pub fn with_tls(mut self, tls: Option<Arc<rostfix_smtpd::TlsServer>>) -> Ctx {
        self.tls = tls;
        self
    }

    /// Clients being served now.
    pub fn active(&self) -> u32 {
        total(&self.concurrency.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn enter(&self, ip: IpAddr) -> Slot<'_> {
        let mut map = self.concurrency.lock().unwrap_or_else(|p| p.into_inner());
        let screening = total(&map);
        let count = map.entry(ip).or_insert(0);
        *count += 1;
        Slot {
            ctx: self,
            ip,
            count: *count,
            screening: screening + 1,
        }
    }

    fn cached(&self, ip: IpAddr) -> Option<Stamps> {
        let cache = self.cache.as_ref()?;
        cache.lock().unwrap_or_else(|p| p.into_inner()).get(ip)
    }

    fn remember(&self, ip: IpAddr, stamps: Stamps, now: u64) {
        if let Some(cache) = &self.cache {
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = cache.put(ip, stamps, now) {
                log::warn!("cannot update the postscreen cache: {e}");
            }
        }
    }
}

/// One client's place in the per-address connection count, given back on drop.
struct Slot<'a> {
    ctx: &'a Ctx,
    ip: IpAddr,
    count: u32,
    /// Clients being screened, this one included.
    screening: u32,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .ctx
            .concurrency
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An IPv4 client seen through an IPv6 socket is logged and looked up as IPv4.
fn plain(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

/// The state of one session.
pub struct Session<'a> {
    pub ctx: &'a Ctx,
    pub stream: TcpStream,
    /// After STARTTLS in the engine: every later read and write goes through it (it
    /// holds a second descriptor of `stream`'s socket, so socket options set on
    /// `stream` apply to it too).
    pub tls: Option<rostfix_smtpd::NetStream<TcpStream>>,
    /// The real client (behind HAProxy, the one its PROXY header named).
    pub client: SocketAddr,
    /// The address and port the client connected to, passed on to smtpd.
    pub server: SocketAddr,
    pub start: Instant,
    pub stamps: Stamps,
    pub todo: [bool; TEST_COUNT],
    pub pass: [bool; TEST_COUNT],
    /// The client has no cache entry (or never passed an enabled test): PASS NEW.
    pub new: bool,
    /// A failed test is enforced: the client stays in postscreen's engine and every
    /// RCPT gets `rcpt_reply`.
    pub enforced: bool,
    pub rcpt_reply: String,
    /// Never hand this client to smtpd.
    pub noforward: bool,
    pub hangup: bool,
    pub pregreet_failed: bool,
    pub final_reply: Option<String>,
}

impl Session<'_> {
    /// `[addr]:port` as every log line shows the client.
    pub fn who(&self) -> String {
        format!("[{}]:{}", self.client.ip(), self.client.port())
    }

    /// Best-effort write of one reply line (CRLF added).
    pub fn send(&mut self, reply: &str) -> bool {
        let mut text = String::with_capacity(reply.len() + 2);
        text.push_str(reply);
        text.push_str("\r\n");
        match &mut self.tls {
            Some(tls) => tls
                .write_all(text.as_bytes())
                .and_then(|()| tls.flush())
                .is_ok(),
            None => self.stream.write_all(text.as_bytes()).is_ok(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.ctx.settings
    }

    /// Fails a test: drop ends the session with `drop_reply`; enforce keeps the client
    /// in the engine with `enforce_reply` for RCPT; ignore changes nothing (the test
    /// simply does not pass and is repeated next time). Returns false when the session
    /// is over.
    pub fn fail(&mut self, action: Action, drop_reply: &str, enforce_reply: &str) -> bool {
        match action {
            Action::Drop => {
                self.drop_session(drop_reply);
                false
            }
            Action::Enforce => {
                self.enforce(enforce_reply);
                true
            }
            Action::Ignore => true,
        }
    }

    fn enforce(&mut self, reply: &str) {
        self.enforced = true;
        self.noforward = true;
        self.rcpt_reply = reply.to_string();
    }

    /// Replies `reply` and hangs up.
    pub fn drop_session(&mut self, reply: &str) {
        self.noforward = true;
        self.final_reply = Some(reply.to_string());
        self.conclude();
    }

    /// The client went away.
    pub fn hang_up(&mut self, phase: &str) {
        log::info!(
            "HANGUP after {} from {} in {phase}",
            elapsed(self.start.elapsed()),
            self.who()
        );
        verdict("HANGUP");
        self.hangup = true;
        self.noforward = true;
        self.conclude();
    }

    /// Postfix's psc_conclude: log the final PASS, update the cache, then hand the
    /// client to smtpd or say the last word and hang up.
    pub fn conclude(&mut self) {
        if self.enforced {
            self.pass = [false; TEST_COUNT];
        }
        let any_pass = self.pass.iter().any(|&p| p);
        let all_done = (0..TEST_COUNT).all(|t| !self.todo[t] || self.pass[t]);
        if any_pass && all_done {
            log::info!(
                "PASS {} {}",
                if self.new { "NEW" } else { "OLD" },
                self.who()
            );
            verdict(if self.new { "PASS_NEW" } else { "PASS_OLD" });
        }
        if any_pass {
            self.ctx.remember(self.client.ip(), self.stamps, unix_now());
        }
        if self.noforward {
            if !self.hangup {
                if let Some(reply) = self.final_reply.clone() {
                    self.send(&reply);
                }
                self.discard_pending();
            }
            log::info!("DISCONNECT {}", self.who());
        } else {
            self.hand_off();
        }
    }

    /// Reads and drops what the client already sent (a pregreeting client's bytes,
    /// say): closing a socket with unread input makes the kernel reset the connection,
    /// and a reset can destroy our last reply before the client has read it.
    fn discard_pending(&mut self) {
        use std::io::Read;
        // Under TLS the client's unread bytes are records: a reset is no worse than
        // a close_notify nobody waits for, and reading them would mean a handshake
        // state machine on a non-blocking socket. Leave them.
        if self.tls.is_some() || self.stream.set_nonblocking(true).is_err() {
            return;
        }
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            match self.stream.read(&mut buf) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    /// Sends the client's socket to smtpd over the `pass` service, then waits (bounded)
    /// until an smtpd process has taken it, which it shows by closing the channel:
    /// until then the client is in postscreen's post-screening queue.
    fn hand_off(&mut self) {
        let service = format!("private/{}", self.settings().smtpd_service);
        let queued = PostQueued::enter(&self.ctx.post_queue);
        log::debug!(
            "{}: post-screening queue {} while passing to service {service}",
            self.who(),
            queued.0.load(Ordering::SeqCst)
        );
        let sent = UnixStream::connect(&service).and_then(|channel| {
            channel.set_write_timeout(Some(WRITE_TIMEOUT))?;
            let endpoints = rostfix_proto::PassedEndpoints {
                client: self.client,
                server: self.server,
            };
            rostfix_service::pass::send_connection(&channel, &self.stream.as_fd(), &endpoints)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(channel)
        });
        match sent {
            Ok(channel) => {
                if taken(&channel) {
                    drop(queued);
                    log::debug!("{}: taken by service {service}", self.who());
                } else {
                    // smtpd may still take it later: the client is not ours to answer.
                    log::warn!("timeout sending connection to service {service}");
                }
            }
            Err(e) => {
                log::warn!("cannot pass connection to service {service}: {e}");
                self.send("421 4.3.2 All server ports are busy");
            }
        }
    }

    fn set_todo(&mut self, now: u64) {
        let s = &self.ctx.settings;
        let enabled = [
            s.pregreet_enabled(),
            s.dnsbl_enabled(),
            s.pipelining.enabled,
            s.non_smtp.enabled,
            s.bare_newline.enabled,
        ];
        for ((todo, on), stamp) in self.todo.iter_mut().zip(enabled).zip(self.stamps) {
            *todo = on && now >= stamp;
        }
        self.new = enabled
            .iter()
            .zip(self.stamps)
            .any(|(&on, stamp)| on && stamp == 0);
    }

    fn deep_pending(&self) -> bool {
        [Test::Pipelining, Test::NonSmtp, Test::BareNewline]
            .iter()
            .any(|&t| self.todo[t as usize] && !self.pass[t as usize])
    }

    /// The tests before the greeting. Returns false when the session is over.
    fn early_tests(&mut self, now: u64) -> bool {
        let settings = &self.ctx.settings;
        let pregreet = self.todo[Test::Pregreet as usize];
        let mut dns = None;
        let mut pending = 0;
        if self.todo[Test::Dnsbl as usize] {
            if let Some(dnsbl) = &self.ctx.dnsbl {
                let domains = crate::dnsbl::domains(&settings.dnsbl_sites);
                pending = domains.len();
                match dnsbl.start(self.client.ip(), domains) {
                    Ok(rx) => dns = Some(rx),
                    Err(e) => log::warn!("cannot start DNSBL lookups: {e}"),
                }
            }
        }
        if pregreet {
            let banner = format!("220-{}", settings.greet_banner);
            if !self.send(&banner) {
                self.hang_up("tests before SMTP handshake");
                return false;
            }
        }
        let deadline = self.start + settings.greet_wait;
        let mut replies = Vec::new();
        let mut watching = pregreet;
        loop {
            if let Some(rx) = &dns {
                while let Ok(reply) = rx.try_recv() {
                    replies.push(reply);
                    pending = pending.saturating_sub(1);
                }
            }
            let dns_done = dns.is_none() || pending == 0;
            let left = deadline.saturating_duration_since(Instant::now());
            // The pregreet test lasts the whole wait; a DNSBL-only check ends early.
            if left.is_zero() || (dns_done && !pregreet) {
                break;
            }
            let slice = left.min(TICK);
            if watching {
                match crate::wait::readable(&self.stream, slice) {
                    Ok(false) => {}
                    Ok(true) => {
                        let mut buf = [0u8; PEEK_SIZE];
                        match self.stream.peek(&mut buf) {
                            Ok(0) | Err(_) => {
                                self.hang_up("tests before SMTP handshake");
                                return false;
                            }
                            Ok(n) => {
                                log::info!(
                                    "PREGREET {n} after {} from {}: {}",
                                    elapsed(self.start.elapsed()),
                                    self.who(),
                                    escape(&buf[..n], 100)
                                );
                                verdict("PREGREET");
                                watching = false;
                                let action = self.ctx.settings.greet_action;
                                self.pregreet_failed = action != Action::Ignore;
                                // Under `ignore` the test still does not pass
                                // (watching is off), so it is repeated next time.
                                if !self.fail(
                                    action,
                                    "521 5.5.1 Protocol error",
                                    "550 5.5.1 Protocol error",
                                ) {
                                    return false;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        log::warn!("poll {}: {e}", self.who());
                        self.hang_up("tests before SMTP handshake");
                        return false;
                    }
                }
            } else if let Some(rx) = &dns {
                if let Ok(reply) = rx.recv_timeout(slice) {
                    replies.push(reply);
                    pending = pending.saturating_sub(1);
                }
            } else {
                std::thread::sleep(slice);
            }
        }
        if pregreet && watching {
            self.pass[Test::Pregreet as usize] = true;
            self.stamps[Test::Pregreet as usize] = now + self.ctx.settings.greet_ttl;
        }
        if self.todo[Test::Dnsbl as usize] {
            return self.judge_dnsbl(&replies, now);
        }
        true
    }

    fn judge_dnsbl(&mut self, replies: &[crate::dnsbl::Reply], now: u64) -> bool {
        let settings = &self.ctx.settings;
        let score = crate::dnsbl::score(&settings.dnsbl_sites, replies);
        let ttl = settings.dnsbl_ttl(score.ttl);
        let althresh = settings.dnsbl_allowlist_threshold;
        if !self.enforced
            && score.rank < settings.dnsbl_threshold
            && althresh < 0
            && score.rank <= althresh
        {
            // Allowlisted by score: the other tests count as passed for as long as
            // the DNSBL result lasts.
            for t in 0..TEST_COUNT {
                if t == Test::Dnsbl as usize {
                    continue;
                }
                if self.todo[t] {
                    self.pass[t] = true;
                }
                self.stamps[t] = self.stamps[t].max(now + ttl);
            }
        }
        if score.rank < settings.dnsbl_threshold {
            self.pass[Test::Dnsbl as usize] = true;
            self.stamps[Test::Dnsbl as usize] = now + ttl;
            return true;
        }
        log::info!("DNSBL rank {} for {}", score.rank, self.who());
        verdict("DNSBL");
        let name = score
            .listed_by
            .as_deref()
            .map(|d| settings.dnsbl_display_name(d))
            .unwrap_or_default();
        let text = format!(
            "5.7.1 Service unavailable; client [{}] blocked using {name}",
            self.client.ip()
        );
        let action = settings.dnsbl_action;
        self.fail(action, &format!("521 {text}"), &format!("550 {text}"))
    }
}

/// postscreen_upstream_proxy_protocol = haproxy: the endpoints the PROXY header names
/// (the socket's own for a v2 LOCAL header, the proxy's health check). A bad, slow or
/// missing header gets Postfix's 421 and the connection is closed (None): postscreen
/// cannot screen a client it cannot name.
fn proxied_endpoints(
    stream: &mut TcpStream,
    socket: (SocketAddr, SocketAddr),
    limit: Duration,
) -> Option<(SocketAddr, SocketAddr)> {
    use rostfix_proto::haproxy::{receive, ReceiveError};
    let got = receive(stream, limit);
    // Back to postscreen's own bounds: the engine sets its read timeouts itself.
    if let Err(e) = stream.set_read_timeout(None) {
        log::warn!("cannot reset socket timeout: {e}");
        return None;
    }
    match got {
        Ok(p) => Some(p.endpoints.unwrap_or(socket)),
        Err(e) => {
            match e {
                // postscreen's wording for this one differs from smtpd's.
                ReceiveError::Timeout => log::warn!("haproxy read: time limit exceeded"),
                e => log::warn!("{e}"),
            }
            // Best effort, as in Postfix: the client may be gone already.
            let _ = stream.write_all(b"421 4.3.2 No system resources\r\n");
            None
        }
    }
}

/// Screens one client to its end.
pub fn serve(ctx: &Ctx, mut stream: TcpStream) {
    let (Ok(client), Ok(server)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    if let Err(e) = stream.set_write_timeout(Some(WRITE_TIMEOUT)) {
        log::warn!("cannot set socket timeouts: {e}");
        return;
    }
    let (client, server) = match ctx.settings.upstream_proxy {
        None => (client, server),
        Some(limit) => match proxied_endpoints(&mut stream, (client, server), limit) {
            Some(endpoints) => endpoints,
            None => return,
        },
    };
    let (client, server) = (plain(client), plain(server));
    log::info!(
        "CONNECT from [{}]:{} to [{}]:{}",
        client.ip(),
        client.port(),
        server.ip(),
        server.port()
    );
    let slot = ctx.enter(client.ip());
    let mut s = Session {
        ctx,
        stream,
        tls: None,
        client,
        server,
        start: Instant::now(),
        stamps: [0; TEST_COUNT],
        todo: [false; TEST_COUNT],
        pass: [false; TEST_COUNT],
        new: true,
        enforced: false,
        rcpt_reply: "450 4.3.2 Service currently unavailable".to_string(),
        noforward: false,
        hangup: false,
        pregreet_failed: false,
        final_reply: None,
    };
    let limit = ctx.settings.connection_count_limit;
    if limit > 0 && slot.count > limit {
        log::info!(
            "NOQUEUE: reject: CONNECT from {}: too many connections",
            s.who()
        );
        verdict("CONNECTION_LIMIT");
        s.drop_session("421 4.7.0 Error: too many connections");
        return;
    }
    let post_queue = ctx.settings.post_queue_limit;
    if post_queue > 0 && ctx.post_queue.load(Ordering::SeqCst) >= post_queue {
        log::info!(
            "NOQUEUE: reject: CONNECT from {}: all server ports busy",
            s.who()
        );
        verdict("POST_QUEUE_FULL");
        s.drop_session("421 4.3.2 All server ports are busy");
        return;
    }
    match ctx.settings.access.check(client.ip()) {
        crate::access::Verdict::Allowlisted => {
            log::info!("ALLOWLISTED {}", s.who());
            verdict("ALLOWLISTED");
            s.conclude();
            return;
        }
        crate::access::Verdict::Denylisted => {
            log::info!("DENYLISTED {}", s.who());
            verdict("DENYLISTED");
            if !s.fail(
                ctx.settings.denylist_action,
                "521 5.3.2 Service currently unavailable",
                "550 5.3.2 Service currently unavailable",
            ) {
                return;
            }
        }
        crate::access::Verdict::Unknown => {}
    }
    let now = unix_now();
    if !s.enforced {
        if let Some(stamps) = ctx.cached(client.ip()) {
            s.stamps = stamps;
        }
    }
    s.set_todo(now);
    if !s.enforced && !s.todo.iter().any(|&t| t) {
        log::info!("PASS OLD {}", s.who());
        verdict("PASS_OLD");
        s.conclude();
        return;
    }
    // Clients that skip the tests were let through above; the others need a place.
    let pre_queue = ctx.settings.pre_queue_limit;
    if pre_queue > 0 && slot.screening > pre_queue {
        log::info!("reject: connect from {}: all screening ports busy", s.who());
        verdict("PRE_QUEUE_FULL");
        s.drop_session("421 4.3.2 All screening ports are busy");
        return;
    }
    if (s.todo[Test::Pregreet as usize] || s.todo[Test::Dnsbl as usize]) && !s.early_tests(now) {
        return;
    }
    if s.noforward || s.deep_pending() {
        crate::engine::run(&mut s);
    } else {
        s.conclude();
    }
    drop(slot);
}
