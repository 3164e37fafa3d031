//! anvil's socket side: a thread per client stream (the service skeleton accepts
//! them), and the supervising loop of the main thread.
//!
//! Bounds: at most [`MAX_STREAMS`] client streams at once (more are closed at once;
//! smtpd then works without limits and warns), request frames of at most
//! [`MAX_REQUEST`] bytes, and an idle stream is dropped after [`STREAM_IDLE`].

use crate::shared_limits::{Kind, SharedLimits};
use crate::table::Table;
use rostfix_proto::{read_message, write_message, AnvilClient, AnvilRequest, FrameError};
use rostfix_service::{ClientThreads, Connection};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Client streams served at once.
const MAX_STREAMS: usize = 4096;
/// A request names a service and an address: a few hundred bytes.
const MAX_REQUEST: u64 = 4096;
/// An smtpd session that says nothing for this long is gone (smtpd_timeout is far
/// shorter); its connection is counted down.
const STREAM_IDLE: Duration = Duration::from_secs(3600);

/// The table and the stream counter, shared by every thread, and the Redis-shared
/// rates and connection leases when configured (shared_limits.rs).
#[derive(Debug, Clone)]
pub struct Shared {
    table: Arc<Mutex<Table>>,
    threads: ClientThreads,
    redis: Option<Arc<Mutex<SharedLimits>>>,
    /// This process's lease members: `MACHINE:` and a counter.
    machine: Arc<str>,
    next_member: Arc<AtomicU64>,
    /// Connections leased in Redis and still open: member -> client address.
    held: Arc<Mutex<HashMap<String, String>>>,
}

