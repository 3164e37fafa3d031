//! The main loop and the queue state it owns: which messages are in active/, which
//! requests are queued or in flight. Helper threads (trigger listener, one worker per
//! delivery or bounce request) report over one channel; only this loop touches queue
//! files (moves, done marks after bounces, defer logs, removal), so there are no locks.
//! The one exception: a worker writes the done marks of a group commit's delivered
//! recipients (crate::group_commit) before it reports, while the message is in flight
//! and so cannot be moved or removed by this loop.
//!
//! Timers: incoming/ is rescanned every [`INCOMING_SCAN`] as a safety net against lost
//! triggers, deferred/ every queue_run_delay. When master goes away (it stopped, or it
//! reloaded and started a new qmgr), qmgr stops taking new work and exits once nothing
//! is in flight.
//!
//! Every message this qmgr has in memory is locked ([`QueueLock`]) from its activation
//! until it leaves active/, so that another qmgr (the new one after a reload, while
//! this one finishes) never requeues or delivers it. Files in active/ that nobody
//! locks were left by a qmgr that has exited: they go back to incoming/, at start and
//! every [`ORPHAN_SCAN`] after (an exiting qmgr leaves its unstarted messages there).
//!
//! This file holds the state, the loop, triggers and dispatch; the rest of `impl
//! Manager` is split by phase: manager/scan.rs (incoming/ and deferred/, a slice per
//! turn), manager/activate.rs (into active/ and the scheduler),
//! manager/outcome.rs (delivery and bounce replies, a message's end) and
//! manager/recovery.rs (orphans, stranded and unreadable files).

use crate::bulk::Bulk;
use crate::event::{DeliveryOutcome, Event};
use crate::message::ActiveMessage;
use crate::route::nexthop_host;
use crate::schedule::{Outcome, PendingRequest, Scheduler};
use crate::settings::Settings;
use crate::shaping::throttle::{is_throttle, reply_code};
use crate::shaping::{Class, Shaper};
use crate::trigger::WakePending;
use crate::worker::{unstarted, Job, Workers};
use rostfix_metrics::Reporter;
use rostfix_proto::{
    transport_socket, BatchedMessage, DeliveryRequest, DeliveryStatus, Dsn, GroupCommit, QueueId,
    Trigger,
};
use rostfix_queue::{
    is_valid_queue_id, list_queue, move_file, QueueError, QueueFile, QueueLock, QueueName, Recycler,
};
use rostfix_resolve::{domain_of, Resolver};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often incoming/ is scanned without a trigger.
const INCOMING_SCAN: Duration = Duration::from_secs(5);
/// How often active/ is checked for files no qmgr owns any more.
const ORPHAN_SCAN: Duration = Duration::from_secs(5);
/// Longest sleep of the loop: bounds how late timers and the master check run.
const TICK: Duration = Duration::from_secs(1);
/// How often the destination gauges are taken (the metrics flush interval).
const GAUGE_EVERY: Duration = Duration::from_secs(5);
/// Connecting to a delivery agent or the bounce service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events handled per loop turn before timers get a look in.
const MAX_EVENTS_PER_TURN: usize = 1000;
/// DSN of mail deferred because its destination is marked dead.
const SUSPENDED_DSN: &str = "4.4.1";
/// How often the shaping rules file's time stamp is looked at.
const SHAPING_CHECK: Duration = Duration::from_secs(1);

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn system_time(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0).unsigned_abs())
}

