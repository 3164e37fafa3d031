//! Recovery: files in active/ that no running qmgr owns go back to incoming/ (at start
//! and every ORPHAN_SCAN), finished messages whose move to deferred/ failed are moved
//! again every loop turn, and files that cannot be opened are set aside in deferred/
//! on a backoff of their own (manager/unreadable.rs).

use super::{now_secs, system_time, Manager, ORPHAN_SCAN};
use rostfix_queue::{
    list_queue, move_file, queue_path, set_retry_time, LockAttempt, QueueError, QueueLock,
    QueueName,
};
use std::time::Instant;

/// What one look for orphans in active/ found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Orphans {
    /// Moved back to incoming/.
    pub(super) requeued: usize,
    /// Locked by another process (a qmgr finishing its work).
    pub(super) busy: usize,
}

impl Manager {
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
    pub(super) fn recover_orphans(&mut self) -> Orphans {
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

    /// Moves the stranded files to deferred/ again (the first failure was logged).
    pub(super) fn retry_stranded(&mut self) {
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
    pub(super) fn set_aside(&mut self, id: &str, e: &QueueError) {
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
}
