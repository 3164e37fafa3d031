//! The mtasts service's request handling: for one domain, the `_mta-sts` TXT lookup,
//! the cache, and when the id is new or the cached policy expired, the HTTPS fetch
//! (RFC 8461 section 5.1). A fetch that fails leaves a cached policy in force; with
//! none, the domain has no policy. A failed fetch is not retried for
//! [`RETRY_AFTER`], so a policy host that hangs costs one fetch timeout, not one per
//! delivery.
//!
//! Bounds: request frames of at most [`MAX_REQUEST`] bytes, [`IO_TIMEOUT`] to send
//! one, at most [`MAX_STREAMS`] clients at once; DNS lookups and fetches are bounded
//! by their own timeouts.

use rostfix_mtasts::cache::{Cache, Entry};
use rostfix_mtasts::fetch::Fetcher;
use rostfix_mtasts::policy::{self, Policy};
use rostfix_mtasts::protocol::{MtaStsReply, MtaStsRequest, MAX_DOMAIN};
use rostfix_mtasts::txt;
use rostfix_proto::{read_message, write_message};
use rostfix_service::{ClientThreads, Connection};
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAX_REQUEST: u64 = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_STREAMS: usize = 256;
/// Seconds a failed fetch for a domain is not retried.
pub const RETRY_AFTER: u64 = 300;

/// What the client threads share.
#[derive(Clone)]
pub struct Shared {
    cache: Arc<Mutex<Cache>>,
    /// One resolver (a current-thread runtime): lookups take turns.
    dns: Arc<Mutex<rostfix_dns::Resolver>>,
    fetcher: Arc<Fetcher>,
    /// Domain -> (TXT id, Unix seconds) of the last failed fetch.
    failed: Arc<Mutex<HashMap<String, (String, u64)>>>,
    threads: ClientThreads,
}

/// A lock whose holder panicked still guards consistent data (every change is one
/// insert): poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(cache: Cache, dns: rostfix_dns::Resolver, fetcher: Fetcher) -> Shared {
        Shared {
            cache: Arc::new(Mutex::new(cache)),
            dns: Arc::new(Mutex::new(dns)),
            fetcher: Arc::new(fetcher),
            failed: Arc::new(Mutex::new(HashMap::new())),
            threads: ClientThreads::new("mtasts", MAX_STREAMS),
        }
    }

    /// The policy for `domain` now.
    pub fn resolve(&self, domain: &str) -> MtaStsReply {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if !valid_domain(&domain) {
            return no_policy("not a domain name");
        }
        let now = now();
        let id = self.txt_id(&domain);
        let cached = lock(&self.cache).get(&domain, now).cloned();
        let failed_id = lock(&self.failed)
            .get(&domain)
            .filter(|(_, at)| now < at + RETRY_AFTER)
            .map(|(fid, _)| fid.clone());
        let (id, cached) = match next_step(id, cached, failed_id.as_deref()) {
            Step::Use(c) => return reply(c),
            Step::NoPolicy(why) => return no_policy(why),
            Step::Fetch { id, cached } => (id, cached),
        };
        match self.fetch(&domain) {
            Ok(policy) => {
                log::info!(
                    "{domain}: MTA-STS policy id {id} fetched: mode {}, max_age {}, mx {}",
                    policy.mode.name(),
                    policy.max_age,
                    policy.mx.join(" ")
                );
                lock(&self.failed).remove(&domain);
                let entry = Entry {
                    domain: domain.clone(),
                    id,
                    fetched: now,
                    policy,
                };
                if let Err(e) = lock(&self.cache).put(entry.clone(), now) {
                    log::warn!("mta-sts cache: {e}");
                }
                reply(entry)
            }
            Err(why) => {
                log::warn!("{domain}: MTA-STS policy fetch failed: {why}");
                lock(&self.failed).insert(domain.clone(), (id, now));
                match cached {
                    Some(c) => {
                        log::info!("{domain}: using the cached MTA-STS policy id {}", c.id);
                        reply(c)
                    }
                    None => no_policy(&format!("policy fetch failed: {why}")),
                }
            }
        }
    }

    /// The id of the domain's one valid STSv1 TXT record; lookup failures count as
    /// no record (the cache decides then).
    fn txt_id(&self, domain: &str) -> Option<String> {
        let qname = format!("_mta-sts.{domain}.");
        let records = match lock(&self.dns).txt(&qname) {
            Ok(r) => r,
            Err(e) => {
                log::debug!("{qname}: {e}");
                return None;
            }
        };
        txt::policy_id(&records)
    }

    fn fetch(&self, domain: &str) -> Result<Policy, String> {
        let host = format!("mta-sts.{domain}.");
        let addrs: Vec<IpAddr> = {
            let dns = lock(&self.dns);
            match dns.runtime.block_on(dns.resolver.lookup_ip(host.as_str())) {
                Ok(l) => l.iter().collect(),
                Err(e) => return Err(format!("address lookup for {host}: {e}")),
            }
        };
        let body = self
            .fetcher
            .fetch(domain, &addrs)
            .map_err(|e| format!("https://mta-sts.{domain}/.well-known/mta-sts.txt: {e}"))?;
        policy::parse(&body).map_err(|e| e.to_string())
    }
}