/// The queue manager's state.
pub struct Manager {
    /// queue_directory: "." after confine.
    root: PathBuf,
    settings: Settings,
    resolver: Resolver,
    sched: Scheduler,
    messages: HashMap<String, ActiveMessage>,
    /// The lock of every message this qmgr owns in active/ (module doc).
    locks: HashMap<String, QueueLock>,
    /// Files that could not be opened, retried on their own backoff.
    unreadable: Unreadable,
    /// Finished messages whose move to deferred/ failed (a full file system): with
    /// their retry times, still locked, moved again every loop turn until it works.
    stranded: Vec<(String, i64)>,
    /// Recipients held by the messages in `messages` (qmgr_message_recipient_limit).
    rcpt_count: usize,
    bounce_jobs: usize,
    tx: Sender<Event>,
    /// Delivery workers per destination (worker.rs); idle ones are retired after
    /// settings.agent_idle_limit, which closes their agent stream and SMTP session.
    workers: Workers,
    next_incoming_scan: Instant,
    next_deferred_scan: Instant,
    /// A pass over deferred/ that has files left (manager/scan.rs).
    deferred_scan: Option<scan::DeferredScan>,
    next_orphan_scan: Instant,
    /// When the destination gauges go to the metrics service next.
    next_gauges: Instant,
    /// A wakeup arrived since the last scan of incoming/. Wakeups only set this: the
    /// loop scans once after draining its events, so a burst of arrivals (one trigger
    /// per message from every smtpd) costs one scan and one directory-fsync pair, and
    /// delivery results queued behind the triggers are not held up by a scan each.
    scan_wanted: bool,
    /// Where finished messages' files go (kept for smtpd and pickup to reuse).
    recycler: Recycler,
    /// Shared with the trigger listener, which drops wakeups while one is pending.
    wake_pending: WakePending,
    stopping: bool,
    /// Counts for the metrics service (crates/metrics); main.rs starts its flusher.
    metrics: Arc<Reporter>,
    /// The JSON delivery log and the suppression list (bulk.rs).
    bulk: Bulk,
    /// Traffic shaping: rules, MX cache, requests waiting for an MX answer.
    shaper: Shaper,
    next_shaping_check: Instant,
    /// The message whose next slices are being read (manager/slices.rs): qmgr's own
    /// transports finish a slice within the call that queues it, and the completion
    /// that would start from there is left to the loop already running.
    reading_slices: Option<String>,
}

impl Manager {
    pub fn new(
        root: PathBuf,
        settings: Settings,
        resolver: Resolver,
        tx: Sender<Event>,
    ) -> Manager {
        let sched = Scheduler::new(settings.limits.clone());
        let now = Instant::now();
        let recycler = Recycler::new(&root);
        let workers = Workers::new(tx.clone(), CONNECT_TIMEOUT, settings.ipc_timeout);
        let metrics = Arc::new(Reporter::new("qmgr", &root));
        Manager {
            root,
            settings,
            resolver,
            sched,
            messages: HashMap::new(),
            locks: HashMap::new(),
            unreadable: Unreadable::default(),
            stranded: Vec::new(),
            rcpt_count: 0,
            bounce_jobs: 0,
            tx,
            workers,
            next_incoming_scan: now,
            next_deferred_scan: now,
            deferred_scan: None,
            next_orphan_scan: now + ORPHAN_SCAN,
            next_gauges: now,
            scan_wanted: false,
            recycler,
            wake_pending: WakePending::default(),
            stopping: false,
            metrics,
            bulk: Bulk::default(),
            shaper: Shaper::disabled(),
            next_shaping_check: now,
            reading_slices: None,
        }
    }

    /// Uses `shaper`'s rules (main.rs builds it, with its MX lookup thread).
    pub fn set_shaper(&mut self, shaper: Shaper) {
        self.shaper = shaper;
        if self.shaper.shared().is_some() {
            self.sched.share_rates();
        }
        self.apply_shaping_rules();
    }

    /// Puts the shaper's rules in force in the scheduler.
    fn apply_shaping_rules(&mut self) {
        let now = Instant::now();
        let rules = self.shaper.rules().clone();
        let shaper = &mut self.shaper;
        self.sched
            .set_rules(&rules, now, |route| shaper.known(route, now));
    }

    /// Queues a request in its destination's shaping bucket, or holds it while the
    /// bucket is being found out.
    fn enqueue_shaped(&mut self, req: PendingRequest) {
        let now = Instant::now();
        match self.shaper.classify(&req.route, now) {
            Class::Unshaped => self.sched.enqueue_in(req, None),
            Class::Bucket(b) => self.sched.enqueue_in(req, Some(b)),
            Class::Wait => self.shaper.hold(req, now),
        }
    }

