//! The main loop and the queue state it owns: which messages are in active/, which
//! requests are queued or in flight. Helper threads (trigger listener, one worker per
//! delivery or bounce request) report over one channel; only this loop touches queue
//! files (moves, done marks after bounces, defer logs, removal), so there are no locks.
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

use crate::builtin::{self, Builtin};
use crate::event::{BounceOutcome, DeliveryOutcome, Event};
use crate::expand::expand_envelope;
use crate::ipc::{self, CallError};
use crate::logline::{from_line, to_line};
use crate::message::{
    classify, completion, expired_text, feedback, ActiveMessage, Classified, Completion,
    BOUNCE_FAILURE_TEXT, EXPIRED_DSN,
};
use crate::route::{nexthop_host, Route};
use crate::schedule::{group, Outcome, PendingRequest, Scheduler};
use crate::settings::Settings;
use crate::trigger::WakePending;
use crate::worker::{unstarted, Job, Workers};
use rostfix_proto::{
    transport_socket, BounceReply, BounceRequest, BouncedRecipient, DeliveryRecipient,
    DeliveryRequest, DeliveryStatus, Dsn, NoticeKind, QueueId, Trigger, BOUNCE_SOCKET,
};
use rostfix_queue::{
    append_defer_reason, delay_warned, is_valid_queue_id, list_queue, mark_delay_warned, move_file,
    queue_path, read_defer_reasons, remove_message_logs, rename_file, rewrite_envelope_locked,
    set_retry_time, sync_queue_dirs, LockAttempt, QueueError, QueueFile, QueueLock, QueueName,
    Recycler,
};
use rostfix_resolve::{domain_of, Resolver};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often incoming/ is scanned without a trigger.
const INCOMING_SCAN: Duration = Duration::from_secs(5);
/// How often active/ is checked for files no qmgr owns any more.
const ORPHAN_SCAN: Duration = Duration::from_secs(5);
/// Longest sleep of the loop: bounds how late timers and the master check run.
const TICK: Duration = Duration::from_secs(1);
/// Connecting to a delivery agent or the bounce service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events handled per loop turn before timers get a look in.
const MAX_EVENTS_PER_TURN: usize = 1000;
/// DSN of a recipient the resolver could not route (configuration error).
const RESOLVE_DSN: &str = "4.3.5";
/// DSN of mail deferred because its destination is marked dead.
const SUSPENDED_DSN: &str = "4.4.1";

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

/// Failure notices of one delivery, grouped by who gets them: None = the envelope
/// sender, Some(owner) = an alias owner named by local.
type NoticeGroup = (Option<String>, Vec<(u64, BouncedRecipient)>);

