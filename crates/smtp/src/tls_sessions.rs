//! smtp_tls_session_cache_database / smtp_tls_session_cache_timeout: TLS session
//! resumption across deliveries to the same server, so a second connection skips the
//! full handshake (one round trip and the server's signature fewer).
//!
//! Postfix keeps the sessions in a table shared by every smtp process through tlsmgr.
//! rustls does not expose its session values in a form that can be written to disk,
//! so here each smtp process keeps its own cache in memory: a process that delivers
//! to a server again (the usual case: smtp processes live for max_use deliveries or
//! max_idle seconds) resumes, a new process starts cold. As in Postfix, an empty
//! smtp_tls_session_cache_database means no cache, and so no resumption at all; the
//! table named there is not created. A resumed session is judged again against the
//! connection's policy (crate::tls does that with the certificate chain rustls keeps
//! with the session), so a session made under a weaker policy grants nothing.

use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use rustls::NamedGroup;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Servers remembered at most; the least recently stored goes first.
const MAX_SERVERS: usize = 1000;
/// TLS 1.3 tickets kept per server (servers send two by default; each is used once).
const MAX_TICKETS: usize = 4;

type Name = ServerName<'static>;

#[derive(Default)]
struct Sessions {
    tls12: HashMap<Name, (Instant, Tls12ClientSessionValue)>,
    tls13: HashMap<Name, VecDeque<(Instant, Tls13ClientSessionValue)>>,
    kx_hints: HashMap<Name, NamedGroup>,
    /// Servers in the order their last session was stored (for the bound).
    order: VecDeque<Name>,
}

impl Sessions {
    fn touch(&mut self, name: &Name) {
        self.order.retain(|n| n != name);
        self.order.push_back(name.clone());
        while self.order.len() > MAX_SERVERS {
            if let Some(old) = self.order.pop_front() {
                self.tls12.remove(&old);
                self.tls13.remove(&old);
                self.kx_hints.remove(&old);
            }
        }
    }
}

/// The per-process session cache; entries older than the timeout are never used.
pub struct SessionCache {
    timeout: Duration,
    sessions: Mutex<Sessions>,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SessionCache {
    /// None when `database` is empty or `timeout` is zero (Postfix: no caching).
    pub fn new(database: &str, timeout: Duration) -> Option<SessionCache> {
        if database.trim().is_empty() || timeout.is_zero() {
            return None;
        }
        Some(SessionCache {
            timeout,
            sessions: Mutex::new(Sessions::default()),
        })
    }

    fn fresh(&self, stored: Instant) -> bool {
        stored.elapsed() < self.timeout
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientSessionStore for SessionCache {
    fn set_kx_hint(&self, server_name: Name, group: NamedGroup) {
        self.lock().kx_hints.insert(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.lock().kx_hints.get(&server_name.to_owned()).copied()
    }

    fn set_tls12_session(&self, server_name: Name, value: Tls12ClientSessionValue) {
        let mut s = self.lock();
        s.touch(&server_name);
        s.tls12.insert(server_name, (Instant::now(), value));
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        let mut s = self.lock();
        let name = server_name.to_owned();
        match s.tls12.get(&name) {
            Some((stored, value)) if self.fresh(*stored) => Some(value.clone()),
            Some(_) => {
                s.tls12.remove(&name);
                None
            }
            None => None,
        }
    }

    fn remove_tls12_session(&self, server_name: &Name) {
        self.lock().tls12.remove(server_name);
    }

    fn insert_tls13_ticket(&self, server_name: Name, value: Tls13ClientSessionValue) {
        let mut s = self.lock();
        s.touch(&server_name);
        let tickets = s.tls13.entry(server_name).or_default();
        if tickets.len() >= MAX_TICKETS {
            tickets.pop_front();
        }
        tickets.push_back((Instant::now(), value));
    }

    fn take_tls13_ticket(&self, server_name: &Name) -> Option<Tls13ClientSessionValue> {
        let mut s = self.lock();
        let tickets = s.tls13.get_mut(server_name)?;
        // Newest first: it has the longest life left; stale ones are dropped.
        while let Some((stored, value)) = tickets.pop_back() {
            if self.fresh(stored) {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_database_or_zero_timeout_means_no_cache() {
        assert!(SessionCache::new("", Duration::from_secs(3600)).is_none());
        assert!(SessionCache::new("btree:/var/lib/rostfix/smtp_scache", Duration::ZERO).is_none());
        assert!(SessionCache::new("btree:/x", Duration::from_secs(1)).is_some());
    }

    #[test]
    fn kx_hints_and_the_server_bound() {
        let cache = SessionCache::new("btree:/x", Duration::from_secs(60)).unwrap();
        let name = |i: usize| ServerName::try_from(format!("mx{i}.example")).unwrap();
        cache.set_kx_hint(name(0), NamedGroup::X25519);
        assert_eq!(cache.kx_hint(&name(0)), Some(NamedGroup::X25519));
        let mut s = cache.lock();
        for i in 0..MAX_SERVERS + 5 {
            s.touch(&name(i));
        }
        assert_eq!(s.order.len(), MAX_SERVERS);
        assert_eq!(s.order.front(), Some(&name(5)));
        assert!(!s.kx_hints.contains_key(&name(0)));
    }
}