    /// A throttling reply among a delivery's deferrals slows its bucket down.
    fn note_throttles(&mut self, o: &DeliveryOutcome, classified: &crate::message::Classified) {
        let throttle = classified
            .deferred
            .iter()
            .find(|d| is_throttle(reply_code(&d.text), &d.dsn.to_string(), &d.text));
        if let Some(d) = throttle {
            let why = crate::shaping::throttle::summary(&d.dsn.to_string(), &d.text);
            self.sched.throttled(&o.route, &why, Instant::now());
        }
    }

    /// Installs the delivery log and suppression settings (main.rs opens them before
    /// the chroot); the list is looked up under this qmgr's queue directory.
    pub fn set_bulk(&mut self, mut bulk: Bulk) {
        bulk.set_root(&self.root);
        self.bulk = bulk;
    }

    /// The reporter of this qmgr's counts (its flusher is started by main.rs).
    pub fn metrics(&self) -> Arc<Reporter> {
        self.metrics.clone()
    }

    /// Runs until master is gone (or a reload retired this qmgr, or master is stopping
    /// the system) and nothing is in flight. `master_alive` polls the status pipe;
    /// `reloaded`, asked once it broke, says whether master still runs; `terminating`
    /// is SIGTERM from master's stop. Finishing what is in flight lets each outcome
    /// reach the queue file and the delivery log, which an agent already logged.
    pub fn run(
        mut self,
        rx: Receiver<Event>,
        master_alive: &dyn Fn() -> bool,
        reloaded: &dyn Fn() -> bool,
        terminating: &dyn Fn() -> bool,
    ) {
        loop {
            // A shaping bucket's next token or recovery step may be due before a tick.
            let now = Instant::now();
            let wait = if !self.stopping && self.scan_in_progress() {
                // The scan's next slice is waiting: take what events there are and go on.
                Duration::ZERO
            } else {
                self.sched.next_shaping_event(now).map_or(TICK, |t| {
                    t.saturating_duration_since(now)
                        .clamp(Duration::from_millis(10), TICK)
                })
            };
            // Master closes the agents' sockets before it signals us: checked before
            // each event, so that the outcomes handled after the signal start no new
            // delivery that could only fail ("connect to private/smtp: ENOENT") and be
            // logged and counted as a failed attempt.
            match rx.recv_timeout(wait) {
                Ok(ev) => {
                    self.check_terminating(terminating);
                    self.handle(ev)
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Unreachable while we hold a sender; treat like a quiet tick.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
            }
            for _ in 0..MAX_EVENTS_PER_TURN {
                match rx.try_recv() {
                    Ok(ev) => {
                        self.check_terminating(terminating);
                        self.handle(ev)
                    }
                    Err(_) => break,
                }
            }
            self.check_terminating(terminating);
            if !self.stopping && !master_alive() {
                // After a reload the new qmgr takes over at once: routine, so not
                // logged as an event (Postfix's qmgr says nothing either).
                if reloaded() {
                    log::debug!(
                        "reload: finishing {} deliveries in flight, then exiting",
                        self.sched.in_flight()
                    );
                } else {
                    log::info!(
                        "master is gone: finishing {} deliveries in flight, then exiting ({} not started stay queued)",
                        self.sched.in_flight(),
                        self.sched.queued() + self.shaper.waiting()
                    );
                }
                self.stopping = true;
            }
            self.close_idle_agents(self.stopping);
            if self.stopping {
                if self.sched.in_flight() == 0 && self.bounce_jobs == 0 {
                    return;
                }
                continue;
            }
            self.after_events();
        }
    }

    /// Stops dispatching once master's stop has signalled us (SIGTERM): what is in
    /// flight finishes, what is queued stays in the queue for the next start.
    fn check_terminating(&mut self, terminating: &dyn Fn() -> bool) {
        if !self.stopping && terminating() {
            log::info!(
                "terminating: finishing {} deliveries in flight, then exiting ({} not started stay queued)",
                self.sched.in_flight(),
                self.sched.queued()
            );
            self.stopping = true;
        }
    }

    /// What a loop turn does once its events are handled: the scans that are wanted
    /// (one for any number of wakeups) or due, then dispatch.
    fn after_events(&mut self) {
        let now = Instant::now();
        if now >= self.next_gauges {
            self.report_destinations(now);
            self.next_gauges = now + GAUGE_EVERY;
        }
        self.retry_stranded();
        if now >= self.next_shaping_check {
            self.next_shaping_check = now + SHAPING_CHECK;
            if self.shaper.reload_if_changed() {
                self.apply_shaping_rules();
            }
        }
        if now >= self.next_orphan_scan {
            // Requeued orphans are taken in by the scan just below.
            self.scan_wanted |= self.recover_orphans().requeued > 0;
        }
        if self.scan_wanted || now >= self.next_incoming_scan {
            self.scan_incoming();
        }
        if now >= self.next_deferred_scan {
            self.scan_deferred(false);
        } else {
            self.continue_deferred_scan();
        }
        self.dispatch();
    }

    /// Per-destination concurrency and the dead destinations, as gauges for the
    /// metrics service (bounded there by its series cap). A destination the scheduler
    /// has forgotten keeps its last value: qmgr forgets only idle ones, reported at 0.
    fn report_destinations(&self, now: Instant) {
        let mut dead: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
        // Per-recipient destinations are summed per next hop: a series per mailbox
        // would crowd the metrics service's series cap.
        let mut in_flight: std::collections::BTreeMap<(&str, &str), f64> =
            std::collections::BTreeMap::new();
        for (route, n, is_dead) in self.sched.destination_states(now) {
            *in_flight
                .entry((route.transport.as_str(), route.nexthop.as_str()))
                .or_insert(0.0) += n as f64;
            *dead.entry(route.transport.as_str()).or_insert(0.0) += f64::from(u8::from(is_dead));
        }
        for ((transport, destination), n) in in_flight {
            self.metrics.set(
                "rostfix_qmgr_destination_concurrency",
                &[("transport", transport), ("destination", destination)],
                n,
            );
        }
        for (transport, n) in dead {
            self.metrics.set(
                "rostfix_qmgr_dead_destinations",
                &[("transport", transport)],
                n,
            );
        }
    }

    /// Closes kept agent streams idle longer than the limit (all of them when `all`).
    fn close_idle_agents(&mut self, all: bool) {
        self.workers
            .retire_idle(self.settings.agent_idle_limit, all);
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Trigger(t) if !self.stopping => self.on_trigger(t),
            Event::Trigger(_) => {}
            Event::Delivered(o) => self.on_delivered(o),
            Event::Bounced(o) => self.on_bounced(o),
            Event::Mx(domain, answer) => {
                for req in self.shaper.answer(domain, answer, Instant::now()) {
                    self.enqueue_shaped(req);
                }
            }
            Event::Grant(bucket, grant) => self.sched.granted(&bucket, &grant, Instant::now()),
        }
    }

