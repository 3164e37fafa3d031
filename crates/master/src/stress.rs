//! Stress mode of an inet service, as Postfix's master runs it: when every process of
//! a public network service is busy and the service is at its process limit, master
//! restarts the service (the busy children keep their clients and exit after them,
//! uncounted) and runs new children with `-o stress=yes`, so that smtpd's
//! stress-dependent defaults (`smtpd_timeout = ${stress?{10}:{300}}s`,
//! `smtpd_per_record_deadline = ${stress?{yes}:{no}}`, ...) drop clients that hold a
//! process without making progress. Stress ends once the limit has not been hit for
//! [`STRESS_HOLD`].

use std::time::{Duration, Instant};

/// How long stress mode outlives the last time the service was at its limit.
pub const STRESS_HOLD: Duration = Duration::from_secs(60);

/// The stress state of one service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stress {
    /// While set and in the future, new children run with `-o stress=yes`.
    until: Option<Instant>,
}

/// What hitting the process limit means for the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtLimit {
    /// Not under stress yet: restart the service and enter stress mode.
    Enter,
    /// Already under stress (its children already adapt): only extend it.
    Extend,
}

impl Stress {
    /// The service is at its process limit with no idle process.
    pub fn at_limit(&mut self, now: Instant) -> AtLimit {
        let was = self.active(now);
        self.until = Some(now + STRESS_HOLD);
        if was {
            AtLimit::Extend
        } else {
            AtLimit::Enter
        }
    }

    /// Whether new children get `-o stress=yes`; clears an expired stress.
    pub fn active(&mut self, now: Instant) -> bool {
        match self.until {
            Some(until) if now < until => true,
            Some(_) => {
                self.until = None;
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_limit_enters_later_ones_extend_and_it_expires() {
        let t0 = Instant::now();
        let mut stress = Stress::default();
        assert!(!stress.active(t0));
        assert_eq!(stress.at_limit(t0), AtLimit::Enter);
        assert!(stress.active(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(50);
        assert_eq!(stress.at_limit(t1), AtLimit::Extend);
        // Extended: still on 59 s after the second hit, off after STRESS_HOLD.
        assert!(stress.active(t1 + Duration::from_secs(59)));
        assert!(!stress.active(t1 + STRESS_HOLD));
        // A later hit is a new stress episode, with a restart again.
        assert_eq!(stress.at_limit(t1 + STRESS_HOLD * 2), AtLimit::Enter);
    }
}
