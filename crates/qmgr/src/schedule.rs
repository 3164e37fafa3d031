//! Delivery scheduling as Postfix's qmgr does it: recipients grouped into requests per
//! destination (transport, nexthop) within the transport's recipient limit; per
//! destination a concurrency window with slow start and feedback; dead destinations;
//! rate delay; per-transport process limits. Destinations are served round-robin so
//! one busy destination cannot starve the others. Pure (time is passed in): the caller
//! starts what [`Scheduler::next`] hands out and reports each request finished.
//!
//! - Slow start: a destination begins with `initial_destination_concurrency` requests
//!   in flight (never above its limit). Each success adds the positive feedback
//!   (`1/concurrency`: about +1 per window's worth of successes), each failure takes the
//!   negative feedback, never below 1.
//! - Dead: every failure adds 1/window to the failed-cohort count (a success resets it);
//!   when it reaches `destination_concurrency_failed_cohort_limit` the destination is
//!   dead for [`Limits::dead_time`] (Postfix: minimal_backoff_time). Its queued requests,
//!   and new ones, are handed back by [`Scheduler::take_suspended`] to be deferred with
//!   the last failure reason, so other mail is not held behind it. When the time is up
//!   it starts again with the initial concurrency.
//! - Rate delay: with `destination_rate_delay` > 0 a destination gets one request at a
//!   time and waits that long after each before starting the next.
//! - Process limit: the transport's master.cf maxproc caps its requests in flight over
//!   all its destinations (0 = no cap).
//! - Shaping buckets (crates/qmgr/src/shaping): a destination tagged with a bucket also
//!   waits for the bucket's concurrency (over all its destinations) and its hourly rate;
//!   throttling replies slow the bucket down and [`Scheduler::tick`] recovers it.
//! - Per-recipient destinations: for a transport whose recipient limit is 1 the
//!   destination is the recipient (Postfix's rule; crate::route), so
//!   `local_destination_concurrency_limit = 2` means two deliveries at once per mailbox.
//! - Group commit: a transport with a batch limit above 1 (the local agent's) takes
//!   several queued requests of one destination in one slot ([`Scheduler::next_batch`]),
//!   spread so that every free slot of the window gets its share of the backlog.

use crate::route::Route;
use crate::shaping::bucket::Bucket;
use crate::shaping::rules::Rules;
use crate::shaping::shared::{Ask, Grant};
use rostfix_proto::DeliveryRecipient;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A feedback amount: `N` or `N/concurrency` (relative to the current window).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Feedback {
    Fixed(f64),
    PerConcurrency(f64),
}

impl Feedback {
    /// Parses Postfix's syntax; None for anything else.
    pub fn parse(text: &str) -> Option<Feedback> {
        let t = text.trim();
        if let Some(n) = t.strip_suffix("/concurrency") {
            n.trim().parse().ok().map(Feedback::PerConcurrency)
        } else {
            t.parse().ok().map(Feedback::Fixed)
        }
    }

    fn amount(self, window: f64) -> f64 {
        match self {
            Feedback::Fixed(n) => n,
            Feedback::PerConcurrency(n) => n / window.max(1.0),
        }
    }
}

/// The scheduling parameters of one transport.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportPolicy {
    /// `_destination_concurrency_limit` (at least 1).
    pub concurrency_limit: usize,
    /// `_destination_recipient_limit`; 0 = no limit.
    pub recipient_limit: usize,
    /// `_initial_destination_concurrency`.
    pub initial_concurrency: usize,
    pub positive_feedback: Feedback,
    pub negative_feedback: Feedback,
    /// `_destination_concurrency_failed_cohort_limit`; 0 = never dead.
    pub failed_cohort_limit: usize,
    /// `_destination_rate_delay`.
    pub rate_delay: Duration,
    /// master.cf maxproc of the transport; 0 = unlimited.
    pub process_limit: usize,
    /// Group commit: requests of one destination sent together in one request (one
    /// slot); 1 = one at a time (rostfix_local_batch_limit for the local agent).
    pub batch_limit: usize,
    /// Content bytes of a group commit's messages (a batch holds at least one); 0 = no
    /// bound (rostfix_local_batch_size_limit).
    pub batch_size_limit: u64,
}

