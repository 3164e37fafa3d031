//! Queue files qmgr cannot open (a wrong owner or mode after a restore, say): they are
//! set aside in deferred/ and retried on a backoff of their own, kept in memory because
//! their retry time cannot be stored in the file (qmgr may not change the mtime of a
//! file it does not own). Without this such a file looked due on every deferred scan
//! and was logged each time. The warning is logged once per file; `rostfix check`
//! reports the file and `rostsuper -s` repairs it, after which the next try succeeds.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Seconds since the epoch before which the file is not tried again.
    next_try: i64,
    /// The current wait; doubles per failure between the backoff bounds.
    wait: i64,
}

/// The unreadable files seen, by queue id.
#[derive(Debug, Default)]
pub struct Unreadable {
    files: HashMap<String, Entry>,
}

impl Unreadable {
    /// Records a failure to open `id` at `now`; true if it is the first one (log it).
    pub fn failed(&mut self, id: &str, now: i64, min: i64, max: i64) -> bool {
        let max = max.max(1);
        let min = min.clamp(1, max);
        match self.files.get_mut(id) {
            Some(e) => {
                e.wait = e.wait.saturating_mul(2).clamp(min, max);
                e.next_try = now.saturating_add(e.wait);
                false
            }
            None => {
                self.files.insert(
                    id.to_string(),
                    Entry {
                        next_try: now.saturating_add(min),
                        wait: min,
                    },
                );
                true
            }
        }
    }

    /// True while `id` must not be tried.
    pub fn is_waiting(&self, id: &str, now: i64) -> bool {
        self.files.get(id).is_some_and(|e| now < e.next_try)
    }

    /// `id` could be opened (or is gone): forget it.
    pub fn cleared(&mut self, id: &str) {
        self.files.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_once_and_retried_with_a_growing_wait() {
        let mut u = Unreadable::default();
        assert!(u.failed("A", 1000, 300, 4000));
        assert!(u.is_waiting("A", 1299));
        assert!(!u.is_waiting("A", 1300));
        assert!(!u.failed("A", 1300, 300, 4000));
        assert!(u.is_waiting("A", 1899));
        assert!(!u.is_waiting("A", 1900));
        for _ in 0..10 {
            assert!(!u.failed("A", 2000, 300, 4000));
        }
        assert!(u.is_waiting("A", 5999), "capped at the maximal backoff");
        assert!(!u.is_waiting("A", 6000));
        assert!(!u.is_waiting("B", 0), "others are not held back");
        u.cleared("A");
        assert!(!u.is_waiting("A", 2001));
        assert!(
            u.failed("A", 2001, 300, 4000),
            "a new problem is logged again"
        );
    }
}
