//! The main loop and the queue state it owns: which messages are in active/, which
//! requests are queued or in flight. Helper threads (trigger listener, one worker per
//! delivery or bounce request) report over one channel; only this loop touches queue
//! files (moves, done marks after bounces, defer logs, removal), so there are no locks.
//!
//! Timers: incoming/ is rescanned every [`INCOMING_SCAN`] as a safety net against lost
//! triggers, deferred/ every queue_run_delay. When master goes away, qmgr stops taking
//! new work and exits once nothing is in flight; messages left in active/ go back to
//! incoming/ at the next start.

use crate::event::{BounceOutcome, DeliveryOutcome, Event};
use crate::ipc::{self, CallError};
use crate::logline::{from_line, to_line};
use crate::message::{
    classify, completion, expired_text, ActiveMessage, Completion, BOUNCE_FAILURE_TEXT, EXPIRED_DSN,
};
use crate::resolve::resolve;
use crate::schedule::{group, PendingRequest, Scheduler};
use crate::settings::Settings;
use rostfix_proto::{BounceReply, BounceRequest, BouncedRecipient, DeliveryRequest, Trigger};
use rostfix_queue::{
    append_defer_reason, is_valid_queue_id, list_queue, move_file, queue_path, read_defer_reasons,
    remove_message_logs, set_retry_time, QueueError, QueueFile, QueueName,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often incoming/ is scanned without a trigger.
const INCOMING_SCAN: Duration = Duration::from_secs(5);
/// Longest sleep of the loop: bounds how late timers and the master check run.
const TICK: Duration = Duration::from_secs(1);
/// Connecting to a delivery agent or the bounce service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events handled per loop turn before timers get a look in.
const MAX_EVENTS_PER_TURN: usize = 1000;
/// DSN of a recipient the resolver could not route (configuration error).
const RESOLVE_DSN: &str = "4.3.5";

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
    sched: Scheduler,
    messages: HashMap<String, ActiveMessage>,
    bounce_jobs: usize,
    tx: Sender<Event>,
    next_incoming_scan: Instant,
    next_deferred_scan: Instant,
    stopping: bool,
}

impl Manager {
    pub fn new(root: PathBuf, settings: Settings, tx: Sender<Event>) -> Manager {
        let sched = Scheduler::new(settings.limits.clone());
        let now = Instant::now();
        Manager {
            root,
            settings,
            sched,
            messages: HashMap::new(),
            bounce_jobs: 0,
            tx,
            next_incoming_scan: now,
            next_deferred_scan: now,
            stopping: false,
        }
    }