/// What one look for orphans in active/ found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Orphans {
    /// Moved back to incoming/.
    requeued: usize,
    /// Locked by another process (a qmgr finishing its work).
    busy: usize,
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
    next_orphan_scan: Instant,
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
            next_orphan_scan: now + ORPHAN_SCAN,
            scan_wanted: false,
            recycler,
            wake_pending: WakePending::default(),
            stopping: false,
        }
    }

    /// Recovery at start: files in active/ that no qmgr locks were left by one that
    /// exited or died; they go back to incoming/. Files another qmgr still locks (the
    /// previous one after a reload, finishing its deliveries) are left to it and
    /// looked at again every [`ORPHAN_SCAN`].
    pub fn recover(&mut self) {
        let busy = self.recover_orphans().busy;
        if busy > 0 {
            log::info!(
                "{busy} message(s) in active are still owned by the previous queue manager; \
                 they are requeued when it has finished"
            );
        }
    }

    /// Requeues the unlocked files of active/ that are not ours.
    fn recover_orphans(&mut self) -> Orphans {
        self.next_orphan_scan = Instant::now() + ORPHAN_SCAN;
        let ids = match list_queue(&self.root, QueueName::Active) {
            Ok(ids) => ids,
            Err(e) => {
                log::warn!("cannot list active queue: {e}");
                return Orphans::default();
            }
        };
        let mut found = Orphans::default();
        for id in ids {
            if self.locks.contains_key(&id) || self.messages.contains_key(&id) {
                continue;
            }
            let path = queue_path(&self.root, QueueName::Active, &id);
            // Held while moving: the owner test and the move are one step for any
            // other qmgr, which locks before it touches a file in active/.
            let _lock = match QueueLock::try_acquire(&path) {
                Ok(LockAttempt::Acquired(lock)) => lock,
                Ok(LockAttempt::Busy) => {
                    found.busy += 1;
                    continue;
                }
                Ok(LockAttempt::Gone) => continue,
                Err(e) => {
                    self.set_aside(&id, &e);
                    continue;
                }
            };
            match move_file(&self.root, QueueName::Active, QueueName::Incoming, &id) {
                Ok(()) => {
                    found.requeued += 1;
                    log::info!("{id}: requeued from active to incoming (qmgr restart)")
                }
                Err(QueueError::NotFound(_)) => {}
                Err(e) => log::warn!("{id}: cannot requeue from active: {e}"),
            }
        }
        found
    }

    /// Runs until master is gone and nothing is in flight.
    pub fn run(mut self, rx: Receiver<Event>, master_alive: &dyn Fn() -> bool) {
        loop {
            match rx.recv_timeout(TICK) {
                Ok(ev) => self.handle(ev),
                Err(RecvTimeoutError::Timeout) => {}
                // Unreachable while we hold a sender; treat like a quiet tick.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(TICK),
            }
            for _ in 0..MAX_EVENTS_PER_TURN {
                match rx.try_recv() {
                    Ok(ev) => self.handle(ev),
                    Err(_) => break,
                }
            }
            if !self.stopping && !master_alive() {
                log::info!(
                    "master is gone: finishing {} deliveries in flight, then exiting ({} not started stay queued)",
                    self.sched.in_flight(),
                    self.sched.queued()
                );
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

    /// What a loop turn does once its events are handled: the scans that are wanted
    /// (one for any number of wakeups) or due, then dispatch.
    fn after_events(&mut self) {
        let now = Instant::now();
        self.retry_stranded();
        if now >= self.next_orphan_scan {
            // Requeued orphans are taken in by the scan just below.
            self.scan_wanted |= self.recover_orphans().requeued > 0;
        }
        if self.scan_wanted || now >= self.next_incoming_scan {
            self.scan_incoming();
        }
        if now >= self.next_deferred_scan {
            self.scan_deferred(false);
        }
        self.dispatch();
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
                let route = self.resolver.resolve(&r.address).ok();
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

    pub fn scan_incoming(&mut self) {
        self.next_incoming_scan = Instant::now() + INCOMING_SCAN;
        self.scan_wanted = false;
        self.wake_pending.clear();
        let ids = match list_queue(&self.root, QueueName::Incoming) {
            Ok(ids) => ids,
            Err(e) => {
                log::warn!("cannot scan incoming queue: {e}");
                return;
            }
        };
        let mut moved = 0;
        for id in ids {
            if !self.has_room() {
                break;
            }
            moved += usize::from(self.activate(QueueName::Incoming, &id));
        }
        self.sync_activated(QueueName::Incoming, moved);
    }

    /// Makes the renames of one scan durable with one fsync of active/ and one of the
    /// source directory, before any of those messages is handed to an agent (the
    /// caller dispatches after the scan). Two fsyncs per message on qmgr's one thread
    /// were what held mail in incoming/ under load.
    fn sync_activated(&self, from: QueueName, moved: usize) {
        if moved == 0 {
            return;
        }
        if let Err(e) = sync_queue_dirs(&self.root, &[QueueName::Active, from]) {
            // The files are in active/ either way; a crash before the names reach the
            // disk leaves them in `from`, where the next qmgr finds them again.
            log::warn!("cannot sync the active queue directory: {e}");
        }
    }

    /// Moves due deferred messages (all of them when `force`) into active/.
    fn scan_deferred(&mut self, force: bool) {
        self.next_deferred_scan = Instant::now() + self.settings.queue_run_delay;
        let ids = match list_queue(&self.root, QueueName::Deferred) {
            Ok(ids) => ids,
            Err(e) => {
                log::warn!("cannot scan deferred queue: {e}");
                return;
            }
        };
        let now = now_secs();
        let mut moved = 0;
        for id in ids {
            if !self.has_room() {
                break;
            }
            if self.unreadable.is_waiting(&id, now) {
                continue;
            }
            if !force {
                let path = queue_path(&self.root, QueueName::Deferred, &id);
                let due = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .map(|t| {
                        t.duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs() as i64)
                    })
                    .map(|retry| crate::backoff::is_due(retry, now));
                if !matches!(due, Ok(true)) {
                    continue;
                }
            }
            moved += usize::from(self.activate(QueueName::Deferred, &id));
        }
        self.sync_activated(QueueName::Deferred, moved);
    }

    /// Moves one file into active/ (a rename: the caller syncs the directories once per
    /// scan), reads it, resolves and queues its recipients. True if it was moved.
    fn activate(&mut self, from: QueueName, id: &str) -> bool {
        if self.messages.contains_key(id) {
            return false;
        }
        match rename_file(&self.root, from, QueueName::Active, id) {
            Ok(()) => {}
            Err(QueueError::NotFound(_)) => return false,
            Err(e) => {
                log::warn!("{id}: cannot move to active: {e}");
                return false;
            }
        }
        match QueueLock::try_acquire(&queue_path(&self.root, QueueName::Active, id)) {
            Ok(LockAttempt::Acquired(lock)) => {
                self.locks.insert(id.to_string(), lock);
            }
            Ok(LockAttempt::Busy) => {
                // Another qmgr still owns this file (it was moving it out of active/
                // as we moved it in); it stays here and is recovered once released.
                log::info!("{id}: skipped, still being delivered");
                return true;
            }
            Ok(LockAttempt::Gone) => return true,
            Err(e) => {
                self.set_aside(id, &e);
                return true;
            }
        }
        let qf = match QueueFile::open(&self.root, QueueName::Active, id) {
            Ok(f) => f,
            Err(QueueError::Corrupt { reason, .. }) => {
                match move_file(&self.root, QueueName::Active, QueueName::Corrupt, id) {
                    Ok(()) => log::warn!("{id}: corrupt queue file: {reason}; moved to corrupt"),
                    Err(e) => log::warn!(
                        "{id}: corrupt queue file: {reason}; cannot move to corrupt: {e}"
                    ),
                }
                self.release(id);
                return true;
            }
            Err(QueueError::NotFound(_)) => {
                self.release(id);
                return true;
            }
            Err(e) => {
                self.release(id);
                self.set_aside(id, &e);
                return true;
            }
        };
        self.unreadable.cleared(id);
        let qf = match self.expand_aliases(qf) {
            Ok(qf) => qf,
            Err(None) => {
                self.release(id);
                return true;
            }
            Err(Some((qf, why))) => {
                // Cannot expand now: every pending recipient waits, none is delivered
                // unexpanded (Postfix's cleanup would not have accepted the message).
                self.defer_whole(&qf, &why);
                return true;
            }
        };
        log::info!(
            "{}",
            from_line(
                id,
                &qf.envelope.sender,
                qf.content_len,
                qf.envelope.recipients.len()
            )
        );
        let arrival = qf.envelope.arrival_us.div_euclid(1_000_000);
        let mut msg = ActiveMessage::new(id, &qf.envelope.sender, arrival);
        // rostsuper -e marks the file with the owner-execute bit (docs/queue-format.md).
        msg.forced_expire = std::fs::metadata(&qf.path)
            .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o100 != 0);
        let mut routed = Vec::new();
        let mut builtins: Vec<(Builtin, String, DeliveryRecipient)> = Vec::new();
        for r in qf.pending() {
            let orig = if r.orig_address.is_empty() {
                r.address.clone()
            } else {
                r.orig_address.clone()
            };
            msg.add_recipient(r.offset, &r.address, &orig);
            msg.set_notify(r.offset, &r.notify);
            if msg.forced_expire {
                // No delivery: finish_if_idle below returns every pending one.
                msg.set_reason(r.offset, "message is administratively expired");
                continue;
            }
            let Some(d) = msg.delivery_recipient(r.offset) else {
                continue;
            };
            match self.resolver.resolve(&r.address) {
                Ok(res) => match Builtin::from_transport(&res.transport) {
                    Some(b) => builtins.push((b, res.nexthop, d)),
                    None => routed.push((
                        Route {
                            transport: res.transport,
                            nexthop: res.nexthop,
                        },
                        d,
                    )),
                },
                Err(e) => {
                    let text = e.to_string();
                    self.note_deferred(&mut msg, r.offset, &text);
                    let delay = now_f64() - arrival as f64;
                    log::info!(
                        "{}",
                        to_line(
                            id,
                            &r.address,
                            &orig,
                            delay,
                            RESOLVE_DSN,
                            "deferred",
                            Some(&text)
                        )
                    );
                }
            }
        }
        let requests = group(id, routed, &self.settings.limits);
        msg.outstanding = requests.len() + usize::from(!builtins.is_empty());
        self.rcpt_count += msg.recipients.len();
        self.messages.insert(id.to_string(), msg);
        for r in requests {
            self.sched.enqueue(r);
        }
        if !builtins.is_empty() {
            self.run_builtins(id, builtins);
        }
        self.finish_if_idle(id);
        true
    }

    /// Expands virtual aliases once and stores the result in the file (atomically)
    /// before anything is delivered. `Err(None)`: the file went away or is corrupt
    /// (handled); `Err(Some(..))`: the expansion must wait (a table problem).
    #[allow(clippy::result_large_err)]
    fn expand_aliases(&mut self, qf: QueueFile) -> Result<QueueFile, Option<(QueueFile, String)>> {
        let new = match expand_envelope(&self.resolver, &qf.envelope) {
            Ok(Some(new)) => new,
            Ok(None) => return Ok(qf),
            Err(why) => {
                log::warn!("{}: virtual alias expansion failed: {why}", qf.id);
                return Err(Some((qf, why)));
            }
        };
        match rewrite_envelope_locked(&qf.path, &new) {
            // The old lock covers the replaced (unlinked) inode now.
            Ok(lock) => {
                self.locks.insert(qf.id.clone(), lock);
            }
            Err(e) => {
                let why = format!("cannot store the virtual alias expansion: {e}");
                log::warn!("{}: {why}", qf.id);
                return Err(Some((qf, why)));
            }
        }
        match QueueFile::open(&self.root, QueueName::Active, &qf.id) {
            Ok(f) => Ok(f),
            Err(e) => {
                log::warn!("{}: cannot re-read the rewritten queue file: {e}", qf.id);
                Err(None)
            }
        }
    }

    /// Defers every pending recipient of a file in active/ with `why`, then moves it to
    /// deferred/ (or expires it) through the normal completion rules.
    fn defer_whole(&mut self, qf: &QueueFile, why: &str) {
        let arrival = qf.envelope.arrival_us.div_euclid(1_000_000);
        let mut msg = ActiveMessage::new(&qf.id, &qf.envelope.sender, arrival);
        for r in qf.pending() {
            msg.add_recipient(r.offset, &r.address, &r.orig_address);
            msg.set_notify(r.offset, &r.notify);
            self.note_deferred(&mut msg, r.offset, why);
            log::info!(
                "{}",
                to_line(
                    &qf.id,
                    &r.address,
                    &r.orig_address,
                    now_f64() - arrival as f64,
                    "4.3.0",
                    "deferred",
                    Some(why)
                )
            );
        }
        self.rcpt_count += msg.recipients.len();
        self.messages.insert(qf.id.clone(), msg);
        self.finish_if_idle(&qf.id);
    }

    /// qmgr's own transports: `discard` (marked done here), `error` (bounced),
    /// `retry` (deferred), with Postfix-shaped log lines. Then the results go through
    /// the same path as a delivery agent's reply.
    fn run_builtins(&mut self, id: &str, list: Vec<(Builtin, String, DeliveryRecipient)>) {
        let path = queue_path(&self.root, QueueName::Active, id);
        let arrival = self.messages.get(id).map_or(0, |m| m.arrival);
        let delay = now_f64() - arrival as f64;
        let mut requested = Vec::new();
        let mut results = Vec::new();
        for (kind, text, d) in list {
            let mut res = builtin::result(kind, &text, &d);
            if kind == Builtin::Discard {
                // Not synced: discarding again after a power loss changes nothing,
                // and an fdatasync per message on this one thread held up the queue.
                if let Err(e) = QueueFile::mark_done_unsynced(&path, d.offset) {
                    res = builtin::unavailable(&d, &format!("cannot mark done: {e}"));
                }
            }
            log::info!("{}", builtin::log_line(id, &d, delay, &res));
            requested.push(d);
            results.push(res);
        }
        let outcome = DeliveryOutcome {
            queue_id: id.to_string(),
            route: Route {
                transport: "builtin".into(),
                nexthop: String::new(),
            },
            requested,
            reply: Ok(rostfix_proto::DeliveryReply::new(results)),
            worker: None,
        };
        self.apply_outcome(outcome, false);
    }

    /// Records a defer reason in the defer log and in memory.
    fn note_deferred(&self, msg: &mut ActiveMessage, offset: u64, text: &str) {
        let address = msg
            .recipients
            .get(&offset)
            .map(|r| r.address.clone())
            .unwrap_or_default();
        if let Err(e) = append_defer_reason(&self.root, &msg.id, &address, text) {
            log::warn!("{}: cannot record defer reason: {e}", msg.id);
        }
        msg.set_reason(offset, text);
    }

    /// Defers the requests of dead destinations, then starts every request the
    /// concurrency limits allow.
    fn dispatch(&mut self) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        for (req, reason) in self.sched.take_suspended(now) {
            self.defer_request(req, &reason);
        }
        while let Some(req) = self.sched.next(now) {
            self.spawn_delivery(req);
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
        };
        self.apply_outcome(outcome, true);
    }

    fn spawn_delivery(&mut self, req: PendingRequest) {
        let queue_id = match QueueId::new(req.queue_id.as_str()) {
            Ok(id) => id,
            Err(e) => return self.defer_request(req, &e.to_string()),
        };
        let Some(msg) = self.messages.get(&req.queue_id) else {
            // The message went away (cannot happen while requests are outstanding).
            self.sched
                .finished(&req.route, &Outcome::Success, Instant::now());
            return;
        };
        let request = DeliveryRequest {
            queue_name: QueueName::Active,
            queue_id,
            sender: msg.sender.clone(),
            nexthop: req.route.nexthop.clone(),
            arrival: msg.arrival,
            recipients: req.recipients,
            activated: Some(msg.activated),
        };
        let job = Job {
            path: self.root.join(transport_socket(&req.route.transport)),
            route: req.route,
            request,
        };
        // At most the window's worth of workers (parallel deliveries); requests the
        // scheduler allows beyond it wait in a worker's queue.
        let window = self.sched.window_of(&job.route);
        if let Err(failed) = self.workers.assign(job, window) {
            let (job, e) = *failed;
            self.on_delivered(unstarted(job, e));
        }
    }

    /// A delivery agent answered (or could not be reached): concurrency feedback, then
    /// the per-recipient results.
    fn on_delivered(&mut self, o: DeliveryOutcome) {
        if let Some(id) = o.worker {
            self.workers.done(&o.route, id);
        }
        let classified = Self::classify_outcome(&o);
        let fb = feedback(o.reply.as_ref().err().map(ToString::to_string), &classified);
        self.sched.finished(&o.route, &fb, Instant::now());
        // Refill the workers' queues before this message's bookkeeping (which frees
        // no slot: `finished` did).
        self.dispatch();
        self.apply_outcome(o, false);
    }

    fn classify_outcome(o: &DeliveryOutcome) -> Classified {
        match &o.reply {
            Ok(reply) => classify(&o.requested, Ok(reply)),
            Err(e) => classify(&o.requested, Err(&e.to_string())),
        }
    }

    /// Applies the results of one request to its message: done, deferred (logged by
    /// qmgr when the agent did not, or when `qmgr_logs_deferrals`), bounced (a notice,
    /// then done), success notices for NOTIFY=SUCCESS.
    fn apply_outcome(&mut self, o: DeliveryOutcome, qmgr_logs_deferrals: bool) {
        let Some(mut msg) = self.messages.remove(&o.queue_id) else {
            log::warn!(
                "{}: delivery result for a message not in active",
                o.queue_id
            );
            return;
        };
        msg.outstanding = msg.outstanding.saturating_sub(1);
        let classified = Self::classify_outcome(&o);
        for w in &classified.warnings {
            log::warn!("{}: {w}", msg.id);
        }
        let mut success_notices = Vec::new();
        for off in &classified.sent {
            msg.set_done(*off);
            if let Some(r) = msg.recipients.get(off) {
                if notify_has(&r.notify, "SUCCESS") {
                    success_notices.push((
                        *off,
                        BouncedRecipient {
                            address: r.address.clone(),
                            orig_address: r.orig_address.clone(),
                            dsn: Dsn::or_class("2.0.0", DeliveryStatus::Sent),
                            text: success_text(&o, *off),
                            relay: o.route.nexthop.clone(),
                            notify: r.notify.clone(),
                            action: success_action(&o.route.transport).into(),
                        },
                    ));
                }
            }
        }
        let delay = now_f64() - msg.arrival as f64;
        for d in &classified.deferred {
            self.note_deferred(&mut msg, d.offset, &d.text);
            if d.log_by_qmgr || qmgr_logs_deferrals {
                let orig = msg
                    .recipients
                    .get(&d.offset)
                    .map(|r| r.orig_address.clone())
                    .unwrap_or_default();
                log::info!(
                    "{}",
                    to_line(
                        &msg.id,
                        &d.address,
                        &orig,
                        delay,
                        &d.dsn,
                        "deferred",
                        Some(&d.text)
                    )
                );
            }
        }
        let id = msg.id.clone();
        let bounced: Vec<(u64, BouncedRecipient)> = classified
            .bounced
            .into_iter()
            .map(|(off, mut b)| {
                b.notify = msg
                    .recipients
                    .get(&off)
                    .map(|r| r.notify.clone())
                    .unwrap_or_default();
                (off, b)
            })
            .collect();
        // One failure notice per notice recipient: the envelope sender, or an alias
        // owner that local named for destinations of its list (owner-NAME).
        let owners: HashMap<u64, String> = match &o.reply {
            Ok(reply) => reply
                .results
                .iter()
                .filter_map(|r| r.notify_sender.clone().map(|s| (r.offset, s)))
                .collect(),
            Err(_) => HashMap::new(),
        };
        let mut groups: Vec<NoticeGroup> = Vec::new();
        for (off, b) in bounced {
            let to = owners.get(&off).cloned();
            match groups.iter_mut().find(|(t, _)| *t == to) {
                Some((_, list)) => list.push((off, b)),
                None => groups.push((to, vec![(off, b)])),
            }
        }
        msg.outstanding += groups.len() + usize::from(!success_notices.is_empty());
        self.messages.insert(id.clone(), msg);
        for (to, list) in groups {
            self.spawn_notice(&id, list, false, NoticeKind::Failure, to);
        }
        if !success_notices.is_empty() {
            self.spawn_bounce(&id, success_notices, false, NoticeKind::Success);
        }
        self.finish_if_idle(&id);
    }

    /// Sends a notice request for a message in active/ (counted in its outstanding
    /// work by the caller, so the file stays while bounce reads it).
    fn spawn_bounce(
        &mut self,
        id: &str,
        recipients: Vec<(u64, BouncedRecipient)>,
        expired: bool,
        kind: NoticeKind,
    ) {
        self.spawn_notice(id, recipients, expired, kind, None);
    }

    /// As [`Self::spawn_bounce`], with the notice going to `notify_to` instead of the
    /// envelope sender when given (an alias owner).
    fn spawn_notice(
        &mut self,
        id: &str,
        recipients: Vec<(u64, BouncedRecipient)>,
        expired: bool,
        kind: NoticeKind,
        notify_to: Option<String>,
    ) {
        let (Some(msg), Ok(queue_id)) = (self.messages.get(id), QueueId::new(id)) else {
            return;
        };
        let request = BounceRequest {
            queue_name: QueueName::Active,
            queue_id,
            sender: notify_to.unwrap_or_else(|| msg.sender.clone()),
            arrival: msg.arrival,
            recipients: recipients.iter().map(|(_, r)| r.clone()).collect(),
            kind,
        };
        self.send_notice(request, recipients, expired);
    }

    fn send_notice(
        &mut self,
        request: BounceRequest,
        recipients: Vec<(u64, BouncedRecipient)>,
        expired: bool,
    ) {
        self.bounce_jobs += 1;
        let path = self.root.join(BOUNCE_SOCKET);
        let tx = self.tx.clone();
        let io_timeout = self.settings.ipc_timeout;
        let for_thread = recipients.clone();
        let (id, kind) = (request.queue_id.clone(), request.kind);
        let spawned = std::thread::Builder::new()
            .name("bounce".into())
            .spawn(move || {
                let reply = ipc::bounce(&path, &request, CONNECT_TIMEOUT, io_timeout);
                let _ = tx.send(Event::Bounced(BounceOutcome {
                    queue_id: request.queue_id.into(),
                    recipients: for_thread,
                    expired,
                    kind: request.kind,
                    reply,
                }));
            });
        if let Err(e) = spawned {
            self.on_bounced(BounceOutcome {
                queue_id: id.into(),
                recipients,
                expired,
                kind,
                reply: Err(CallError::Connect {
                    path: "worker thread".into(),
                    source: e,
                }),
            });
        }
    }

    fn on_bounced(&mut self, o: BounceOutcome) {
        self.bounce_jobs = self.bounce_jobs.saturating_sub(1);
        if o.kind == NoticeKind::Delay {
            // The message is in deferred/ by now; only the "warned once" mark changes.
            match o.reply {
                Ok(BounceReply::Queued(_)) | Ok(BounceReply::NotNeeded) => {
                    if let Err(e) = mark_delay_warned(&self.root, &o.queue_id) {
                        log::warn!("{}: cannot record the delay warning: {e}", o.queue_id);
                    }
                }
                Ok(BounceReply::Failed(why)) => {
                    log::warn!("{}: delay warning not sent: {why}", o.queue_id)
                }
                Err(e) => log::warn!("{}: delay warning not sent: {e}", o.queue_id),
            }
            return;
        }
        let Some(mut msg) = self.messages.remove(&o.queue_id) else {
            log::warn!("{}: bounce result for a message not in active", o.queue_id);
            return;
        };
        msg.outstanding = msg.outstanding.saturating_sub(1);
        if o.kind == NoticeKind::Success {
            match &o.reply {
                Ok(BounceReply::Queued(_)) | Ok(BounceReply::NotNeeded) => {}
                Ok(BounceReply::Failed(why)) => {
                    log::warn!("{}: success notice not sent: {why}", msg.id)
                }
                Err(e) => log::warn!("{}: success notice not sent: {e}", msg.id),
            }
            let id = msg.id.clone();
            self.messages.insert(id.clone(), msg);
            self.finish_if_idle(&id);
            return;
        }
        let path = queue_path(&self.root, QueueName::Active, &msg.id);
        match o.reply {
            Ok(BounceReply::Queued(_)) | Ok(BounceReply::NotNeeded) => {
                let delay = now_f64() - msg.arrival as f64;
                for (off, r) in &o.recipients {
                    match QueueFile::mark_done(&path, *off) {
                        Ok(()) => {
                            msg.set_done(*off);
                            if o.expired {
                                log::info!(
                                    "{}",
                                    to_line(
                                        &msg.id,
                                        &r.address,
                                        &r.orig_address,
                                        delay,
                                        &r.dsn,
                                        "expired, returned to sender",
                                        None
                                    )
                                );
                            }
                        }
                        Err(e) => log::warn!("{}: cannot mark <{}> done: {e}", msg.id, r.address),
                    }
                }
            }
            Ok(BounceReply::Failed(why)) => {
                self.bounce_failed(&mut msg, &o.recipients, o.expired, &why)
            }
            Err(e) => self.bounce_failed(&mut msg, &o.recipients, o.expired, &e.to_string()),
        }
        let id = msg.id.clone();
        self.messages.insert(id.clone(), msg);
        self.finish_if_idle(&id);
    }

    /// The notice could not be queued: the recipients stay queued and are retried.
    fn bounce_failed(
        &self,
        msg: &mut ActiveMessage,
        recipients: &[(u64, BouncedRecipient)],
        expired: bool,
        why: &str,
    ) {
        log::warn!("{}: bounce service failure: {why}", msg.id);
        // An expired message keeps its real last reason for the next attempt's notice.
        if !expired {
            for (off, _) in recipients {
                self.note_deferred(msg, *off, BOUNCE_FAILURE_TEXT);
            }
        }
    }

    fn finish_if_idle(&mut self, id: &str) {
        if self.messages.get(id).is_some_and(|m| m.outstanding == 0) {
            self.finish(id);
        }
    }

    /// Moves the stranded files to deferred/ again (the first failure was logged).
    fn retry_stranded(&mut self) {
        if self.stranded.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for (id, retry_at) in std::mem::take(&mut self.stranded) {
            match move_file(&self.root, QueueName::Active, QueueName::Deferred, &id) {
                Ok(()) => {
                    log::info!("{id}: moved to deferred after an earlier failure");
                    let path = queue_path(&self.root, QueueName::Deferred, &id);
                    if let Err(e) = set_retry_time(&path, system_time(retry_at)) {
                        log::warn!("{id}: cannot set retry time: {e}");
                    }
                    self.release(&id);
                }
                Err(QueueError::NotFound(_)) => self.release(&id),
                Err(_) => still.push((id, retry_at)),
            }
        }
        self.stranded = still;
    }

    /// A file in active/ that cannot be opened goes back to deferred/ and waits for its
    /// own backoff ([`Unreadable`]); the warning is logged once per file.
    fn set_aside(&mut self, id: &str, e: &QueueError) {
        let retry = &self.settings.retry;
        let now = now_secs();
        if self
            .unreadable
            .failed(id, now, retry.minimal_backoff, retry.maximal_backoff)
        {
            log::warn!(
                "{id}: cannot open queue file: {e}; left in deferred and retried with backoff \
                 (check its owner and mode: rostfix check reports, rostsuper -s repairs)"
            );
        }
        match move_file(&self.root, QueueName::Active, QueueName::Deferred, id) {
            Ok(()) | Err(QueueError::NotFound(_)) => {}
            Err(e) => log::warn!("{id}: cannot move to deferred: {e}"),
        }
    }

    /// Gives up the ownership of a file that left active/ (or is about to be recycled).
    fn release(&mut self, id: &str) {
        self.locks.remove(id);
    }

    /// Forgets a message that leaves active/.
    fn forget(&mut self, id: &str) -> Option<ActiveMessage> {
        let msg = self.messages.remove(id)?;
        self.rcpt_count = self.rcpt_count.saturating_sub(msg.recipients.len());
        Some(msg)
    }

    /// No request is outstanding: remove, defer or expire the message.
    fn finish(&mut self, id: &str) {
        let Some(msg) = self.messages.get_mut(id) else {
            return;
        };
        let now = now_secs();
        match completion(msg, now, &self.settings.retry) {
            Completion::Remove => {
                self.forget(id);
                // Before the file can be recycled into a new message.
                self.release(id);
                match self.recycler.remove(&self.root, QueueName::Active, id) {
                    Ok(()) | Err(QueueError::NotFound(_)) => log::info!("{id}: removed"),
                    Err(e) => log::warn!("{id}: cannot remove: {e}"),
                }
                if let Err(e) = remove_message_logs(&self.root, id) {
                    log::warn!("{id}: cannot remove message logs: {e}");
                }
            }
            Completion::Defer { retry_at } => {
                let Some(msg) = self.forget(id) else {
                    return;
                };
                if self.defer_file(id, retry_at) {
                    self.release(id);
                    self.maybe_warn_delay(&msg, now);
                } else {
                    // Left in active/ it would wait for the next qmgr start.
                    self.stranded.push((id.to_string(), retry_at));
                }
            }
            Completion::Expire { pending } => {
                msg.expire_tried = true;
                let logged: HashMap<String, String> = match read_defer_reasons(&self.root, id) {
                    Ok(v) => v.into_iter().collect(),
                    Err(e) => {
                        log::warn!("{id}: cannot read defer log: {e}");
                        HashMap::new()
                    }
                };
                let recipients: Vec<(u64, BouncedRecipient)> = pending
                    .iter()
                    .filter_map(|off| msg.recipients.get(off).map(|r| (*off, r)))
                    .map(|(off, r)| {
                        let reason = r
                            .last_reason
                            .as_deref()
                            .or_else(|| logged.get(&r.address).map(String::as_str));
                        (
                            off,
                            BouncedRecipient {
                                address: r.address.clone(),
                                orig_address: r.orig_address.clone(),
                                dsn: Dsn::or_class(EXPIRED_DSN, DeliveryStatus::Deferred),
                                text: expired_text(reason),
                                relay: "none".to_string(),
                                notify: r.notify.clone(),
                                action: String::new(),
                            },
                        )
                    })
                    .collect();
                msg.outstanding += 1;
                self.spawn_bounce(id, recipients, true, NoticeKind::Failure);
            }
        }
    }

    /// delay_warning_time: once the message has waited that long, its sender is told
    /// once (the mark lives in defer/ID) which recipients are still being retried.
    fn maybe_warn_delay(&mut self, msg: &ActiveMessage, now: i64) {
        let warn_after = self.settings.delay_warning;
        if warn_after <= 0 || now.saturating_sub(msg.arrival) < warn_after || msg.sender.is_empty()
        {
            return;
        }
        match delay_warned(&self.root, &msg.id) {
            Ok(false) => {}
            Ok(true) => return,
            Err(e) => {
                log::warn!("{}: cannot read the delay warning mark: {e}", msg.id);
                return;
            }
        }
        let recipients: Vec<(u64, BouncedRecipient)> = msg
            .recipients
            .iter()
            .filter(|(_, r)| !r.done)
            .map(|(off, r)| {
                (
                    *off,
                    BouncedRecipient {
                        address: r.address.clone(),
                        orig_address: r.orig_address.clone(),
                        dsn: Dsn::or_class("4.0.0", DeliveryStatus::Deferred),
                        text: r.last_reason.clone().unwrap_or_default(),
                        relay: "none".into(),
                        notify: r.notify.clone(),
                        action: String::new(),
                    },
                )
            })
            .collect();
        if recipients.is_empty() {
            return;
        }
        // Listed ids are valid ones; a request cannot carry anything else.
        let Ok(queue_id) = QueueId::new(msg.id.as_str()) else {
            return;
        };
        let request = BounceRequest {
            queue_name: QueueName::Deferred,
            queue_id,
            sender: msg.sender.clone(),
            arrival: msg.arrival,
            recipients: recipients.iter().map(|(_, r)| r.clone()).collect(),
            kind: NoticeKind::Delay,
        };
        self.send_notice(request, recipients, false);
    }

    /// Moves a file from active/ to deferred/ and sets its retry time; false if the
    /// file could not be moved.
    fn defer_file(&self, id: &str, retry_at: i64) -> bool {
        if let Err(e) = move_file(&self.root, QueueName::Active, QueueName::Deferred, id) {
            log::warn!("{id}: cannot move to deferred: {e}");
            return false;
        }
        let path = queue_path(&self.root, QueueName::Deferred, id);
        if let Err(e) = set_retry_time(&path, system_time(retry_at)) {
            log::warn!("{id}: cannot set retry time: {e}");
        }
        true
    }
}

/// True when a NOTIFY value (comma list) names `what`.
fn notify_has(notify: &str, what: &str) -> bool {
    notify
        .split(',')
        .any(|w| w.trim().eq_ignore_ascii_case(what))
}

/// Success notices say `delivered` for final delivery on this host (or discard), and
/// `relayed` when the mail went on to another MTA that may not send DSNs itself
/// (Rostfix's smtp client does not pass NOTIFY on yet).
fn success_action(transport: &str) -> &'static str {
    match transport {
        "local" | "virtual" | "lmtp" | "builtin" => "delivered",
        _ => "relayed",
    }
}

fn success_text(o: &DeliveryOutcome, offset: u64) -> String {
    o.reply
        .as_ref()
        .ok()
        .and_then(|r| r.results.iter().find(|x| x.offset == offset))
        .map_or_else(|| "delivered".to_string(), |x| x.text.clone())
}

// Declared here rather than in main.rs, which another change is reshaping.
#[path = "unreadable.rs"]
mod unreadable;
use unreadable::Unreadable;

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
