//! Activation: how a message gets into active/ and into the scheduler. Scans
//! (manager/scan.rs) rename files from incoming/ and deferred/ into active/ (the
//! directories are synced once per slice); activation locks and reads each file, expand virtual aliases once and
//! store the result, resolve every pending recipient to a route or to one of qmgr's
//! own transports, and queue the delivery requests.

use super::{now_f64, now_secs, Manager};
use crate::builtin::{self, Builtin};
use crate::event::DeliveryOutcome;
use crate::expand::{expand_envelope, ExpansionCheck};
use crate::logline::{from_line, to_line};
use crate::message::ActiveMessage;
use crate::route::Route;
use crate::schedule::{group, PendingRequest};
use rostfix_proto::DeliveryRecipient;
use rostfix_queue::{
    append_defer_reason, move_file, queue_path, rename_file, rewrite_envelope_locked,
    sync_queue_dirs, ContentFilter, LockAttempt, QueueError, QueueFile, QueueLock, QueueName,
    Recipient, FILTER_ATTR,
};
use rostfix_resolve::AddressClass;

/// DSN of a recipient the resolver could not route (configuration error).
const RESOLVE_DSN: &str = "4.3.5";

impl Manager {
    /// Makes the renames of one scan durable with one fsync of active/ and one of the
    /// source directory, before any of those messages is handed to an agent (the
    /// caller dispatches after the scan). Two fsyncs per message on qmgr's one thread
    /// were what held mail in incoming/ under load.
    pub(super) fn sync_activated(&self, from: QueueName, moved: usize) {
        if moved == 0 {
            return;
        }
        if let Err(e) = sync_queue_dirs(&self.root, &[QueueName::Active, from]) {
            // The files are in active/ either way; a crash before the names reach the
            // disk leaves them in `from`, where the next qmgr finds them again.
            log::warn!("cannot sync the active queue directory: {e}");
        }
    }

