//! Retry timing, as Postfix's qmgr does it: a deferred message waits for its time in the
//! queue, clamped between minimal_backoff_time and maximal_backoff_time (so the wait
//! roughly doubles per attempt), and expires after maximal_queue_lifetime
//! (bounce_queue_lifetime for the null sender). All times are whole seconds since the
//! epoch; pure functions so the rules are unit-tested.

/// Lifetimes and backoff bounds, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub minimal_backoff: i64,
    pub maximal_backoff: i64,
    pub maximal_queue_lifetime: i64,
    pub bounce_queue_lifetime: i64,
}

impl RetryPolicy {
    /// How long a message may stay queued: bounces (sender `<>`) have their own limit.
    pub fn lifetime(&self, sender: &str) -> i64 {
        if sender.is_empty() {
            self.bounce_queue_lifetime
        } else {
            self.maximal_queue_lifetime
        }
    }

    /// The wait before the next attempt for a message that arrived at `arrival`.
    pub fn backoff(&self, now: i64, arrival: i64) -> i64 {
        backoff(
            now.saturating_sub(arrival),
            self.minimal_backoff,
            self.maximal_backoff,
        )
    }

    /// The retry time (the deferred file's mtime).
    pub fn next_retry(&self, now: i64, arrival: i64) -> i64 {
        now.saturating_add(self.backoff(now, arrival))
    }

    /// True once the message has been queued longer than its lifetime. A lifetime of 0
    /// means "try once", as in Postfix.
    pub fn is_expired(&self, now: i64, arrival: i64, sender: &str) -> bool {
        let lifetime = self.lifetime(sender);
        lifetime <= 0 || now.saturating_sub(arrival) > lifetime
    }
}

/// Postfix's rule: the time in queue, clamped to `[min, max]`. A misconfiguration with
/// min > max yields max (the administrator's upper bound wins); never below 1 second
/// so a deferred message cannot be retried in a tight loop.
pub fn backoff(time_in_queue: i64, min: i64, max: i64) -> i64 {
    let max = max.max(1);
    let min = min.clamp(1, max);
    time_in_queue.clamp(min, max)
}

/// A deferred message is due when its retry time (mtime) is not in the future.
pub fn is_due(retry_time: i64, now: i64) -> bool {
    retry_time <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        minimal_backoff: 300,
        maximal_backoff: 4000,
        maximal_queue_lifetime: 5 * 86400,
        bounce_queue_lifetime: 5 * 86400,
    };

    #[test]
    fn backoff_is_time_in_queue_clamped() {
        assert_eq!(backoff(0, 300, 4000), 300);
        assert_eq!(backoff(299, 300, 4000), 300);
        assert_eq!(backoff(1000, 300, 4000), 1000);
        assert_eq!(backoff(4000, 300, 4000), 4000);
        assert_eq!(backoff(86400, 300, 4000), 4000);
    }

    #[test]
    fn backoff_survives_bad_settings_and_clock_steps() {
        // min > max: max wins.
        assert_eq!(backoff(10, 5000, 4000), 4000);
        // Zero settings never give a zero wait.
        assert_eq!(backoff(0, 0, 0), 1);
        // Arrival in the future (clock stepped back): the minimum.
        assert_eq!(POLICY.backoff(100, 1000), 300);
    }

    #[test]
    fn next_retry_doubles_roughly() {
        let arrival = 1_000_000;
        let first = POLICY.next_retry(arrival + 5, arrival);
        assert_eq!(first, arrival + 5 + 300);
        let second = POLICY.next_retry(first, arrival);
        assert_eq!(second, first + 305);
        let late = POLICY.next_retry(arrival + 86400, arrival);
        assert_eq!(late, arrival + 86400 + 4000);
    }

    #[test]
    fn expiry_uses_the_sender_dependent_lifetime() {
        let p = RetryPolicy {
            bounce_queue_lifetime: 3600,
            ..POLICY
        };
        let arrival = 1_000;
        assert!(!p.is_expired(arrival + 3600, arrival, ""));
        assert!(p.is_expired(arrival + 3601, arrival, ""));
        assert!(!p.is_expired(arrival + 3601, arrival, "alice@example.org"));
        assert!(p.is_expired(arrival + 5 * 86400 + 1, arrival, "alice@example.org"));
    }

    #[test]
    fn zero_lifetime_means_try_once() {
        let p = RetryPolicy {
            maximal_queue_lifetime: 0,
            ..POLICY
        };
        assert!(p.is_expired(1_000, 1_000, "a@b"));
    }

    #[test]
    fn due_when_not_in_future() {
        assert!(is_due(100, 100));
        assert!(is_due(99, 100));
        assert!(!is_due(101, 100));
    }
}
