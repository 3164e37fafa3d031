//! One bus intake: recovery at start, then pull / stage / record / release / ack,
//! batch after batch. At least once from the bus, exactly once into the queue:
//!
//! 1. pull at most rostfix_bus_max_outstanding messages (fewer while `maildrop/`
//!    still holds files pickup has not taken: the outstanding bound covers both);
//! 2. each message: a bus id already on record is a redelivery (ack, no copy); one
//!    that fails validation is refused (ack, warning); the others are staged in `bus/`;
//! 3. the staged ids are recorded (one fdatasync), then the files are released into
//!    `maildrop/` (rename, directory fsyncs) and pickup is woken;
//! 4. only then is the batch acknowledged.
//!
//! A failure of step 3 stops the intake (the caller exits non-zero): recovery in the
//! next process finishes the batch from `bus/` before anything is pulled again, so a
//! redelivery can never be staged next to a file still waiting there.

use crate::dedup::{DedupError, DedupStore};
use crate::source::Bus;
use crate::stage;
use crate::submission::{shown, BusMessage};
use rostfix_queue::{QueueError, QueueName};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long staging may run before the rest of the batch's deadline is extended.
const EXTEND_EVERY: Duration = Duration::from_secs(5);
/// The extension asked for.
const EXTENSION: Duration = Duration::from_secs(60);

/// What stops the intake (the process exits; the next one recovers).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Dedup(#[from] DedupError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The limits the intake works within.
#[derive(Debug, Clone)]
pub struct Limits {
    /// rostfix_bus_max_outstanding: messages pulled and not yet acknowledged, plus
    /// files waiting in `maildrop/`.
    pub max_outstanding: usize,
    /// message_size_limit (0: none).
    pub size_limit: u64,
    /// queue_minfree.
    pub queue_minfree: u64,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A batch came and was handled: counts of queued, duplicate and refused messages.
    Batch {
        queued: usize,
        duplicates: usize,
        refused: usize,
        /// Given back to the bus (space ran out while staging).
        returned: usize,
    },
    /// The bus had nothing.
    Empty,
    /// Not pulled: `maildrop/` holds this many files pickup has not taken yet.
    Backlog(usize),
    /// Not pulled: too little space in the queue file system (the reason).
    NoSpace(String),
    /// The bus failed (the reason); nothing was lost.
    BusTrouble(String),
}

/// The intake's state: queue directory, bus, dedup store, limits.
pub struct Intake<B: Bus> {
    root: PathBuf,
    bus: B,
    store: DedupStore,
    limits: Limits,
    uid: u32,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn out_of_space(e: &QueueError) -> bool {
    matches!(e, QueueError::Io { source, .. }
        if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)))
}

impl<B: Bus> Intake<B> {
    pub fn new(root: PathBuf, bus: B, store: DedupStore, limits: Limits, uid: u32) -> Self {
        Intake {
            root,
            bus,
            store,
            limits,
            uid,
        }
    }

    /// Finishes what a previous process left in `bus/`: every complete staged file is
    /// recorded (if it is not yet) and released. Returns how many were released.
    pub fn recover(&mut self) -> Result<usize, IntakeError> {
        let found = stage::leftovers(&self.root)?;
        for id in &found.corrupt {
            log::warn!("bus/{id}: unreadable staged file moved to corrupt/");
        }
        if found.removed_temps > 0 {
            log::info!(
                "removed {} unfinished staging file(s); the bus redelivers their messages",
                found.removed_temps
            );
        }
        let unrecorded: Vec<&str> = found
            .staged
            .iter()
            .map(|(_, b)| b.as_str())
            .filter(|b| !self.store.contains(b))
            .collect();
        self.store.record(unrecorded, now_secs())?;
        let ids: Vec<String> = found.staged.iter().map(|(q, _)| q.clone()).collect();
        stage::release(&self.root, &ids)?;
        for (qid, bus_id) in &found.staged {
            log::info!(
                "{qid}: uid={} bus_id={bus_id} recovered from bus/",
                self.uid
            );
        }
        if !ids.is_empty() {
            self.wake_pickup();
        }
        Ok(ids.len())
    }

    fn wake_pickup(&self) {
        if let Err(e) = rostfix_proto::wake_pickup(&self.root) {
            log::warn!("cannot wake pickup: {e}");
        }
    }