/// What [`Shared::resolve`] does after the TXT lookup (RFC 8461 section 5.1).
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Answer with this cached policy.
    Use(Entry),
    /// Fetch the policy of this id; on failure fall back to `cached`.
    Fetch {
        id: String,
        cached: Option<Entry>,
    },
    NoPolicy(&'static str),
}

/// The decision table of docs/mta-sts.md: `id` from the TXT record, the fresh cached
/// entry, and the id of a fetch that failed less than [`RETRY_AFTER`] ago.
fn next_step(id: Option<String>, cached: Option<Entry>, failed_id: Option<&str>) -> Step {
    match (id, cached) {
        (Some(id), Some(c)) if c.id == id => Step::Use(c),
        (Some(id), cached) if failed_id == Some(id.as_str()) => match cached {
            Some(c) => Step::Use(c),
            None => Step::NoPolicy("policy fetch failed recently"),
        },
        (Some(id), cached) => Step::Fetch { id, cached },
        (None, Some(c)) => Step::Use(c),
        (None, None) => Step::NoPolicy("no valid _mta-sts TXT record"),
    }
}

fn reply(e: Entry) -> MtaStsReply {
    MtaStsReply::Policy {
        policy: e.policy,
        id: e.id,
    }
}

fn no_policy(why: &str) -> MtaStsReply {
    MtaStsReply::NoPolicy { why: why.into() }
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= MAX_DOMAIN.min(253)
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Takes one new connection (from the skeleton's acceptor thread) onto a thread.
pub fn start_stream(conn: Connection, shared: &Shared) {
    let s = shared.clone();
    shared
        .threads
        .start(conn, move |stream| serve_one(stream, &s));
}

fn serve_one(mut stream: UnixStream, shared: &Shared) {
    if let Err(e) = stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
    {
        log::warn!("cannot set socket timeouts: {e}");
        return;
    }
    let reply = match read_message::<_, MtaStsRequest>(&mut (&mut stream).take(MAX_REQUEST)) {
        Ok(req) => shared.resolve(&req.domain),
        Err(e) => {
            log::warn!("bad mtasts request: {e}");
            return;
        }
    };
    if let Err(e) = write_message(&mut stream, &reply) {
        log::debug!("cannot answer a client: {e}");
    }
}

/// The main thread: exit when master is gone.
pub fn supervise(master_alive: &dyn Fn() -> bool) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if !master_alive() {
            log::debug!("master is gone; exiting");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_mtasts::policy::Mode;

    fn entry(id: &str) -> Entry {
        Entry {
            domain: "example.org".into(),
            id: id.into(),
            fetched: 0,
            policy: Policy {
                mode: Mode::Enforce,
                mx: vec!["mx.example.org".into()],
                max_age: 86400,
            },
        }
    }

    #[test]
    fn the_cached_policy_serves_while_its_id_is_published() {
        assert_eq!(
            next_step(Some("a".into()), Some(entry("a")), None),
            Step::Use(entry("a"))
        );
    }

    #[test]
    fn a_new_id_refetches_and_keeps_the_old_policy_for_a_failure() {
        assert_eq!(
            next_step(Some("b".into()), Some(entry("a")), None),
            Step::Fetch {
                id: "b".into(),
                cached: Some(entry("a"))
            }
        );
        assert_eq!(
            next_step(Some("b".into()), None, None),
            Step::Fetch {
                id: "b".into(),
                cached: None
            }
        );
    }

    #[test]
    fn a_recent_failure_for_the_same_id_is_not_retried() {
        assert_eq!(
            next_step(Some("b".into()), Some(entry("a")), Some("b")),
            Step::Use(entry("a"))
        );
        assert!(matches!(
            next_step(Some("b".into()), None, Some("b")),
            Step::NoPolicy(_)
        ));
        // A different id is a new policy: fetched at once.
        assert!(matches!(
            next_step(Some("c".into()), None, Some("b")),
            Step::Fetch { .. }
        ));
    }

    #[test]
    fn without_a_txt_record_the_cache_decides() {
        assert_eq!(
            next_step(None, Some(entry("a")), None),
            Step::Use(entry("a"))
        );
        assert!(matches!(next_step(None, None, None), Step::NoPolicy(_)));
    }

    #[test]
    fn domains_are_checked_before_any_lookup() {
        assert!(valid_domain("mta-sts.example.org"));
        assert!(!valid_domain(""));
        assert!(!valid_domain("a..b"));
        assert!(!valid_domain("a b.example"));
        assert!(!valid_domain(&"a".repeat(300)));
    }
}
