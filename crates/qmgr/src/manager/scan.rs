//! Scans of incoming/ and deferred/, a slice per loop turn. A scan that activated
//! every file it listed before dispatching held all delivery back: with 100 000
//! messages in deferred/, a flush spent about 25 s moving the first 20 000 (the active
//! limit) into active/ before the first one went out. Each turn now activates at most
//! [`SLICE_MESSAGES`] files or [`SLICE_TIME`] worth, syncs the directories for those,
//! and returns so the loop dispatches them; the scan goes on at the next turn.
//!
//! incoming/ is listed afresh at each slice (sorted, so the oldest queue ids go
//! first; it is short unless qmgr is behind, and a full active/ is not listed at
//! all). deferred/ can hold a million files: its scan reads the directory as it goes
//! and keeps only the open directory between turns, so memory does not grow with the
//! queue. A forced scan (`rostqueue -f`) starts a new pass that ignores retry times.

use super::{now_secs, Manager, INCOMING_SCAN};
use crate::backoff::is_due;
use rostfix_queue::{is_valid_queue_id, list_queue, queue_path, QueueName};
use std::fs::ReadDir;
use std::time::{Instant, UNIX_EPOCH};

/// Most files one slice activates.
pub(super) const SLICE_MESSAGES: usize = 1000;
/// A slice ends once it has taken this long (checked every [`TIME_CHECK_EVERY`]).
const SLICE_TIME: std::time::Duration = std::time::Duration::from_millis(50);
/// How many files between looks at the clock; a slice of fewer files never stops on
/// time, which keeps small scans (and the unit tests) whole.
const TIME_CHECK_EVERY: usize = 64;

/// A pass over deferred/ in progress.
pub(super) struct DeferredScan {
    dir: ReadDir,
    /// Every file, whatever its retry time (`rostqueue -f`).
    force: bool,
}

/// Counts a slice's work and says when it is over.
struct Slice {
    started: Instant,
    looked: usize,
}

impl Slice {
    fn new() -> Slice {
        Slice {
            started: Instant::now(),
            looked: 0,
        }
    }

    /// Counts one more file; true once the slice has done its share.
    fn full(&mut self) -> bool {
        self.looked += 1;
        self.looked >= SLICE_MESSAGES
            || (self.looked.is_multiple_of(TIME_CHECK_EVERY)
                && self.started.elapsed() >= SLICE_TIME)
    }
}

impl Manager {
    /// Activates a slice of incoming/; what the slice left is taken at the next turn
    /// (the loop sees `scan_wanted` and does not sleep).
    pub fn scan_incoming(&mut self) {
        if !self.has_room() {
            // Nothing could be taken in: list again once deliveries make room (the
            // flag stays, so the next turn looks).
            self.scan_wanted = true;
            return;
        }
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
        let mut slice = Slice::new();
        let mut moved = 0;
        for id in ids {
            if !self.has_room() {
                self.scan_wanted = true;
                break;
            }
            moved += usize::from(self.activate(QueueName::Incoming, &id));
            if slice.full() {
                self.scan_wanted = true;
                break;
            }
        }
        self.sync_activated(QueueName::Incoming, moved);
    }

    /// Starts a pass over deferred/ (due files only unless `force`) and takes its
    /// first slice. A pass already under way goes on instead, unless this one is
    /// forced: each flush starts from the top, so that every file is looked at (also
    /// those deferred again since the pass began, which a directory read under way may
    /// not return).
    pub(super) fn scan_deferred(&mut self, force: bool) {
        self.next_deferred_scan = Instant::now() + self.settings.queue_run_delay;
        let under_way = !force && self.deferred_scan.is_some();
        if !under_way {
            let path = self.root.join(QueueName::Deferred.as_str());
            match std::fs::read_dir(&path) {
                Ok(dir) => self.deferred_scan = Some(DeferredScan { dir, force }),
                Err(e) => {
                    log::warn!("cannot scan deferred queue: {}: {e}", path.display());
                    return;
                }
            }
        }
        self.continue_deferred_scan();
    }

    /// True while a pass over deferred/ has files left and active/ has room for them:
    /// the loop then does not wait for events before its next turn.
    pub(super) fn scan_in_progress(&self) -> bool {
        (self.scan_wanted || self.deferred_scan.is_some()) && self.has_room()
    }

    /// Takes the next slice of the pass over deferred/, if one is under way.
    pub(super) fn continue_deferred_scan(&mut self) {
        let Some(mut scan) = self.deferred_scan.take() else {
            return;
        };
        let now = now_secs();
        let mut slice = Slice::new();
        let mut moved = 0;
        let mut finished = false;
        loop {
            if !self.has_room() {
                break;
            }
            let Some(entry) = scan.dir.next() else {
                finished = true;
                break;
            };
            let name = match entry {
                Ok(entry) => entry.file_name(),
                Err(e) => {
                    log::warn!("cannot scan deferred queue: {e}");
                    finished = true;
                    break;
                }
            };
            let Some(id) = name.to_str().filter(|n| is_valid_queue_id(n)) else {
                continue;
            };
            if self.unreadable.is_waiting(id, now) {
                continue;
            }
            if scan.force || self.retry_due(id, now) {
                moved += usize::from(self.activate(QueueName::Deferred, id));
            }
            if slice.full() {
                break;
            }
        }
        self.sync_activated(QueueName::Deferred, moved);
        if !finished {
            self.deferred_scan = Some(scan);
        }
    }

    /// A deferred file's retry time (its mtime) has come.
    fn retry_due(&self, id: &str, now: i64) -> bool {
        let path = queue_path(&self.root, QueueName::Deferred, id);
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map(|t| {
                t.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
            })
            .is_ok_and(|retry| is_due(retry, now))
    }
}
