//! Large messages in slices: qmgr holds at most [`Manager::slice_size`] of a
//! message's pending recipients read from its queue file at a time (Postfix's qmgr
//! likewise reads a message's recipients in bounded portions, within
//! qmgr_message_recipient_limit). Without it, one list message of 100 000 recipients
//! held all of them, about 90 MB, for as long as its delivery took.
//!
//! The first slice is read at activation (manager/activate.rs). The next one is read
//! when half the requests of the latest slice have finished, so that slow
//! destinations of one slice do not hold up the next, and in any case before the
//! message could complete: a message is never removed, deferred or expired while
//! recipients are left unread (message.rs `completion`). Recipients already done are
//! dropped from memory when the next slice comes in; deferred ones stay, for the
//! expiry notice and the delay warning at the end.
//!
//! Nothing here writes the queue file: a crash between slices leaves the done marks
//! of the recipients delivered so far, and the next activation reads the pending
//! rest from the start.

use super::Manager;
use rostfix_queue::{QueueFile, QueueName};

/// The smallest slice, whatever qmgr_message_recipient_limit says (Postfix's
/// qmgr_message_recipient_minimum is 10; a few more keep requests full for a
/// transport's recipient limit of 50).
const MIN_SLICE: usize = 100;

impl Manager {
    /// Recipients read into memory per slice: qmgr_message_recipient_limit (20 000
    /// by default), the bound Postfix puts on the recipients held in memory.
    ///
    /// Measured on fanout-100k-rcpts (100 000 recipients over 1 000 domains, file
    /// order interleaving the domains): the slice also bounds how many recipients of
    /// one domain can share a transaction, so smaller slices mean more of them. Half
    /// the limit took 85 s, the whole limit 61.5 s, no slicing 33.5 s (Postfix: 58 s).
    /// Each request costs the agent a pass over the envelope, which is what makes
    /// more requests expensive (docs/performance.md).
    pub(super) fn slice_size(&self) -> usize {
        self.settings.recipient_limit.max(MIN_SLICE)
    }

    /// Reads the next slice ahead of the message's completion once half of the
    /// latest slice's requests are done (none when qmgr is stopping: what is unread
    /// stays in the file for the next qmgr).
    pub(super) fn read_ahead(&mut self, id: &str) {
        let due = self.messages.get(id).is_some_and(|m| {
            m.unread.is_some() && m.outstanding > 0 && m.outstanding * 2 <= m.slice_requests
        });
        if due && !self.stopping && self.reading_slices.is_none() {
            self.reading_slices = Some(id.to_string());
            self.read_next_slice(id);
            self.reading_slices = None;
        }
    }

    /// Drops the message's done recipients from memory, then reads and queues its next
    /// slice. False when the file could not be read: the message then completes as
    /// deferred (its unread recipients count as pending), and is read again at its
    /// next activation.
    pub(super) fn read_next_slice(&mut self, id: &str) -> bool {
        let Some(mut msg) = self.messages.remove(id) else {
            return false;
        };
        let Some(from) = msg.unread else {
            self.messages.insert(id.to_string(), msg);
            return true;
        };
        let held = msg.recipients.len();
        msg.recipients.retain(|_, r| !r.done);
        self.rcpt_count = self.rcpt_count.saturating_sub(held - msg.recipients.len());
        match QueueFile::open_slice(&self.root, QueueName::Active, id, from, self.slice_size()) {
            Ok((slice, next)) => {
                log::debug!(
                    "{id}: next {} recipient(s) read from offset {from}",
                    slice.envelope.recipients.len()
                );
                msg.unread = next;
                self.queue_slice(msg, slice.envelope.recipients);
                true
            }
            Err(e) => {
                log::warn!("{id}: cannot read the next recipients: {e}");
                self.messages.insert(id.to_string(), msg);
                false
            }
        }
    }

    /// Before a message with nothing outstanding completes: its next slices, until
    /// one queues work. True when the message is done with for now (work was queued,
    /// it completed within, or qmgr is stopping and it stays in active/ for the next
    /// qmgr); false when completion should go ahead.
    ///
    /// Not recursive: a slice that only goes to qmgr's own transports (discard, a
    /// suppressed list) completes inside [`Self::queue_slice`], and its completion
    /// comes back here; that inner call leaves the message to this loop (and says
    /// "done with for now"), so a message of a million discarded recipients takes
    /// no more stack than one of a hundred.
    pub(super) fn continue_slices(&mut self, id: &str) -> bool {
        if self.reading_slices.as_deref() == Some(id) {
            return true;
        }
        let outer = self.reading_slices.replace(id.to_string());
        let done = self.slices_until_work(id);
        self.reading_slices = outer;
        done
    }

    fn slices_until_work(&mut self, id: &str) -> bool {
        loop {
            let Some(msg) = self.messages.get(id) else {
                return true;
            };
            if msg.outstanding > 0 {
                return true;
            }
            if msg.unread.is_none() {
                return false;
            }
            if self.stopping {
                return true;
            }
            if !self.read_next_slice(id) {
                return false;
            }
        }
    }
}