    /// Crash recovery: whatever is in active/ was being delivered when the previous qmgr
    /// died. Back to incoming/; only a delivery that was in flight can repeat.
    pub fn recover(&mut self) {
        let ids = match list_queue(&self.root, QueueName::Active) {
            Ok(ids) => ids,
            Err(e) => {
                log::warn!("cannot list active queue: {e}");
                return;
            }
        };
        for id in ids {
            match move_file(&self.root, QueueName::Active, QueueName::Incoming, &id) {
                Ok(()) => log::info!("{id}: requeued from active to incoming (qmgr restart)"),
                Err(QueueError::NotFound(_)) => {}
                Err(e) => log::warn!("{id}: cannot requeue from active: {e}"),
            }
        }
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
            if self.stopping {
                if self.sched.in_flight() == 0 && self.bounce_jobs == 0 {
                    return;
                }
                continue;
            }
            let now = Instant::now();
            if now >= self.next_incoming_scan {
                self.scan_incoming();
            }
            if now >= self.next_deferred_scan {
                self.scan_deferred(false);
            }
            self.dispatch();
        }
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
                self.scan_incoming();
                if Instant::now() >= self.next_deferred_scan {
                    self.scan_deferred(false);
                }
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
        }
        self.dispatch();
    }

    /// Room for more messages in active/.
    fn has_room(&self) -> bool {
        self.messages.len() < self.settings.active_limit
    }

    pub fn scan_incoming(&mut self) {
        self.next_incoming_scan = Instant::now() + INCOMING_SCAN;
        let ids = match list_queue(&self.root, QueueName::Incoming) {
            Ok(ids) => ids,
            Err(e) => {
                log::warn!("cannot scan incoming queue: {e}");
                return;
            }
        };
        for id in ids {
            if !self.has_room() {
                break;
            }
            self.activate(QueueName::Incoming, &id);
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
        for id in ids {
            if !self.has_room() {
                break;
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
            self.activate(QueueName::Deferred, &id);
        }
    }

    /// Moves one file into active/, reads it, resolves and queues its recipients.
    fn activate(&mut self, from: QueueName, id: &str) {
        if self.messages.contains_key(id) {
            return;
        }
        match move_file(&self.root, from, QueueName::Active, id) {
            Ok(()) => {}
            Err(QueueError::NotFound(_)) => return,
            Err(e) => {
                log::warn!("{id}: cannot move to active: {e}");
                return;
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
                return;
            }
            Err(QueueError::NotFound(_)) => return,
            Err(e) => {
                log::warn!("{id}: cannot read queue file: {e}; will retry later");
                self.defer_file(
                    id,
                    now_secs().saturating_add(self.settings.retry.minimal_backoff),
                );
                return;
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
        msg.forced_expire = std::fs::metadata(&qf.path)
            .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o100 != 0);
        let mut routed = Vec::new();
        for r in qf.pending() {
            if msg.forced_expire {
                // rostsuper -e: no delivery; finish() below bounces every pending one.
                let orig = if r.orig_address.is_empty() {
                    &r.address
                } else {
                    &r.orig_address
                };
                msg.add_recipient(r.offset, &r.address, orig);
                msg.set_reason(r.offset, "message is administratively expired");
                continue;
            }
            let orig = if r.orig_address.is_empty() {
                r.address.clone()
            } else {
                r.orig_address.clone()
            };
            msg.add_recipient(r.offset, &r.address, &orig);
            match resolve(&r.address, &self.settings.resolve) {
                Ok(route) => routed.extend(msg.delivery_recipient(r.offset).map(|d| (route, d))),
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
                            &format!("deferred ({text})")
                        )
                    );
                }
            }
        }
        let requests = group(id, routed, &self.settings.limits);
        msg.outstanding = requests.len();
        self.messages.insert(id.to_string(), msg);
        for r in requests {
            self.sched.enqueue(r);
        }
        self.finish_if_idle(id);
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

    /// Starts every request the concurrency limits allow.
    fn dispatch(&mut self) {
        if self.stopping {
            return;
        }
        while let Some(req) = self.sched.next() {
            self.spawn_delivery(req);
        }
    }

    fn spawn_delivery(&mut self, req: PendingRequest) {
        let Some(msg) = self.messages.get(&req.queue_id) else {
            // The message went away (cannot happen while requests are outstanding).
            self.sched.finished(&req.route);
            return;
        };
        let request = DeliveryRequest {
            queue_name: QueueName::Active.as_str().to_string(),
            queue_id: req.queue_id.clone(),
            sender: msg.sender.clone(),
            nexthop: req.route.nexthop.clone(),
            arrival: msg.arrival,
            recipients: req.recipients.clone(),
        };
        let path = self.root.join("private").join(&req.route.transport);
        let tx = self.tx.clone();
        let io_timeout = self.settings.ipc_timeout;
        let (route, requested) = (req.route.clone(), req.recipients.clone());
        let spawned = std::thread::Builder::new()
            .name("deliver".into())
            .spawn(move || {
                let reply = ipc::deliver(&path, &request, CONNECT_TIMEOUT, io_timeout);
                let _ = tx.send(Event::Delivered(DeliveryOutcome {
                    queue_id: request.queue_id,
                    route,
                    requested: request.recipients,
                    reply,
                }));
            });
        if let Err(e) = spawned {
            self.on_delivered(DeliveryOutcome {
                queue_id: req.queue_id,
                route: req.route,
                requested,
                reply: Err(CallError::Connect {
                    path: "worker thread".into(),
                    source: e,
                }),
            });
        }
    }

    fn on_delivered(&mut self, o: DeliveryOutcome) {
        self.sched.finished(&o.route);
        let Some(mut msg) = self.messages.remove(&o.queue_id) else {
            log::warn!(
                "{}: delivery result for a message not in active",
                o.queue_id
            );
            return;
        };
        msg.outstanding = msg.outstanding.saturating_sub(1);
        let failure = o.reply.as_ref().err().map(ToString::to_string);
        let classified = match (&o.reply, &failure) {
            (Ok(reply), _) => classify(&o.requested, Ok(reply)),
            (Err(_), Some(why)) => classify(&o.requested, Err(why)),
            (Err(_), None) => classify(&o.requested, Err("unknown error")),
        };
        for w in &classified.warnings {
            log::warn!("{}: {w}", msg.id);
        }
        for off in &classified.sent {
            msg.set_done(*off);
        }
        let delay = now_f64() - msg.arrival as f64;
        for d in &classified.deferred {
            self.note_deferred(&mut msg, d.offset, &d.text);
            if d.log_by_qmgr {
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
                        &format!("deferred ({})", d.text)
                    )
                );
            }
        }
        let id = msg.id.clone();
        let bounced = classified.bounced;
        if !bounced.is_empty() {
            msg.outstanding += 1;
        }
        self.messages.insert(id.clone(), msg);
        if !bounced.is_empty() {
            self.spawn_bounce(&id, bounced, false);
        }
        self.finish_if_idle(&id);
    }

    fn spawn_bounce(&mut self, id: &str, recipients: Vec<(u64, BouncedRecipient)>, expired: bool) {
        let Some(msg) = self.messages.get(id) else {
            return;
        };
        let request = BounceRequest {
            queue_name: QueueName::Active.as_str().to_string(),
            queue_id: id.to_string(),
            sender: msg.sender.clone(),
            arrival: msg.arrival,
            recipients: recipients.iter().map(|(_, r)| r.clone()).collect(),
        };
        self.bounce_jobs += 1;
        let path = self.root.join("private").join("bounce");
        let tx = self.tx.clone();
        let io_timeout = self.settings.ipc_timeout;
        let for_thread = recipients.clone();
        let spawned = std::thread::Builder::new()
            .name("bounce".into())
            .spawn(move || {
                let reply = ipc::bounce(&path, &request, CONNECT_TIMEOUT, io_timeout);
                let _ = tx.send(Event::Bounced(BounceOutcome {
                    queue_id: request.queue_id,
                    recipients: for_thread,
                    expired,
                    reply,
                }));
            });
        if let Err(e) = spawned {
            self.on_bounced(BounceOutcome {
                queue_id: id.to_string(),
                recipients,
                expired,
                reply: Err(CallError::Connect {
                    path: "worker thread".into(),
                    source: e,
                }),
            });
        }
    }

    fn on_bounced(&mut self, o: BounceOutcome) {
        self.bounce_jobs = self.bounce_jobs.saturating_sub(1);
        let Some(mut msg) = self.messages.remove(&o.queue_id) else {
            log::warn!("{}: bounce result for a message not in active", o.queue_id);
            return;
        };
        msg.outstanding = msg.outstanding.saturating_sub(1);
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
                                        "expired, returned to sender"
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

    /// No request is outstanding: remove, defer or expire the message.
    fn finish(&mut self, id: &str) {
        let Some(msg) = self.messages.get_mut(id) else {
            return;
        };
        match completion(msg, now_secs(), &self.settings.retry) {
            Completion::Remove => {
                self.messages.remove(id);
                let path = queue_path(&self.root, QueueName::Active, id);
                match std::fs::remove_file(&path) {
                    Ok(()) => log::info!("{id}: removed"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        log::info!("{id}: removed")
                    }
                    Err(e) => log::warn!("{id}: cannot remove {}: {e}", path.display()),
                }
                if let Err(e) = remove_message_logs(&self.root, id) {
                    log::warn!("{id}: cannot remove message logs: {e}");
                }
            }
            Completion::Defer { retry_at } => {
                self.messages.remove(id);
                self.defer_file(id, retry_at);
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
                                dsn: EXPIRED_DSN.to_string(),
                                text: expired_text(reason),
                                relay: "none".to_string(),
                            },
                        )
                    })
                    .collect();
                msg.outstanding += 1;
                self.spawn_bounce(id, recipients, true);
            }
        }
    }

    /// Moves a file from active/ to deferred/ and sets its retry time.
    fn defer_file(&self, id: &str, retry_at: i64) {
        if let Err(e) = move_file(&self.root, QueueName::Active, QueueName::Deferred, id) {
            log::warn!("{id}: cannot move to deferred: {e}");
            return;
        }
        let path = queue_path(&self.root, QueueName::Deferred, id);
        if let Err(e) = set_retry_time(&path, system_time(retry_at)) {
            log::warn!("{id}: cannot set retry time: {e}");
        }
    }
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;