impl Default for TransportPolicy {
    /// Postfix's defaults for a remote transport.
    fn default() -> Self {
        TransportPolicy {
            concurrency_limit: 20,
            recipient_limit: 50,
            initial_concurrency: 5,
            positive_feedback: Feedback::PerConcurrency(1.0),
            negative_feedback: Feedback::PerConcurrency(1.0),
            failed_cohort_limit: 1,
            rate_delay: Duration::ZERO,
            process_limit: 0,
            batch_limit: 1,
            batch_size_limit: 0,
        }
    }
}

/// Every transport's policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// For transports without an entry.
    pub default: TransportPolicy,
    pub per_transport: HashMap<String, TransportPolicy>,
    /// Cap on requests in flight over all destinations (one thread each).
    pub total_concurrency: usize,
    /// How long a dead destination stays dead.
    pub dead_time: Duration,
    /// Requests a destination may have handed out per slot of its concurrency window
    /// (see [`Limits::depth`]); 1 = one request per parallel delivery.
    pub pipeline_depth: usize,
}

impl Limits {
    pub fn policy(&self, transport: &str) -> &TransportPolicy {
        self.per_transport.get(transport).unwrap_or(&self.default)
    }

    /// Requests allowed in flight to one destination of `transport` (at least 1).
    pub fn concurrency(&self, transport: &str) -> usize {
        let p = self.policy(transport);
        if p.rate_delay > Duration::ZERO {
            1
        } else {
            p.concurrency_limit.max(1)
        }
    }

    /// Requests handed out per window slot: the manager runs at most the window's
    /// worth of deliveries at once and queues the rest on those workers, so an agent
    /// finds its next request waiting. 1 with a rate delay (the delay is between
    /// deliveries), a process limit of 1, or per-recipient destinations: those share
    /// the transport's agent streams (worker.rs), where a request queued behind a
    /// running one could wait on another recipient's delivery (the group commit keeps
    /// their agents busy instead).
    pub fn depth(&self, transport: &str) -> usize {
        let p = self.policy(transport);
        if p.rate_delay > Duration::ZERO || p.process_limit == 1 || self.per_recipient(transport) {
            1
        } else {
            self.pipeline_depth.max(1)
        }
    }

    /// True when the transport's destinations are recipients (recipient limit 1).
    pub fn per_recipient(&self, transport: &str) -> bool {
        self.policy(transport).recipient_limit == 1
    }

    /// Recipients per request for `transport`; `usize::MAX` when unlimited (0).
    pub fn recipients(&self, transport: &str) -> usize {
        match self.policy(transport).recipient_limit {
            0 => usize::MAX,
            n => n,
        }
    }
}

/// One delivery request waiting for (or holding) a concurrency slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    pub queue_id: String,
    pub route: Route,
    pub recipients: Vec<DeliveryRecipient>,
    /// The message's content size, for the group commit's byte bound.
    pub size: u64,
}

/// How a finished request went, for the concurrency feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The destination answered (delivered, bounced, or a recipient-level deferral).
    Success,
    /// The destination could not be reached or failed as a whole; the reason is kept
    /// for the mail deferred while it is dead.
    Failure(String),
}

/// Groups a message's routed recipients into requests: one destination per request, at
/// most the transport's recipient limit each, recipients in their original order. A
/// transport with a recipient limit of 1 gets the recipient as its destination.
pub fn group(
    queue_id: &str,
    size: u64,
    routed: Vec<(Route, DeliveryRecipient)>,
    limits: &Limits,
) -> Vec<PendingRequest> {
    let mut order: Vec<Route> = Vec::new();
    let mut by_route: HashMap<Route, Vec<DeliveryRecipient>> = HashMap::new();
    for (route, rcpt) in routed {
        let route = if limits.per_recipient(&route.transport) {
            route.for_recipient(&rcpt.address)
        } else {
            route
        };
        if !by_route.contains_key(&route) {
            order.push(route.clone());
        }
        by_route.entry(route).or_default().push(rcpt);
    }
    let mut out = Vec::new();
    for route in order {
        let rcpts = by_route.remove(&route).unwrap_or_default();
        let per = limits.recipients(&route.transport);
        let mut chunk = Vec::new();
        for r in rcpts {
            chunk.push(r);
            if chunk.len() >= per {
                out.push(PendingRequest {
                    queue_id: queue_id.to_string(),
                    route: route.clone(),
                    recipients: std::mem::take(&mut chunk),
                    size,
                });
            }
        }
        if !chunk.is_empty() {
            out.push(PendingRequest {
                queue_id: queue_id.to_string(),
                route,
                recipients: chunk,
                size,
            });
        }
    }
    out
}

