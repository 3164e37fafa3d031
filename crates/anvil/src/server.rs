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
use std::io::Read;
use std::os::unix::net::UnixStream;
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
/// rates when configured (shared_limits.rs).
#[derive(Debug, Clone)]
pub struct Shared {
    table: Arc<Mutex<Table>>,
    threads: ClientThreads,
    redis: Option<Arc<Mutex<SharedLimits>>>,
}

impl Shared {
    pub fn new(unit: Duration, redis: Option<SharedLimits>) -> Shared {
        Shared {
            table: Arc::new(Mutex::new(Table::new(unit))),
            threads: ClientThreads::new("anvil", MAX_STREAMS),
            redis: redis.map(|r| Arc::new(Mutex::new(r))),
        }
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
    let mut connected: Vec<AnvilClient> = Vec::new();
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
                    if let Some(i) = connected.iter().position(|x| x == c) {
                        connected.swap_remove(i);
                        table.event(&req, now)
                    } else {
                        rostfix_proto::AnvilReply { count: 0, rate: 0 }
                    }
                }
                AnvilRequest::Connect(c) => {
                    connected.push(c.clone());
                    table.event(&req, now)
                }
                _ => table.event(&req, now),
            }
        };
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
    let mut table = shared.table();
    for c in &connected {
        table.disconnect(c, now);
    }
}

/// The main thread: purge idle entries every second, log statistics, exit when
/// master is gone.
pub fn supervise(shared: &Shared, status_every: Duration, master_alive: &dyn Fn() -> bool) {
    let mut last_status = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if !master_alive() {
            log::debug!("master is gone; exiting");
            return;
        }
        let now = Instant::now();
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
