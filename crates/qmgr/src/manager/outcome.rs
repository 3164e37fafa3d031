//! Outcome handling: what qmgr does with each delivery reply and each bounce-service
//! reply. A reply is classified once, gives the scheduler its concurrency feedback,
//! then marks recipients done, records deferrals, and sends failure, success and
//! delay notices; a message with nothing outstanding is removed, deferred (with its
//! retry time) or expired.

use super::{now_f64, now_secs, system_time, Manager, CONNECT_TIMEOUT};
use crate::event::{BounceOutcome, DeliveryOutcome, Event};
use crate::ipc::{self, CallError};
use crate::logline::to_line;
use crate::message::{
    classify, completion, expired_text, feedback, ActiveMessage, Classified, Completion,
    BOUNCE_FAILURE_TEXT, EXPIRED_DSN,
};
use rostfix_proto::{
    BounceReply, BounceRequest, BouncedRecipient, DeliveryStatus, Dsn, NoticeKind, QueueId,
    BOUNCE_SOCKET,
};
use rostfix_queue::{
    delay_warned, mark_delay_warned, move_file, queue_path, read_defer_reasons,
    remove_message_logs, set_retry_time, QueueError, QueueFile, QueueName,
};
use std::collections::HashMap;
use std::time::Instant;

/// Failure notices of one delivery, grouped by who gets them: None = the envelope
/// sender, Some(owner) = an alias owner named by local.
type NoticeGroup = (Option<String>, Vec<(u64, BouncedRecipient)>);

impl Manager {
    /// A delivery agent answered (or could not be reached): concurrency feedback, then
    /// the per-recipient results, both from the one classification of the reply.
    ///
    /// A group commit's further messages (`o.batched`) shared the request's slot: the
    /// first message's reply gives the feedback, then each message's results apply
    /// (their done marks are already recorded by the worker, crate::group_commit).
    pub(super) fn on_delivered(&mut self, mut o: DeliveryOutcome) {
        if let Some(id) = o.worker {
            self.workers.done(id);
        }
        if self.stopping && matches!(o.reply, Err(CallError::Connect { .. })) {
            self.not_started(o);
            return;
        }
        let batched = std::mem::take(&mut o.batched);
        let classified = Self::classify_outcome(&o);
        self.note_throttles(&o, &classified);
        let fb = feedback(o.reply.as_ref().err().map(ToString::to_string), &classified);
        self.sched.finished(&o.route, &fb, Instant::now());
        // Refill the workers' queues before this message's bookkeeping (which frees
        // no slot: `finished` did).
        self.dispatch();
        self.apply_outcome(o, classified, false);
        for m in batched {
            let classified = Self::classify_outcome(&m);
            self.apply_outcome(m, classified, false);
        }
    }

    /// A request that could not reach its agent because the system is stopping
    /// (master removes the sockets, then signals qmgr): not an attempt, so nothing is
    /// logged, recorded or fed back. Its recipients stay pending in active/, where the
    /// next qmgr finds the file (as for requests that were never started).
    fn not_started(&mut self, o: DeliveryOutcome) {
        self.sched
            .finished(&o.route, &crate::schedule::Outcome::Success, Instant::now());
        for id in std::iter::once(&o.queue_id).chain(o.batched.iter().map(|m| &m.queue_id)) {
            if let Some(msg) = self.messages.get_mut(id) {
                msg.outstanding = msg.outstanding.saturating_sub(1);
            }
        }
        log::debug!(
            "{}: not delivered: the system is stopping ({} recipient(s) stay queued)",
            o.queue_id,
            o.requested.len()
        );
    }

    /// Sorts a reply into sent, bounced and deferred recipients (message.rs `classify`);
    /// called once per reply, whose result every later step takes as an argument.
    pub(super) fn classify_outcome(o: &DeliveryOutcome) -> Classified {
        match &o.reply {
            Ok(reply) => classify(&o.requested, Ok(reply)),
            Err(e) => classify(&o.requested, Err(&e.to_string())),
        }
    }

    /// Applies the results of one request (`classified` from [`Self::classify_outcome`]
    /// of `o`) to its message: done, deferred (logged by qmgr when the agent did not, or
    /// when `qmgr_logs_deferrals`), bounced (a notice, then done), success notices for
    /// NOTIFY=SUCCESS.
    pub(super) fn apply_outcome(
        &mut self,
        o: DeliveryOutcome,
        classified: Classified,
        qmgr_logs_deferrals: bool,
    ) {
        let Some(mut msg) = self.messages.remove(&o.queue_id) else {
            log::warn!(
                "{}: delivery result for a message not in active",
                o.queue_id
            );
            return;
        };
        msg.outstanding = msg.outstanding.saturating_sub(1);
        for w in &classified.warnings {
            log::warn!("{}: {w}", msg.id);
        }
        if msg.probe {
            self.apply_probe_outcome(&mut msg, &o, classified);
            let id = msg.id.clone();
            self.messages.insert(id.clone(), msg);
            self.finish_if_idle(&id);
            return;
        }
        self.count_outcome(&o.route.transport, &msg, &classified);
        self.record_attempts(&o, &msg, &classified);
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

    /// Reports one reply's recipients per outcome, and their delays, to the metrics
    /// service (the same classification the log lines come from).
    fn count_outcome(&self, transport: &str, msg: &ActiveMessage, c: &Classified) {
        let delay = (now_f64() - msg.arrival as f64).max(0.0);
        for (status, n) in [
            ("sent", c.sent.len()),
            ("bounced", c.bounced.len()),
            ("deferred", c.deferred.len()),
        ] {
            if n == 0 {
                continue;
            }
            let labels = [("transport", transport), ("status", status)];
            self.metrics
                .add("rostfix_delivery_recipients_total", &labels, n as f64);
            for _ in 0..n {
                self.metrics
                    .observe("rostfix_delivery_delay_seconds", &labels, delay);
            }
        }
    }

    /// Sends a notice request for a message in active/ (counted in its outstanding
    /// work by the caller, so the file stays while bounce reads it).
    pub(super) fn spawn_bounce(
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
    pub(super) fn spawn_notice(
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

    pub(super) fn send_notice(
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

    pub(super) fn on_bounced(&mut self, o: BounceOutcome) {
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
                                self.record_expired(
                                    &msg,
                                    &r.address,
                                    &r.orig_address,
                                    &r.dsn,
                                    &r.text,
                                );
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
    pub(super) fn bounce_failed(
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

    /// Completes a message with nothing outstanding; reads the next slice of one
    /// still busy when it is due (manager/slices.rs).
    pub(super) fn finish_if_idle(&mut self, id: &str) {
        match self.messages.get(id).map(|m| m.outstanding) {
            Some(0) => self.finish(id),
            Some(_) => self.read_ahead(id),
            None => {}
        }
    }

    /// Forgets a message that leaves active/.
    pub(super) fn forget(&mut self, id: &str) -> Option<ActiveMessage> {
        let msg = self.messages.remove(id)?;
        self.rcpt_count = self.rcpt_count.saturating_sub(msg.recipients.len());
        Some(msg)
    }

    /// No request is outstanding: remove, defer or expire the message.
    pub(super) fn finish(&mut self, id: &str) {
        let Some(msg) = self.messages.get_mut(id) else {
            return;
        };
        if msg.probe {
            self.finish_probe(id);
        }
        // Recipients left unread come first: the message is not finished.
        if self.continue_slices(id) {
            return;
        }
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
    pub(super) fn maybe_warn_delay(&mut self, msg: &ActiveMessage, now: i64) {
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
    pub(super) fn defer_file(&self, id: &str, retry_at: i64) -> bool {
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