/// Per-destination state.
#[derive(Debug)]
struct Dest {
    queue: VecDeque<PendingRequest>,
    in_flight: usize,
    /// Concurrency window (whole numbers).
    window: f64,
    /// Postfix's feedback accumulators: the window moves by one when they reach 1.
    success: f64,
    failure: f64,
    fail_cohorts: f64,
    dead_until: Option<Instant>,
    reason: String,
    not_before: Option<Instant>,
    /// The last request finished with the destination answering: only then are
    /// requests queued behind running ones (depth), so a destination that turns out
    /// dead is tried no more often than its window allows.
    proven: bool,
    /// The shaping bucket its deliveries count in.
    bucket: Option<String>,
}

/// Queued requests and concurrency state per destination.
#[derive(Debug)]
pub struct Scheduler {
    limits: Limits,
    dests: BTreeMap<Route, Dest>,
    per_transport: HashMap<String, usize>,
    total_in_flight: usize,
    /// The destination served last: the next pick starts after it (round-robin).
    cursor: Option<Route>,
    /// Shaping buckets by name (the rules in force).
    buckets: HashMap<String, Bucket>,
    /// Bucket rates are shared with other machines (shaping/shared.rs).
    shared_rates: bool,
}

impl Scheduler {
    pub fn new(limits: Limits) -> Scheduler {
        Scheduler {
            limits,
            dests: BTreeMap::new(),
            per_transport: HashMap::new(),
            total_in_flight: 0,
            cursor: None,
            buckets: HashMap::new(),
            shared_rates: false,
        }
    }

    /// Shares the rates of the buckets (present and future) with other machines.
    pub fn share_rates(&mut self) {
        self.shared_rates = true;
        self.buckets.values_mut().for_each(Bucket::share);
    }

    fn initial_window(&self, transport: &str) -> f64 {
        let p = self.limits.policy(transport);
        p.initial_concurrency
            .clamp(1, self.limits.concurrency(transport)) as f64
    }

    fn dest(&mut self, route: &Route) -> &mut Dest {
        let window = self.initial_window(&route.transport);
        self.dests.entry(route.clone()).or_insert_with(|| Dest {
            queue: VecDeque::new(),
            in_flight: 0,
            window,
            success: 0.0,
            failure: 0.0,
            fail_cohorts: 0.0,
            dead_until: None,
            reason: String::new(),
            not_before: None,
            proven: false,
            bucket: None,
        })
    }

    /// Queues `req` with its destination unshaped (the tests' short form).
    #[cfg(test)]
    pub fn enqueue(&mut self, req: PendingRequest) {
        self.enqueue_in(req, None);
    }

    /// Queues `req`, its destination counted in `bucket` from now on (None: unshaped).
    pub fn enqueue_in(&mut self, req: PendingRequest, bucket: Option<String>) {
        let route = req.route.clone();
        self.retag(&route, bucket);
        self.dest(&route).queue.push_back(req);
    }

    /// Moves a destination to another bucket, its deliveries in flight with it.
    fn retag(&mut self, route: &Route, bucket: Option<String>) {
        let bucket = bucket.filter(|b| self.buckets.contains_key(b));
        let d = self.dest(route);
        if d.bucket == bucket {
            return;
        }
        let (old, n) = (
            std::mem::replace(&mut d.bucket, bucket.clone()),
            d.in_flight,
        );
        if let Some(b) = old.and_then(|o| self.buckets.get_mut(&o)) {
            b.in_flight = b.in_flight.saturating_sub(n);
        }
        if let Some(b) = bucket.and_then(|o| self.buckets.get_mut(&o)) {
            b.in_flight += n;
        }
    }