    fn on_trigger(&mut self, t: Trigger) {
        match t {
            Trigger::Wakeup => {
                // The loop scans once it has drained its events (and looks at
                // deferred/ when its timer is due).
                self.scan_wanted = true;
                return;
            }
            Trigger::Flush => {
                self.scan_incoming();
                self.scan_deferred(true);
            }
            Trigger::FlushId(id) => {
                if !is_valid_queue_id(&id) {
                    log::warn!("flush request for invalid queue id ignored");
                    return;
                }
                match move_file(&self.root, QueueName::Deferred, QueueName::Incoming, &id) {
                    Ok(()) | Err(QueueError::NotFound(_)) => {}
                    Err(e) => log::warn!("{id}: cannot move to incoming: {e}"),
                }
                self.scan_incoming();
            }
            Trigger::FlushSite(site) => self.flush_site(&site),
        }
        self.dispatch();
    }

    /// `rostqueue -s SITE`: deferred messages with a pending recipient whose domain or
    /// next hop is SITE go to incoming/ now, and SITE is no longer considered dead.
    fn flush_site(&mut self, site: &str) {
        let want = nexthop_host(site);
        if want.is_empty() || want.len() > 255 {
            log::warn!("flush request for an invalid site ignored");
            return;
        }
        let mut revived = self.sched.revive_site(&want);
        let ids = match list_queue(&self.root, QueueName::Deferred) {
            Ok(ids) => ids,
            Err(e) => {
                log::warn!("cannot scan deferred queue: {e}");
                return;
            }
        };
        let mut moved = 0;
        for id in ids {
            let Ok(qf) = QueueFile::open(&self.root, QueueName::Deferred, &id) else {
                continue;
            };
            // The destination qmgr tracks is the route's next hop (a transport_maps
            // `[host]:port`, a relayhost): revive it too when the domain matched.
            let mut hops = Vec::new();
            let matches = qf.pending().fold(false, |found, r| {
                let route = self
                    .resolver
                    .route_local_part(&r.address)
                    .and_then(|a| self.resolver.resolve_from(Some(&qf.envelope.sender), &a))
                    .ok();
                let hit = nexthop_host(domain_of(&r.address)) == want
                    || route
                        .as_ref()
                        .is_some_and(|res| nexthop_host(&res.nexthop) == want);
                if hit {
                    hops.extend(route.map(|res| res.nexthop));
                }
                found || hit
            });
            for hop in hops {
                revived += self.sched.revive_site(&hop);
            }
            if matches
                && move_file(&self.root, QueueName::Deferred, QueueName::Incoming, &id).is_ok()
            {
                moved += 1;
            }
        }
        log::info!(
            "flush site {want}: {moved} message(s) requeued, {revived} dead destination(s) revived"
        );
        self.scan_incoming();
    }

