//! Traffic shaping per mailbox provider (docs/bulk-sending.md, "Traffic shaping per
//! provider"): which bucket a destination belongs to, from the operator's rules file
//! (`rostfix_shaping_rules`), reloaded when its modification time changes. The
//! buckets' live limits are kept by the scheduler (schedule.rs, [`bucket::Bucket`]).
//!
//! A destination of a shaped transport (`rostfix_shaping_transports`) matches a rule
//! by its domain (`domains`) or by its MX hosts (`mx`), which qmgr looks up itself in
//! a helper thread ([`mx`]) and caches: the first message to an unknown domain waits
//! for the answer up to [`MX_WAIT`], then goes unshaped (a DNS failure the same).

pub mod bucket;
pub mod mx;
pub mod pattern;
pub mod rules;
pub mod shared;
pub mod throttle;

use crate::route::{nexthop_host, Route};
use crate::schedule::PendingRequest;
use mx::{MxAnswer, MxLookups};
use rules::Rules;
use shared::SharedRates;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Longest a request waits for its domain's MX answer before it goes unshaped.
pub const MX_WAIT: Duration = Duration::from_secs(5);
/// How long MX answers, and DNS failures, are remembered.
const MX_TTL: Duration = Duration::from_secs(3600);
const MX_FAILURE_TTL: Duration = Duration::from_secs(60);
/// Most domains remembered; the cache starts afresh beyond that.
const MX_CACHE_MAX: usize = 100_000;

/// Where a destination's mail is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Unshaped,
    Bucket(String),
    /// Its MX hosts are being looked up.
    Wait,
}

/// The rules, the MX cache and the requests waiting for a lookup.
pub struct Shaper {
    path: Option<PathBuf>,
    /// (modification time, size) of the file the rules were read from.
    stamp: Option<(SystemTime, u64)>,
    rules: Rules,
    transports: Vec<String>,
    mx_cache: HashMap<String, (MxAnswer, Instant)>,
    asked: HashSet<String>,
    waiting: Vec<(PendingRequest, String, Instant)>,
    lookups: Option<MxLookups>,
    /// The Redis thread when bucket rates are shared with other machines.
    shared: Option<SharedRates>,
}

/// Why the rules file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("larger than {} bytes", rules::MAX_FILE_BYTES)]
    TooLarge,
    #[error("{0}")]
    Rules(#[from] rules::RulesError),
}

fn read_rules(path: &PathBuf) -> Result<((SystemTime, u64), Rules), LoadError> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let stamp = (meta.modified()?, meta.len());
    let mut text = String::new();
    file.take(rules::MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > rules::MAX_FILE_BYTES {
        return Err(LoadError::TooLarge);
    }
    Ok((stamp, rules::parse(&text)?))
}

impl Shaper {
    /// No shaping at all.
    pub fn disabled() -> Shaper {
        Shaper::new(None, Vec::new())
    }

    /// Rules from `path` (None or empty: no shaping) for the named transports. A bad
    /// file is logged and means no rules until it is fixed.
    pub fn new(path: Option<PathBuf>, transports: Vec<String>) -> Shaper {
        let mut s = Shaper {
            path: path.filter(|p| !p.as_os_str().is_empty()),
            stamp: None,
            rules: Rules::default(),
            transports,
            mx_cache: HashMap::new(),
            asked: HashSet::new(),
            waiting: Vec::new(),
            lookups: None,
            shared: None,
        };
        s.reload_if_changed();
        s
    }

    pub fn enabled(&self) -> bool {
        self.path.is_some()
    }

    pub fn set_lookups(&mut self, lookups: MxLookups) {
        self.lookups = Some(lookups);
    }

    /// Shares the buckets' rates through this Redis thread.
    pub fn set_shared(&mut self, shared: SharedRates) {
        self.shared = Some(shared);
    }