    /// New shaping rules: buckets kept by name (with their counts), changed limits in
    /// force at once; destinations are re-tagged by `bucket_of`.
    pub fn set_rules(
        &mut self,
        rules: &Rules,
        now: Instant,
        mut bucket_of: impl FnMut(&Route) -> Option<String>,
    ) {
        let mut old = std::mem::take(&mut self.buckets);
        for rule in &rules.rules {
            let mut b = match old.remove(&rule.name) {
                Some(mut b) => {
                    b.update(rule.clone(), now);
                    b
                }
                None => Bucket::new(rule.clone(), now),
            };
            if self.shared_rates {
                b.share();
            }
            self.buckets.insert(rule.name.clone(), b);
        }
        let routes: Vec<Route> = self.dests.keys().cloned().collect();
        for route in routes {
            let want = bucket_of(&route);
            if let Some(d) = self.dests.get_mut(&route) {
                // Counts of a removed bucket went with it.
                if d.bucket
                    .as_ref()
                    .is_some_and(|b| !self.buckets.contains_key(b))
                {
                    d.bucket = None;
                }
            }
            if let Some(d) = self.dests.get(&route) {
                if d.bucket != want {
                    self.retag(&route, want);
                }
            }
        }
    }

    /// The bucket a destination counts in, and its rule's messages per connection.
    pub fn bucket_of(&self, route: &Route) -> Option<(&str, u32)> {
        let name = self.dests.get(route)?.bucket.as_deref()?;
        let b = self.buckets.get(name)?;
        Some((name, b.rule.messages_per_connection))
    }

    /// The bucket's configured concurrency (0 = none of its own).
    pub fn bucket_concurrency(&self, name: &str) -> usize {
        self.buckets.get(name).map_or(0, |b| b.rule.concurrency)
    }

    /// A throttling reply (`why`) from a destination: its bucket backs off (logged).
    pub fn throttled(&mut self, route: &Route, why: &str, now: Instant) {
        let Some(name) = self.dests.get(route).and_then(|d| d.bucket.clone()) else {
            return;
        };
        if let Some(change) = self
            .buckets
            .get_mut(&name)
            .and_then(|b| b.throttled(why, now))
        {
            log::warn!("shaping: bucket {name}: {change}");
        }
    }

    /// What the buckets ask Redis for now: tokens for buckets with queued work that
    /// run low, cuts to publish.
    pub fn shared_asks(&mut self, now: Instant) -> Vec<(String, Ask)> {
        if !self.shared_rates {
            return Vec::new();
        }
        let busy: HashSet<&str> = self
            .dests
            .values()
            .filter(|d| !d.queue.is_empty())
            .filter_map(|d| d.bucket.as_deref())
            .collect();
        let mut asks = Vec::new();
        for (name, b) in &mut self.buckets {
            if let Some(ask) = b.ask(busy.contains(name.as_str()), now) {
                asks.push((name.clone(), ask));
            }
        }
        asks
    }

    /// Redis's answer for bucket `name` (a change logged).
    pub fn granted(&mut self, name: &str, grant: &Grant, now: Instant) {
        if let Some(change) = self
            .buckets
            .get_mut(name)
            .and_then(|b| b.answer(grant, now))
        {
            log::warn!("shaping: bucket {name}: {change}");
        }
    }

    /// Recovery steps that are due (logged).
    pub fn tick(&mut self, now: Instant) {
        for (name, b) in &mut self.buckets {
            if let Some(change) = b.tick(now) {
                log::info!("shaping: bucket {name}: {change}");
            }
        }
    }

    /// When a bucket next gets a token or a recovery step: the main loop wakes then.
    pub fn next_shaping_event(&self, now: Instant) -> Option<Instant> {
        self.buckets
            .values()
            .filter_map(|b| b.next_event(now))
            .min()
    }

    /// A bucket's current (rate per hour, concurrency), for tests.
    #[cfg(test)]
    pub fn bucket_limits(&self, name: &str) -> Option<(u32, usize)> {
        self.buckets.get(name).map(|b| (b.rate, b.concurrency))
    }

    /// The current concurrency window of a destination.
    #[cfg(test)]
    pub fn window(&self, route: &Route) -> Option<usize> {
        self.dests.get(route).map(|d| d.window as usize)
    }

    /// True while the destination is marked dead.
    #[cfg(test)]
    pub fn is_dead(&self, route: &Route, now: Instant) -> bool {
        self.dests
            .get(route)
            .and_then(|d| d.dead_until)
            .is_some_and(|t| now < t)
    }