    /// Moves one file into active/ (a rename: the caller syncs the directories once per
    /// scan), reads it, resolves and queues its recipients. True if it was moved.
    pub(super) fn activate(&mut self, from: QueueName, id: &str) -> bool {
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
        let slice = self.slice_size();
        let Some((qf, unread, total)) = self.read_for_activation(id, slice) else {
            return true;
        };
        log::info!(
            "{}",
            from_line(id, &qf.envelope.sender, qf.content_len, total)
        );
        self.metrics
            .add("rostfix_messages_activated_total", &[], 1.0);
        // A message marked for a content filter goes there whatever its recipients'
        // routes (Postfix's FILTER record overrides the resolver); one that cannot be
        // parsed waits rather than skip the filter.
        let filter = match qf.envelope.attr(FILTER_ATTR).map(ContentFilter::parse) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(f))) => Some(f),
            Some(Err(e)) => {
                log::warn!("{id}: bad content filter attribute: {e}");
                self.defer_whole(&qf, &format!("bad content filter: {e}"));
                return true;
            }
        };
        let arrival = qf.envelope.arrival_us.div_euclid(1_000_000);
        let mut msg = ActiveMessage::new(id, &qf.envelope.sender, arrival);
        msg.probe = qf.envelope.attr(super::probe::PROBE_ATTR) == Some("1");
        msg.retry = from == QueueName::Deferred;
        msg.verp = self.verp_of(&qf);
        msg.campaign_id = qf
            .envelope
            .attr(crate::bulk::CAMPAIGN_ATTR)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        // rostsuper -e marks the file with the owner-execute bit (docs/queue-format.md).
        msg.forced_expire = std::fs::metadata(&qf.path)
            .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o100 != 0);
        msg.filter = filter;
        msg.size = qf.content_len;
        // A large message is read a slice at a time (manager/slices.rs): the first
        // one now, the rest as its deliveries finish.
        msg.unread = unread;
        let first = qf.envelope.recipients;
        if msg.unread.is_some() {
            log::info!("{id}: more than {slice} pending recipients: read {slice} at a time");
        }
        self.queue_slice(msg, first);
        self.finish_if_idle(id);
        true
    }

    /// Reads a file just moved into active/ and locked: its envelope head and first
    /// slice of pending recipients, every other recipient checked and looked at once
    /// but not held (QueueFile::open_first_slice), with virtual alias expansion done
    /// and stored first when it changes anything. Returns the file as read, where the
    /// unread recipients start, and how many recipients it has in all; None when the
    /// file was dealt with here (gone, corrupt, set aside, or deferred whole).
    fn read_for_activation(
        &mut self,
        id: &str,
        slice: usize,
    ) -> Option<(QueueFile, Option<u64>, usize)> {
        let head = match QueueFile::open_slice(&self.root, QueueName::Active, id, u64::MAX, 0) {
            Ok((head, _)) => head,
            Err(e) => {
                self.cannot_open(id, e);
                return None;
            }
        };
        let mut check = ExpansionCheck::new(&self.resolver, &head.envelope);
        let mut total = 0usize;
        let read =
            QueueFile::open_first_slice(&self.root, QueueName::Active, id, slice, &mut |r| {
                total += 1;
                check.see(r);
            });
        let (qf, unread) = match read {
            Ok(x) => x,
            Err(e) => {
                self.cannot_open(id, e);
                return None;
            }
        };
        for r in &qf.envelope.recipients {
            check.see(r);
        }
        total += qf.envelope.recipients.len();
        self.unreadable.cleared(id);
        if check.outcome() == Ok(false) {
            return Some((qf, unread, total));
        }
        // Something to rewrite, or the expansion failed: the whole envelope, once.
        let full = match QueueFile::open(&self.root, QueueName::Active, id) {
            Ok(f) => f,
            Err(e) => {
                self.cannot_open(id, e);
                return None;
            }
        };
        match self.expand_aliases(full) {
            Ok(full) => {
                drop(full);
                let mut count = 0usize;
                match QueueFile::open_first_slice(
                    &self.root,
                    QueueName::Active,
                    id,
                    slice,
                    &mut |_| count += 1,
                ) {
                    Ok((qf, unread)) => {
                        let total = count + qf.envelope.recipients.len();
                        Some((qf, unread, total))
                    }
                    Err(e) => {
                        self.cannot_open(id, e);
                        None
                    }
                }
            }
            Err(None) => {
                self.release(id);
                None
            }
            Err(Some((full, why))) => {
                // Cannot expand now: every pending recipient waits, none is delivered
                // unexpanded (Postfix's cleanup would not have accepted the message).
                self.defer_whole(&full, &why);
                None
            }
        }
    }

    /// A file in active/ that could not be read: a corrupt one goes to corrupt/, a
    /// vanished one is forgotten, anything else is set aside and retried.
    fn cannot_open(&mut self, id: &str, e: QueueError) {
        match e {
            QueueError::Corrupt { reason, .. } => {
                match move_file(&self.root, QueueName::Active, QueueName::Corrupt, id) {
                    Ok(()) => log::warn!("{id}: corrupt queue file: {reason}; moved to corrupt"),
                    Err(e) => log::warn!(
                        "{id}: corrupt queue file: {reason}; cannot move to corrupt: {e}"
                    ),
                }
                self.release(id);
            }
            QueueError::NotFound(_) => self.release(id),
            e => {
                self.release(id);
                self.set_aside(id, &e);
            }
        }
    }

    /// Resolves a slice of a message's pending recipients to routes or to qmgr's own
    /// transports, adds them to the message and queues its requests (the message goes
    /// (back) into `messages`). The caller decides about completion.
    pub(super) fn queue_slice(&mut self, mut msg: ActiveMessage, recipients: Vec<Recipient>) {
        let id = msg.id.clone();
        let id = id.as_str();
        let held_before = msg.recipients.len();
        let arrival = msg.arrival;
        let mut routed = Vec::new();
        let mut builtins: Vec<(Builtin, String, DeliveryRecipient)> = Vec::new();
        for r in &recipients {
            let orig = if r.orig_address.is_empty() {
                r.address.clone()
            } else {
                r.orig_address.clone()
            };
            // The resolve half of allow_percent_hack / swap_bangpath, at each
            // activation as Postfix's resolve does (the queue file keeps the address
            // as received; the current main.cf decides): user%site@ourdomain is
            // delivered to user@site, orig_to keeping the original. A content filter
            // gets the address unresolved, as Postfix's qmgr gives it.
            let address = match &msg.filter {
                Some(_) => Ok(r.address.clone()),
                None => self.resolver.route_local_part(&r.address),
            };
            // A routing failure defers below, with the resolution's failures.
            msg.add_recipient(r.offset, address.as_deref().unwrap_or(&r.address), &orig);
            msg.set_notify(r.offset, &r.notify);
            if msg.forced_expire {
                // No delivery: finish_if_idle below returns every pending one.
                msg.set_reason(r.offset, "message is administratively expired");
                continue;
            }
            let Some(d) = msg.delivery_recipient(r.offset) else {
                continue;
            };
            // The third member: the address leaves this system (relay or default
            // class), so the suppression list applies to it.
            let resolved = match &msg.filter {
                Some(f) => Ok((
                    f.transport.clone(),
                    f.nexthop_for(
                        &self.settings.default_filter_nexthop,
                        &r.address,
                        &self.settings.myhostname,
                    ),
                    false,
                )),
                // The sender matters: sender_dependent_relayhost_maps and
                // sender_dependent_default_transport_maps.
                None => address
                    .and_then(|a| self.resolver.resolve_from(Some(&msg.sender), &a))
                    .map(|res| {
                        let relayed =
                            matches!(res.class, AddressClass::Relay | AddressClass::Default);
                        (res.transport, res.nexthop, relayed)
                    }),
            };
            match resolved {
                Ok((_, _, true)) if self.bulk.is_suppressed(&d.address, now_secs()) => {
                    builtins.push((Builtin::Suppressed, String::new(), d));
                }
                Ok((transport, nexthop, _)) => match Builtin::from_transport(&transport) {
                    Some(b) => builtins.push((b, nexthop, d)),
                    None => routed.push((Route::new(transport, nexthop), d)),
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
        let mut requests = group(id, msg.size, routed, &self.settings.limits);
        if msg.verp.is_some() {
            // Each recipient gets its own sender, hence its own request (Postfix's
            // qmgr likewise sets the recipient limit to 1 for VERP mail).
            requests = requests.into_iter().flat_map(one_per_recipient).collect();
        }
        let queued = requests.len() + usize::from(!builtins.is_empty());
        msg.outstanding += queued;
        msg.slice_requests = queued.max(1);
        self.rcpt_count += msg.recipients.len().saturating_sub(held_before);
        self.messages.insert(id.to_string(), msg);
        for r in requests {
            self.enqueue_shaped(r);
        }
        if !builtins.is_empty() {
            self.run_builtins(id, builtins);
        }
    }

    /// The message's VERP delimiters, if it asks for VERP and they pass
    /// verp_delimiter_filter; a bad request is ignored with a warning (the mail goes
    /// with its own sender), as Postfix's cleanup does.
    fn verp_of(&self, qf: &QueueFile) -> Option<[char; 2]> {
        let delims = qf.envelope.attr(rostfix_queue::VERP_ATTR)?;
        if qf.envelope.sender.is_empty() {
            log::warn!("{}: ignoring VERP request for null sender", qf.id);
            return None;
        }
        match rostfix_queue::verify_delimiters(delims, &self.settings.verp_filter) {
            Ok(pair) => Some(pair),
            Err(e) => {
                log::warn!(
                    "{}: ignoring bad VERP request \"{}\": {e}",
                    qf.id,
                    delims.escape_default()
                );
                None
            }
        }
    }

    /// Expands virtual aliases once and stores the result in the file (atomically)
    /// before anything is delivered. `Err(None)`: the file went away or is corrupt
    /// (handled); `Err(Some(..))`: the expansion must wait (a table problem).
    #[allow(clippy::result_large_err)]
    pub(super) fn expand_aliases(
        &mut self,
        qf: QueueFile,
    ) -> Result<QueueFile, Option<(QueueFile, String)>> {
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
    pub(super) fn defer_whole(&mut self, qf: &QueueFile, why: &str) {
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
    pub(super) fn run_builtins(
        &mut self,
        id: &str,
        list: Vec<(Builtin, String, DeliveryRecipient)>,
    ) {
        let path = queue_path(&self.root, QueueName::Active, id);
        let arrival = self.messages.get(id).map_or(0, |m| m.arrival);
        let delay = now_f64() - arrival as f64;
        let mut requested = Vec::new();
        let mut results = Vec::new();
        // Not synced: discarding again after a power loss changes nothing, and an
        // fdatasync per message on this one thread held up the queue. One parse of the
        // envelope for all of them: one per recipient made discarding a large list
        // quadratic.
        let discarded: Vec<u64> = list
            .iter()
            .filter(|(kind, _, _)| *kind == Builtin::Discard)
            .map(|(_, _, d)| d.offset)
            .collect();
        let marked = QueueFile::mark_done_many_unsynced(&path, &discarded);
        for (kind, text, d) in list {
            let mut res = builtin::result(kind, &text, &d);
            if kind == Builtin::Discard {
                if let Err(e) = &marked {
                    res = builtin::unavailable(&d, &format!("cannot mark done: {e}"));
                }
            }
            log::info!("{}", builtin::log_line(id, &d, delay, &res));
            requested.push(d);
            results.push(res);
        }
        let outcome = DeliveryOutcome {
            queue_id: id.to_string(),
            route: Route::new("builtin", ""),
            requested,
            reply: Ok(rostfix_proto::DeliveryReply::new(results)),
            worker: None,
            batched: Vec::new(),
        };
        let classified = Self::classify_outcome(&outcome);
        self.apply_outcome(outcome, classified, false);
    }

    /// Records a defer reason in the defer log and in memory.
    pub(super) fn note_deferred(&self, msg: &mut ActiveMessage, offset: u64, text: &str) {
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
}

/// Splits a request into one request per recipient (VERP).
fn one_per_recipient(req: PendingRequest) -> Vec<PendingRequest> {
    req.recipients
        .into_iter()
        .map(|r| PendingRequest {
            queue_id: req.queue_id.clone(),
            route: req.route.clone(),
            recipients: vec![r],
            size: req.size,
        })
        .collect()
}