    /// Files in `maildrop/` (pickup's backlog, ours or rostdrop's).
    fn maildrop_backlog(&self) -> usize {
        std::fs::read_dir(self.root.join(QueueName::Maildrop.as_str()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// One pull and its handling.
    pub fn step(&mut self) -> Result<Step, IntakeError> {
        self.store.compact_if_due(now_secs())?;
        match rostfix_queue::space::free_bytes(&self.root.join(QueueName::Bus.as_str())) {
            Ok(free) => {
                if let Some(why) = rostfix_queue::space::shortage(
                    free,
                    self.limits.queue_minfree,
                    self.limits.size_limit,
                ) {
                    return Ok(Step::NoSpace(why));
                }
            }
            Err(e) => log::warn!("cannot get the free space of the queue file system: {e}"),
        }
        let backlog = self.maildrop_backlog();
        if backlog >= self.limits.max_outstanding {
            return Ok(Step::Backlog(backlog));
        }
        let want = (self.limits.max_outstanding - backlog).min(crate::pubsub::MAX_PULL);
        let batch = match self.bus.pull(want) {
            Ok(b) => b,
            Err(e) => return Ok(Step::BusTrouble(e.to_string())),
        };
        if batch.is_empty() {
            return Ok(Step::Empty);
        }
        self.handle_batch(batch)
    }

    /// Steps 2 to 4 for one pulled batch.
    pub fn handle_batch(&mut self, batch: Vec<BusMessage>) -> Result<Step, IntakeError> {
        let started = Instant::now();
        let mut extended = started;
        let mut done: Vec<String> = Vec::with_capacity(batch.len());
        // (queue id, bus id, log line) of the staged messages.
        let mut staged: Vec<(String, String, String)> = Vec::new();
        let (mut duplicates, mut refused) = (0, 0);
        let mut returned: Vec<String> = Vec::new();
        let mut in_batch = std::collections::HashSet::new();
        let total = batch.len();
        let handles: Vec<String> = batch.iter().map(|m| m.ack_handle.clone()).collect();
        for (i, msg) in batch.into_iter().enumerate() {
            if !returned.is_empty() {
                returned.push(msg.ack_handle);
                continue;
            }
            if extended.elapsed() >= EXTEND_EVERY {
                // Staging is slow (a busy disk): keep the rest of the batch ours, or
                // the bus redelivers it meanwhile (harmless, but wasted work).
                extended = Instant::now();
                log::info!(
                    "staging is slow: {i} of {total} messages after {:?}; extending the ack deadline",
                    started.elapsed()
                );
                if let Err(e) = self.bus.extend(&handles[i..], EXTENSION) {
                    log::warn!("{}: cannot extend the ack deadline: {e}", self.bus.kind());
                }
            }
            if self.store.contains(&msg.id) || in_batch.contains(&msg.id) {
                log::info!(
                    "bus_id={}: already queued; redelivery acknowledged, not queued again",
                    msg.id
                );
                duplicates += 1;
                done.push(msg.ack_handle);
                continue;
            }
            let sub = match msg.to_submission(self.limits.size_limit) {
                Ok(s) => s,
                Err(why) => {
                    self.refuse(&msg, &why.to_string());
                    refused += 1;
                    done.push(msg.ack_handle);
                    continue;
                }
            };
            match stage::stage(&self.root, &sub, &msg.id, now_micros()) {
                Ok(qid) => {
                    let mut line = format!(
                        "{qid}: uid={} from=<{}> bus_id={}",
                        self.uid, sub.sender, msg.id
                    );
                    if let Some(c) = &sub.campaign_id {
                        line.push_str(&format!(" campaign_id={c}"));
                    }
                    line.push_str(&format!(" nrcpt={}", sub.recipients.len()));
                    in_batch.insert(msg.id.clone());
                    staged.push((qid, msg.id, line));
                    done.push(msg.ack_handle);
                }
                Err(QueueError::Invalid { what, value }) => {
                    // Would fail the same way every time.
                    self.refuse(&msg, &format!("invalid {what}: {}", shown(&value)));
                    refused += 1;
                    done.push(msg.ack_handle);
                }
                Err(e) => {
                    let why = if out_of_space(&e) {
                        "queue file system full"
                    } else {
                        "cannot write the queue file"
                    };
                    log::warn!(
                        "bus_id={}: {why}: {e}; the message and the rest of the batch go back to the bus",
                        msg.id
                    );
                    returned.push(msg.ack_handle);
                }
            }
        }
        // Step 3: on record, then visible to pickup.
        self.store
            .record(staged.iter().map(|(_, b, _)| b.as_str()), now_secs())?;
        let qids: Vec<String> = staged.iter().map(|(q, _, _)| q.clone()).collect();
        stage::release(&self.root, &qids)?;
        for (_, _, line) in &staged {
            log::info!("{line}");
        }
        if !qids.is_empty() {
            self.wake_pickup();
        }
        // Step 4.
        if let Err(e) = self.bus.ack(&done) {
            // Safe: a redelivery of these is a duplicate on record.
            log::warn!(
                "{}: cannot acknowledge {} message(s): {e}; redeliveries will be recognised",
                self.bus.kind(),
                done.len()
            );
        }
        if !returned.is_empty() {
            if let Err(e) = self.bus.nack(&returned) {
                log::warn!("{}: cannot return messages: {e}", self.bus.kind());
            }
        }
        Ok(Step::Batch {
            queued: staged.len(),
            duplicates,
            refused,
            returned: returned.len(),
        })
    }

    fn refuse(&self, msg: &BusMessage, why: &str) {
        log::warn!(
            "bus_id={}: refused: {why}; acknowledged, not queued",
            if msg.id.is_empty() {
                "(none)".to_string()
            } else {
                shown(&msg.id)
            }
        );
    }
}

#[cfg(test)]
#[path = "intake_tests.rs"]
mod tests;
