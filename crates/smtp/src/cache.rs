//! The connection cache of one smtp/lmtp process: after a delivery, a session that is
//! still good is kept idle under its destination key, and the next delivery request to
//! the same destination (served by the same process: master hands one request per
//! connection to whichever process is idle) sends RSET and reuses it, logging
//! `conn_use=N`.
//!
//! Postfix keeps this cache in the scache service, shared by all smtp processes, and
//! stores a session only "on demand" when qmgr reports a backlog for the destination.
//! Here the cache is per process and, with smtp_connection_cache_on_demand = yes (or
//! the destination in smtp_connection_cache_destinations), every good session is kept:
//! qmgr does not pass a backlog hint. The cost is one idle connection per destination
//! for at most smtp_connection_cache_time_limit (2 s), closed with QUIT by a reaper
//! thread; a session older than smtp_connection_reuse_time_limit is not reused.

use crate::conn::Conn;
use crate::session::Client;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most idle sessions kept at once (a process serves one request at a time, so a few
/// destinations are plenty).
const MAX_IDLE: usize = 8;

struct Entry {
    key: String,
    client: Client<Conn>,
    idle_since: Instant,
}

/// Idle sessions by destination key.
pub struct Cache {
    entries: Mutex<Vec<Entry>>,
    /// smtp_connection_cache_time_limit: how long a session may sit idle.
    pub idle_limit: Duration,
    /// smtp_connection_reuse_time_limit: how old a session may be when reused.
    pub reuse_limit: Duration,
}

impl Cache {
    /// A cache whose expired entries are closed by a background thread.
    pub fn start(idle_limit: Duration, reuse_limit: Duration) -> Arc<Cache> {
        let cache = Arc::new(Cache {
            entries: Mutex::new(Vec::new()),
            idle_limit,
            reuse_limit,
        });
        let weak = Arc::downgrade(&cache);
        let tick = (idle_limit / 2).clamp(Duration::from_millis(200), Duration::from_secs(1));
        let spawned = std::thread::Builder::new()
            .name("conn-cache".into())
            .spawn(move || {
                while let Some(c) = weak.upgrade() {
                    c.reap(Instant::now());
                    drop(c);
                    std::thread::sleep(tick);
                }
            });
        if let Err(e) = spawned {
            // Without the reaper, entries expire on the next lookup instead.
            log::warn!("cannot start the connection cache reaper: {e}");
        }
        cache
    }

    /// Stores an idle session (closing the oldest when full).
    pub fn put(&self, key: String, client: Client<Conn>) {
        let evicted = match self.entries.lock() {
            Ok(mut e) => {
                e.push(Entry {
                    key,
                    client,
                    idle_since: Instant::now(),
                });
                if e.len() > MAX_IDLE {
                    Some(e.remove(0))
                } else {
                    None
                }
            }
            Err(_) => None,
        };
        if let Some(mut old) = evicted {
            old.client.quit();
        }
    }

    /// Takes a usable session for `key`: not idle too long, not too old, and RSET
    /// accepted. Unusable ones are closed on the way.
    pub fn take(&self, key: &str) -> Option<Client<Conn>> {
        self.reap(Instant::now());
        loop {
            let entry = {
                let mut e = self.entries.lock().ok()?;
                let pos = e.iter().rposition(|x| x.key == key)?;
                e.remove(pos)
            };
            let mut client = entry.client;
            if client.created.elapsed() > self.reuse_limit {
                client.quit();
                continue;
            }
            if client.reset() {
                return Some(client);
            }
        }
    }

    /// Closes every idle session: qmgr has closed the request stream they belonged to,
    /// so keeping them would open more connections to a destination than qmgr counts.
    pub fn close_all(&self) {
        let all: Vec<Entry> = match self.entries.lock() {
            Ok(mut e) => e.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for mut entry in all {
            entry.client.quit();
        }
    }

    /// Closes entries idle longer than the limit.
    fn reap(&self, now: Instant) {
        let expired: Vec<Entry> = match self.entries.lock() {
            Ok(mut e) => {
                let (old, keep): (Vec<Entry>, Vec<Entry>) = e
                    .drain(..)
                    .partition(|x| now.duration_since(x.idle_since) >= self.idle_limit);
                *e = keep;
                old
            }
            Err(_) => Vec::new(),
        };
        // QUIT outside the lock: a slow server must not block the delivery thread.
        for mut x in expired {
            x.client.quit();
        }
    }
}