    /// Room for more messages in active/.
    fn has_room(&self) -> bool {
        self.messages.len() < self.settings.active_limit
            && self.rcpt_count < self.settings.recipient_limit
    }

    /// Uses the trigger listener's flag (see [`WakePending`]).
    pub fn share_wake_pending(&mut self, pending: WakePending) {
        self.wake_pending = pending;
    }

    /// Defers the requests of dead destinations, then starts every request the
    /// concurrency limits allow.
    fn dispatch(&mut self) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        for req in self.shaper.overdue(now) {
            log::info!(
                "shaping: no MX answer for {} yet: {} goes unshaped",
                req.route.nexthop,
                req.queue_id
            );
            self.sched.enqueue_in(req, None);
        }
        self.sched.tick(now);
        for (req, reason) in self.sched.take_suspended(now) {
            self.defer_request(req, &reason);
        }
        while let Some(batch) = self.sched.next_batch(now) {
            self.spawn_delivery(batch);
        }
        if let Some(shared) = self.shaper.shared() {
            for (bucket, ask) in self.sched.shared_asks(now) {
                if !shared.ask(&bucket, ask) {
                    log::warn!("shaping: the redis thread has ended");
                }
            }
        }
    }

    /// A request that never started (its destination is dead): its recipients are
    /// deferred with `reason`, logged by qmgr.
    fn defer_request(&mut self, req: PendingRequest, reason: &str) {
        let results = req
            .recipients
            .iter()
            .map(|d| rostfix_proto::RecipientResult {
                offset: d.offset,
                status: rostfix_proto::DeliveryStatus::Deferred,
                dsn: Dsn::or_class(SUSPENDED_DSN, DeliveryStatus::Deferred),
                text: reason.to_string(),
                relay: "none".into(),
                notify_sender: None,
            })
            .collect();
        let outcome = DeliveryOutcome {
            queue_id: req.queue_id,
            route: req.route,
            requested: req.recipients,
            reply: Ok(rostfix_proto::DeliveryReply::new(results)),
            worker: None,
            batched: Vec::new(),
        };
        let classified = Self::classify_outcome(&outcome);
        self.apply_outcome(outcome, classified, true);
    }

    /// The per-message part of the request for `req`, from its message in memory;
    /// None when the message is gone (cannot happen while requests are outstanding) or
    /// its id cannot be sent (then the request is deferred here).
    fn request_part(&mut self, req: &PendingRequest) -> Option<BatchedMessage> {
        let msg = self.messages.get(&req.queue_id)?;
        let sender = match (msg.verp, req.recipients.as_slice()) {
            (Some(delims), [one]) => rostfix_queue::verp_sender(&msg.sender, delims, &one.address),
            _ => msg.sender.clone(),
        };
        let (arrival, activated, probe, retry) = (msg.arrival, msg.activated, msg.probe, msg.retry);
        let queue_id = match QueueId::new(req.queue_id.as_str()) {
            Ok(id) => id,
            Err(e) => {
                self.defer_request(req.clone(), &e.to_string());
                return None;
            }
        };
        Some(BatchedMessage {
            queue_name: QueueName::Active,
            queue_id,
            sender,
            arrival,
            recipients: req.recipients.clone(),
            activated: Some(activated),
            probe,
            retry,
        })
    }

    /// Starts one delivery for `batch` (requests of one destination the scheduler
    /// handed out together, in one slot): one request to the agent, a group commit
    /// when the transport batches (the first message at the top, the others in
    /// `group.more`).
    fn spawn_delivery(&mut self, batch: Vec<PendingRequest>) {
        let Some(route) = batch.first().map(|r| r.route.clone()) else {
            return;
        };
        let group_commit = self.settings.limits.policy(&route.transport).batch_limit > 1;
        let mut parts = Vec::with_capacity(batch.len());
        for req in batch {
            if let Some(part) = self.request_part(&req) {
                parts.push(part);
            }
        }
        let mut parts = parts.into_iter();
        let Some(head) = parts.next() else {
            // Nothing left to send: the slot is free again.
            self.sched
                .finished(&route, &Outcome::Success, Instant::now());
            return;
        };
        let more: Vec<BatchedMessage> = parts.collect();
        let members = more
            .iter()
            .map(|m| crate::group_commit::Member {
                queue_id: m.queue_id.to_string(),
                requested: m.recipients.clone(),
            })
            .collect();
        let request = DeliveryRequest {
            queue_name: head.queue_name,
            queue_id: head.queue_id,
            sender: head.sender,
            nexthop: route.nexthop.clone(),
            arrival: head.arrival,
            recipients: head.recipients,
            activated: head.activated,
            probe: head.probe,
            shaping: self
                .sched
                .bucket_of(&route)
                .map(|(bucket, n)| rostfix_proto::ShapingHint {
                    bucket: bucket.to_string(),
                    reuse_count_limit: n,
                }),
            group: group_commit.then_some(GroupCommit {
                retry: head.retry,
                more,
            }),
        };
        let job = Job {
            path: self.root.join(transport_socket(&route.transport)),
            route,
            request,
            members,
            commit_root: group_commit.then(|| self.root.clone()),
        };
        // At most the window's worth of workers (parallel deliveries); requests the
        // scheduler allows beyond it wait in a worker's queue. A shaping bucket's
        // destinations share its workers, so its agent streams (and so its SMTP
        // connections, one per smtp process) never outnumber its concurrency.
        // Per-recipient destinations share their transport's workers (worker.rs):
        // the scheduler bounds their deliveries, so the pool never queues one.
        let (key, window) = match &job.request.shaping {
            Some(h) if self.sched.bucket_concurrency(&h.bucket) > 0 => (
                crate::route::Route::new(
                    job.route.transport.clone(),
                    format!("shaping bucket {}", h.bucket),
                ),
                self.sched.bucket_concurrency(&h.bucket),
            ),
            _ if !job.route.recipient.is_empty() => (job.route.pool(), usize::MAX),
            _ => (job.route.clone(), self.sched.window_of(&job.route)),
        };
        let process_limit = self
            .settings
            .limits
            .policy(&job.route.transport)
            .process_limit;
        if let Err(failed) = self.workers.assign(job, key, window, process_limit) {
            let (job, e) = *failed;
            self.on_delivered(unstarted(job, e));
        }
    }

    /// Gives up the ownership of a file that left active/ (or is about to be recycled).
    fn release(&mut self, id: &str) {
        self.locks.remove(id);
    }
}

mod activate;
mod attempts;
mod outcome;
mod probe;
mod recovery;
mod scan;
mod slices;
mod unreadable;
use unreadable::Unreadable;

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