    pub fn shared(&self) -> Option<&SharedRates> {
        self.shared.as_ref()
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Reads the file again when its time stamp changed; true when new rules are in
    /// force. A bad file keeps the rules in force, with a warning naming file and line.
    pub fn reload_if_changed(&mut self) -> bool {
        let Some(path) = self.path.clone() else {
            return false;
        };
        let now_stamp = std::fs::metadata(&path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if now_stamp.is_some() && now_stamp == self.stamp {
            return false;
        }
        match read_rules(&path) {
            Ok((stamp, rules)) => {
                let first = self.stamp.is_none();
                self.stamp = Some(stamp);
                log::info!(
                    "shaping: {} {} bucket(s) from {}",
                    if first { "loaded" } else { "reloaded" },
                    rules.rules.len(),
                    path.display()
                );
                self.rules = rules;
                true
            }
            Err(e) => {
                // Remember the bad file's stamp: warn once per edit, not every turn.
                self.stamp = now_stamp;
                log::warn!(
                    "shaping: {}: {e}; keeping the {} bucket(s) in force",
                    path.display(),
                    self.rules.rules.len()
                );
                false
            }
        }
    }

    /// The bucket of `route` as far as known now, asking for MX hosts when needed.
    pub fn classify(&mut self, route: &Route, now: Instant) -> Class {
        if self.rules.rules.is_empty() || !self.transports.contains(&route.transport) {
            return Class::Unshaped;
        }
        let host = nexthop_host(&route.nexthop);
        let bucket =
            |r: Option<&rules::Rule>| r.map_or(Class::Unshaped, |r| Class::Bucket(r.name.clone()));
        if let Some(rule) = self.rules.by_domain(&host) {
            return Class::Bucket(rule.name.clone());
        }
        // `[host]` names the mail host itself: no MX lookup.
        if route.nexthop.trim_start().starts_with('[') {
            return bucket(self.rules.by_mx(&[host]));
        }
        if !self.rules.wants_mx() {
            return Class::Unshaped;
        }
        match self.mx_cache.get(&host) {
            Some((answer, until)) if now < *until => match answer {
                Ok(hosts) => bucket(self.rules.by_mx(hosts)),
                Err(_) => Class::Unshaped,
            },
            _ => {
                if self.asked.contains(&host) {
                    return Class::Wait;
                }
                match &self.lookups {
                    Some(l) if l.ask(&host) => {
                        self.asked.insert(host);
                        Class::Wait
                    }
                    _ => Class::Unshaped,
                }
            }
        }
    }

    /// Keeps `req` until its domain's MX answer comes (or [`MX_WAIT`] passes).
    pub fn hold(&mut self, req: PendingRequest, now: Instant) {
        let host = nexthop_host(&req.route.nexthop);
        self.waiting.push((req, host, now + MX_WAIT));
    }

    /// An MX answer: cached; the requests that waited for it are handed back.
    pub fn answer(
        &mut self,
        domain: String,
        answer: MxAnswer,
        now: Instant,
    ) -> Vec<PendingRequest> {
        self.asked.remove(&domain);
        if let Err(why) = &answer {
            log::warn!("shaping: MX lookup of {domain} failed: {why}; not shaped for now");
        }
        let ttl = if answer.is_ok() {
            MX_TTL
        } else {
            MX_FAILURE_TTL
        };
        if self.mx_cache.len() >= MX_CACHE_MAX {
            self.mx_cache.clear();
        }
        self.mx_cache.insert(domain.clone(), (answer, now + ttl));
        self.release(|host, _| *host == domain)
    }

    /// Requests whose wait is over.
    pub fn overdue(&mut self, now: Instant) -> Vec<PendingRequest> {
        self.release(|_, until| now >= until)
    }

    fn release(&mut self, due: impl Fn(&String, Instant) -> bool) -> Vec<PendingRequest> {
        let (out, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, host, until)| due(host, *until));
        self.waiting = keep;
        out.into_iter().map(|(r, _, _)| r).collect()
    }

    /// The bucket of `route` from what is known, never waiting (for re-tagging after a
    /// reload).
    pub fn known(&mut self, route: &Route, now: Instant) -> Option<String> {
        match self.classify(route, now) {
            Class::Bucket(b) => Some(b),
            Class::Unshaped | Class::Wait => None,
        }
    }

    /// Requests waiting for an MX answer.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::DeliveryRecipient;

    fn route(nexthop: &str) -> Route {
        Route::new("smtp", nexthop)
    }

    fn request(nexthop: &str) -> PendingRequest {
        PendingRequest {
            queue_id: "ABC".into(),
            route: route(nexthop),
            recipients: vec![DeliveryRecipient {
                offset: 1,
                address: format!("u@{nexthop}"),
                orig_address: String::new(),
            }],
            size: 0,
        }
    }

    fn shaper(text: &str, name: &str) -> (Shaper, PathBuf) {
        let dir = std::env::temp_dir().join(format!("qmgr-shaping-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shaping.cf");
        std::fs::write(&path, text).unwrap();
        (Shaper::new(Some(path.clone()), vec!["smtp".into()]), path)
    }

    #[test]
    fn domains_mx_answers_and_waiting_requests() {
        let (mut s, _) = shaper(
            "[a]\nmx = *.provider-a.test\n[b]\ndomains = b.test\nmx = mx.b.test\n",
            "classify",
        );
        let t0 = Instant::now();
        assert_eq!(
            s.classify(&route("b.test:2525"), t0),
            Class::Bucket("b".into())
        );
        assert_eq!(
            s.classify(&route("[mx.b.test]:25"), t0),
            Class::Bucket("b".into())
        );
        let other = Route::new("local", "b.test");
        assert_eq!(s.classify(&other, t0), Class::Unshaped);
        // Without a lookup thread, unknown domains go unshaped at once.
        assert_eq!(s.classify(&route("a1.test"), t0), Class::Unshaped);
        // With an answer in the cache they are classified by their MX hosts.
        let held = request("a1.test:2525");
        s.asked.insert("a1.test".into());
        assert_eq!(s.classify(&held.route, t0), Class::Wait);
        s.hold(held.clone(), t0);
        s.hold(request("z.test"), t0);
        let back = s.answer("a1.test".into(), Ok(vec!["mx2.provider-a.test".into()]), t0);
        assert_eq!(back, vec![held.clone()]);
        assert_eq!(s.classify(&held.route, t0), Class::Bucket("a".into()));
        // The other request goes unshaped once its wait is over.
        assert!(s.overdue(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(s.overdue(t0 + MX_WAIT).len(), 1);
        assert_eq!(s.waiting(), 0);
        // Failures and expired answers are not used.
        s.answer("f.test".into(), Err("SERVFAIL".into()), t0);
        assert_eq!(s.classify(&route("f.test"), t0), Class::Unshaped);
        assert_eq!(s.classify(&held.route, t0 + MX_TTL), Class::Unshaped);
    }

    #[test]
    fn an_edited_file_is_reloaded_and_a_bad_one_keeps_the_old_rules() {
        let (mut s, path) = shaper("[a]\nmx = *.a.test\n", "reload");
        assert_eq!(s.rules().rules.len(), 1);
        assert!(!s.reload_if_changed(), "unchanged");
        std::fs::write(&path, "[a]\nmx = *.a.test\n[b]\nmx = *.b.test\n").unwrap();
        assert!(s.reload_if_changed());
        assert_eq!(s.rules().rules.len(), 2);
        std::fs::write(&path, "[a]\nmx = *.a.test\nrate = lots and lots\n").unwrap();
        assert!(!s.reload_if_changed());
        assert_eq!(s.rules().rules.len(), 2, "old rules kept");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