    /// Queued requests of dead destinations, with the reason to defer them with.
    /// Also revives destinations whose dead time is over.
    pub fn take_suspended(&mut self, now: Instant) -> Vec<(PendingRequest, String)> {
        let mut out = Vec::new();
        let mut revive = Vec::new();
        for (route, d) in &mut self.dests {
            match d.dead_until {
                Some(t) if now < t => {
                    let reason = format!("delivery temporarily suspended: {}", d.reason);
                    out.extend(d.queue.drain(..).map(|r| (r, reason.clone())));
                }
                Some(_) => revive.push(route.clone()),
                None => {}
            }
        }
        for route in revive {
            self.revive(&route);
        }
        out
    }

    fn revive(&mut self, route: &Route) {
        let window = self.initial_window(&route.transport);
        if let Some(d) = self.dests.get_mut(route) {
            d.dead_until = None;
            d.fail_cohorts = 0.0;
            d.window = window;
        }
    }

    /// For the metrics service: each known destination's deliveries in flight and
    /// whether it is dead now.
    pub fn destination_states(&self, now: Instant) -> Vec<(&Route, usize, bool)> {
        self.dests
            .iter()
            .map(|(r, d)| (r, d.in_flight, d.dead_until.is_some_and(|t| now < t)))
            .collect()
    }

    /// Forgets the dead mark of every destination whose next hop host or transport
    /// next hop is `site` (`rostqueue -s`). Returns how many were revived.
    pub fn revive_site(&mut self, site: &str) -> usize {
        let site = crate::route::nexthop_host(site);
        let routes: Vec<Route> = self
            .dests
            .iter()
            .filter(|(r, d)| {
                d.dead_until.is_some() && crate::route::nexthop_host(&r.nexthop) == site
            })
            .map(|(r, _)| r.clone())
            .collect();
        for r in &routes {
            self.revive(r);
        }
        routes.len()
    }

    fn clamped_window(&self, route: &Route, d: &Dest) -> usize {
        (d.window as usize).clamp(1, self.limits.concurrency(&route.transport))
    }

    /// The destination's concurrency window now (the initial one when it has no
    /// state): how many deliveries may run at once.
    pub fn window_of(&self, route: &Route) -> usize {
        match self.dests.get(route) {
            Some(d) => self.clamped_window(route, d),
            None => self.initial_window(&route.transport) as usize,
        }
    }

    fn eligible(&self, route: &Route, d: &Dest, now: Instant) -> bool {
        let policy = self.limits.policy(&route.transport);
        let window = self.clamped_window(route, d);
        !d.queue.is_empty()
            && d.dead_until.is_none_or(|t| now >= t)
            && d.in_flight
                < window
                    * if d.proven {
                        self.limits.depth(&route.transport)
                    } else {
                        1
                    }
            && d.not_before.is_none_or(|t| now >= t)
            && d.bucket
                .as_ref()
                .and_then(|b| self.buckets.get(b))
                .is_none_or(|b| b.ready(now))
            && (policy.process_limit == 0
                || self
                    .per_transport
                    .get(&route.transport)
                    .copied()
                    .unwrap_or(0)
                    < policy.process_limit)
    }

    /// The next request allowed to start, now counted as in flight; None when every
    /// destination with work is at its limit, dead, waiting for its rate delay, or the
    /// total cap is reached.
    pub fn next(&mut self, now: Instant) -> Option<PendingRequest> {
        if self.total_in_flight >= self.limits.total_concurrency.max(1) {
            return None;
        }
        let pick = {
            let after = self.cursor.as_ref();
            let tail = self
                .dests
                .iter()
                .filter(|(r, _)| after.is_none_or(|a| *r > a));
            let head = self
                .dests
                .iter()
                .filter(|(r, _)| after.is_some_and(|a| *r <= a));
            tail.chain(head)
                .find(|(r, d)| self.eligible(r, d, now))
                .map(|(r, _)| r.clone())
        }?;
        let d = self.dests.get_mut(&pick)?;
        let req = d.queue.pop_front()?;
        d.in_flight += 1;
        if let Some(b) = d.bucket.as_ref().and_then(|b| self.buckets.get_mut(b)) {
            b.start(now);
        }
        *self
            .per_transport
            .entry(pick.transport.clone())
            .or_insert(0) += 1;
        self.total_in_flight += 1;
        self.cursor = Some(pick);
        Some(req)
    }