impl Shared {
    pub fn new(unit: Duration, redis: Option<SharedLimits>, machine: &str) -> Shared {
        Shared {
            table: Arc::new(Mutex::new(Table::new(unit))),
            threads: ClientThreads::new("anvil", MAX_STREAMS),
            redis: redis.map(|r| Arc::new(Mutex::new(r))),
            machine: Arc::from(format!("{machine}:{}", std::process::id())),
            next_member: Arc::new(AtomicU64::new(0)),
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn redis(&self) -> Option<MutexGuard<'_, SharedLimits>> {
        let r = self.redis.as_ref()?;
        Some(r.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leases a slot for a new connection of `who`: its member name (to give it back)
    /// and the count across machines; None without Redis.
    fn lease(&self, who: &AnvilClient) -> Option<(String, Option<u32>)> {
        let mut redis = self.redis()?;
        let n = self.next_member.fetch_add(1, Ordering::Relaxed);
        let member = format!("{}:{n}", self.machine);
        let count = redis.connect(&who.address, &member);
        drop(redis);
        if count.is_some() {
            self.held().insert(member.clone(), who.address.clone());
        }
        Some((member, count))
    }

    /// Gives a leased slot back.
    fn release(&self, member: &str) {
        let Some(address) = self.held().remove(member) else {
            return;
        };
        if let Some(mut redis) = self.redis() {
            redis.disconnect(&address, member);
        }
    }

    /// Renews the leases of every connection still open (supervise, periodically).
    fn renew(&self) {
        let held: Vec<(String, String)> = self
            .held()
            .iter()
            .map(|(m, a)| (a.clone(), m.clone()))
            .collect();
        if let Some(mut redis) = self.redis() {
            redis.renew(&held);
        }
    }

    fn renew_every(&self) -> Option<Duration> {
        self.redis().map(|r| r.renew_every())
    }

    /// The rate across machines for this event when Redis shares them; None when it
    /// is not configured or cannot answer (the local rate stands).
    fn shared_rate(&self, req: &AnvilRequest) -> Option<u32> {
        let redis = self.redis.as_ref()?;
        let (kind, who) = match req {
            AnvilRequest::Connect(c) => (Kind::Connection, c),
            AnvilRequest::Message(c) => (Kind::Message, c),
            AnvilRequest::Recipient(c) => (Kind::Recipient, c),
            AnvilRequest::Auth(c) => (Kind::Auth, c),
            AnvilRequest::Disconnect(_) => return None,
        };
        let mut redis = redis.lock().unwrap_or_else(|p| p.into_inner());
        redis.count(kind, &who.address)
    }

    /// The table; a thread that panicked while holding it leaves consistent numbers
    /// (every update is a few saturating adds), so poisoning is ignored.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes one new client stream (from the skeleton's acceptor thread): starts its
/// thread, or closes it at once when MAX_STREAMS are already served.
pub fn start_stream(conn: Connection, shared: &Shared) {
    let s = shared.clone();
    shared
        .threads
        .start(conn, move |stream| serve_stream(stream, &s));
}

/// Answers one stream's requests until it closes, then counts its connections down.
fn serve_stream(mut stream: UnixStream, shared: &Shared) {
    // Each open connection with its Redis lease member, if it got one.
    let mut connected: Vec<(AnvilClient, Option<String>)> = Vec::new();
    if let Err(e) = stream
        .set_read_timeout(Some(STREAM_IDLE))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(10))))
    {
        log::warn!("cannot set socket timeouts: {e}");
        return;
    }
    loop {
        let req: AnvilRequest = match read_message(&mut (&mut stream).take(MAX_REQUEST)) {
            Ok(r) => r,
            Err(FrameError::Closed) => break,
            Err(e) => {
                log::debug!("client stream ends: {e}");
                break;
            }
        };
        let now = Instant::now();
        let mut reply = {
            let mut table = shared.table();
            match &req {
                AnvilRequest::Disconnect(c) => {
                    // Only a connection this stream opened can be closed by it.
                    if let Some(i) = connected.iter().position(|(x, _)| x == c) {
                        let (_, member) = connected.swap_remove(i);
                        drop(table);
                        if let Some(m) = member {
                            shared.release(&m);
                        }
                        shared.table().event(&req, now)
                    } else {
                        rostfix_proto::AnvilReply { count: 0, rate: 0 }
                    }
                }
                AnvilRequest::Connect(_) => table.event(&req, now),
                _ => table.event(&req, now),
            }
        };
        if let AnvilRequest::Connect(c) = &req {
            let lease = shared.lease(c);
            if let Some((_, Some(count))) = &lease {
                reply.count = *count;
            }
            connected.push((c.clone(), lease.map(|(m, _)| m)));
        }
        // The local table counts every event, so that it is ready when Redis fails.
        if let Some(rate) = shared.shared_rate(&req) {
            reply.rate = rate;
        }
        if let Err(e) = write_message(&mut stream, &reply) {
            log::debug!("cannot answer a client: {e}");
            break;
        }
    }
    let now = Instant::now();
    for (_, member) in &connected {
        if let Some(m) = member {
            shared.release(m);
        }
    }
    let mut table = shared.table();
    for (c, _) in &connected {
        table.disconnect(c, now);
    }
}

/// The main thread: purge idle entries every second, log statistics, exit when
/// master is gone.
pub fn supervise(shared: &Shared, status_every: Duration, master_alive: &dyn Fn() -> bool) {
    let mut last_status = Instant::now();
    let mut last_renew = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if !master_alive() {
            log::debug!("master is gone; exiting");
            return;
        }
        let now = Instant::now();
        if shared
            .renew_every()
            .is_some_and(|every| now.saturating_duration_since(last_renew) >= every)
        {
            last_renew = now;
            shared.renew();
        }
        let mut table = shared.table();
        table.purge(now);
        if now.saturating_duration_since(last_status) >= status_every {
            last_status = now;
            let m = std::mem::take(&mut table.maxima);
            drop(table);
            log_maxima(&m);
        }
    }
}

fn log_maxima(m: &crate::table::Maxima) {
    let lines = [
        ("connection count", &m.count),
        ("connection rate", &m.connection_rate),
        ("message rate", &m.message_rate),
        ("recipient rate", &m.recipient_rate),
    ];
    for (what, slot) in lines {
        if let Some((n, c)) = slot {
            log::info!(
                "statistics: max {what} {n} for ({}:{})",
                c.service,
                c.address
            );
        }
    }
}