    /// As [`Scheduler::next`], with the further requests of the same destination that
    /// its transport's group commit takes along in the same slot: at most
    /// `batch_limit` requests and `batch_size_limit` bytes (the first always), and no
    /// more than the destination's share of its free slots, so a backlog is spread
    /// over every parallel delivery the window allows (a slow command or mbox
    /// recipient keeps its parallelism) instead of queued behind one.
    pub fn next_batch(&mut self, now: Instant) -> Option<Vec<PendingRequest>> {
        let first = self.next(now)?;
        let policy = self.limits.policy(&first.route.transport);
        let (limit, byte_limit) = (policy.batch_limit.max(1), policy.batch_size_limit);
        if limit == 1 {
            return Some(vec![first]);
        }
        let depth = self.limits.depth(&first.route.transport);
        let Some(d) = self.dests.get(&first.route) else {
            return Some(vec![first]);
        };
        let slots = self.clamped_window(&first.route, d) * if d.proven { depth } else { 1 };
        // The slots that were free before this batch took one.
        let free = slots.saturating_sub(d.in_flight.saturating_sub(1)).max(1);
        let share = (d.queue.len() + 1).div_ceil(free).clamp(1, limit);
        let Some(d) = self.dests.get_mut(&first.route) else {
            return Some(vec![first]);
        };
        let mut bytes = first.size;
        let mut out = vec![first];
        while out.len() < share {
            let fits = d
                .queue
                .front()
                .is_some_and(|r| byte_limit == 0 || bytes.saturating_add(r.size) <= byte_limit);
            if !fits {
                break;
            }
            let Some(r) = d.queue.pop_front() else {
                break;
            };
            bytes = bytes.saturating_add(r.size);
            out.push(r);
        }
        Some(out)
    }

    /// A request to `route` finished: frees its slot and applies the feedback.
    pub fn finished(&mut self, route: &Route, outcome: &Outcome, now: Instant) {
        let policy = self.limits.policy(&route.transport).clone();
        let limit = self.limits.concurrency(&route.transport) as f64;
        let dead_time = self.limits.dead_time;
        let Some(d) = self.dests.get_mut(route) else {
            return;
        };
        if d.in_flight == 0 {
            return;
        }
        d.in_flight -= 1;
        if let Some(b) = d.bucket.as_ref().and_then(|b| self.buckets.get_mut(b)) {
            b.finish();
        }
        self.total_in_flight = self.total_in_flight.saturating_sub(1);
        if let Some(n) = self.per_transport.get_mut(&route.transport) {
            *n = n.saturating_sub(1);
        }
        if policy.rate_delay > Duration::ZERO {
            d.not_before = Some(now + policy.rate_delay);
        }
        match outcome {
            Outcome::Success => {
                d.proven = true;
                d.fail_cohorts = 0.0;
                d.success += policy.positive_feedback.amount(d.window);
                if d.success >= 1.0 {
                    d.success = 0.0;
                    d.window = (d.window + 1.0).min(limit);
                }
            }
            Outcome::Failure(reason) => {
                d.proven = false;
                d.reason = reason.clone();
                if d.dead_until.is_some() {
                    return;
                }
                d.fail_cohorts += 1.0 / d.window.max(1.0);
                if policy.failed_cohort_limit > 0
                    && d.fail_cohorts >= policy.failed_cohort_limit as f64
                {
                    d.dead_until = Some(now + dead_time);
                    log::warn!(
                        "{}: destination {} marked dead for {}s: {reason}",
                        route.transport,
                        route,
                        dead_time.as_secs()
                    );
                } else {
                    d.failure += policy.negative_feedback.amount(d.window);
                    if d.failure >= 1.0 {
                        d.failure = 0.0;
                        d.window = (d.window - 1.0).max(1.0);
                    }
                }
            }
        }
        self.gc(route, now);
    }

    /// Drops the state of an idle, healthy destination, as Postfix frees an empty queue
    /// (the next message starts it again at the initial concurrency).
    fn gc(&mut self, route: &Route, now: Instant) {
        if let Some(d) = self.dests.get(route) {
            if d.queue.is_empty()
                && d.in_flight == 0
                && d.dead_until.is_none()
                && d.not_before.is_none_or(|t| t <= now)
            {
                self.dests.remove(route);
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.total_in_flight
    }

    /// Requests waiting for a slot.
    pub fn queued(&self) -> usize {
        self.dests.values().map(|d| d.queue.len()).sum()
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
