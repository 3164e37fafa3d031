//! One shaping bucket's live state: deliveries in flight, the token bucket of its
//! hourly rate, and the adaptive back-off. Pure: every method takes the time, so the
//! tests drive it with an invented clock.
//!
//! Back-off: a throttling reply cuts the current rate and concurrency by the rule's
//! `backoff_factor` (never below the floors), at most once per `recover_interval`
//! (one cut per burst of replies from the same slowdown, not one per reply); every
//! throttling reply restarts the `cooloff`. Once a whole cool-off passed without
//! one, the bucket recovers one step per `recover_interval`: `recover_step` percent of
//! the configured rate and one more connection, up to the configured limits. Each
//! change is returned as a log text, which the scheduler logs.
//!
//! Shared rate ([`Allowance`], issue 20): with a Redis server for shaping, a bucket with
//! a rate also needs tokens that Redis granted this machine (shared.rs), so the rate is
//! the provider's for all machines together; while Redis is unreachable the local
//! token bucket alone decides, as without Redis. A cut the bucket makes is published;
//! a lower rate published by another machine is adopted as a back-off here.

use super::rules::Rule;
use super::shared::{Ask, Grant};
use std::time::{Duration, Instant};

/// Shortest time between two asks that Redis answered with no token: bounds the
/// round trips one bucket makes while the shared rate is used up.
const MIN_ASK_GAP: Duration = Duration::from_millis(50);

/// A token bucket: `per_hour` tokens an hour, at most `capacity` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_hour: u32,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// Starts full. `per_hour` 0 = unlimited.
    pub fn new(per_hour: u32, capacity: u32, now: Instant) -> TokenBucket {
        let capacity = f64::from(capacity.max(1));
        TokenBucket {
            per_hour,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn per_sec(&self) -> f64 {
        f64::from(self.per_hour) / 3600.0
    }

    fn level(&self, now: Instant) -> f64 {
        let gained = now.saturating_duration_since(self.last).as_secs_f64() * self.per_sec();
        (self.tokens + gained).min(self.capacity)
    }

    /// Whether a message may go now.
    pub fn ready(&self, now: Instant) -> bool {
        self.per_hour == 0 || self.level(now) >= 1.0
    }

    /// Spends a token (the caller checked [`Self::ready`]).
    pub fn take(&mut self, now: Instant) {
        if self.per_hour == 0 {
            return;
        }
        self.tokens = (self.level(now) - 1.0).max(0.0);
        self.last = now;
    }

    /// How long until the next token (zero when one is there).
    pub fn wait(&self, now: Instant) -> Duration {
        let missing = 1.0 - self.level(now);
        if self.per_hour == 0 || missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.per_sec())
        }
    }

    /// A new rate from now on; tokens saved so far are kept.
    pub fn set_rate(&mut self, per_hour: u32, capacity: u32, now: Instant) {
        self.tokens = self.level(now);
        self.last = now;
        self.per_hour = per_hour;
        self.capacity = f64::from(capacity.max(1));
        self.tokens = self.tokens.min(self.capacity);
    }
}

/// The part of a bucket's rate shared through Redis: the tokens granted to this
/// machine and the state of the asking.
#[derive(Debug, Clone, Default)]
pub struct Allowance {
    /// Tokens Redis granted this machine, not spent yet.
    pub granted: u32,
    /// An ask is out; its answer comes as an event.
    asking: bool,
    /// No ask before this: Redis said when the next token is due, or is unreachable.
    not_before: Option<Instant>,
    /// Redis is unreachable: the local token bucket alone decides until it answers.
    local: bool,
    /// The rate was cut here; the next ask tells the other machines.
    publish_cut: bool,
}

/// Tokens asked for at a time: about one second of the rate, at most the burst. A
/// machine holds at most this many tokens others cannot use, which bounds how far the
/// machines together can lag behind the shared rate.
fn batch(rule: &Rule) -> u32 {
    rule.rate.div_ceil(3600).clamp(1, rule.burst.max(1))
}

/// A bucket's state.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub rule: Rule,
    pub in_flight: usize,
    /// Current limits: the rule's, or less while backed off. 0 = unlimited.
    pub rate: u32,
    pub concurrency: usize,
    tokens: TokenBucket,
    last_cut: Option<Instant>,
    /// Recovery starts (or takes its next step) at this time; None = at full speed.
    next_step: Option<Instant>,
    /// Some when the rate is shared with other machines (a rate and a Redis server).
    pub shared: Option<Allowance>,
}

impl Bucket {
    pub fn new(rule: Rule, now: Instant) -> Bucket {
        Bucket {
            rate: rule.rate,
            concurrency: rule.concurrency,
            tokens: TokenBucket::new(rule.rate, rule.burst, now),
            rule,
            in_flight: 0,
            last_cut: None,
            next_step: None,
            shared: None,
        }
    }

    /// Shares this bucket's rate with other machines from now on (a bucket without a
    /// rate has nothing to share).
    pub fn share(&mut self) {
        if self.rule.rate > 0 && self.shared.is_none() {
            self.shared = Some(Allowance::default());
        }
    }

    /// A reloaded rule: the limits are the new ones, an ongoing back-off restarts
    /// from them.
    pub fn update(&mut self, rule: Rule, now: Instant) {
        if rule != self.rule {
            self.rate = rule.rate;
            self.concurrency = rule.concurrency;
            self.tokens.set_rate(rule.rate, rule.burst, now);
            self.last_cut = None;
            self.next_step = None;
            self.rule = rule;
        }
    }

    /// Whether one more delivery may start now.
    pub fn ready(&self, now: Instant) -> bool {
        (self.concurrency == 0 || self.in_flight < self.concurrency)
            && self.tokens.ready(now)
            && self
                .shared
                .as_ref()
                .is_none_or(|a| a.local || a.granted > 0)
    }

    /// A delivery starts.
    pub fn start(&mut self, now: Instant) {
        self.in_flight += 1;
        self.tokens.take(now);
        if let Some(a) = self.shared.as_mut().filter(|a| !a.local) {
            a.granted = a.granted.saturating_sub(1);
        }
    }

    /// What to ask Redis now, if anything: tokens when few are left and `has_work`,
    /// or a cut to publish. Marks the ask as out.
    pub fn ask(&mut self, has_work: bool, now: Instant) -> Option<Ask> {
        let want = batch(&self.rule);
        let (rate, burst, cooloff) = (self.rule.rate, self.rule.burst, self.rule.cooloff);
        let current = self.rate;
        let a = self.shared.as_mut()?;
        if a.asking || a.not_before.is_some_and(|t| now < t) {
            return None;
        }
        let need = has_work && (a.local || a.granted <= want / 2);
        if !need && !a.publish_cut {
            return None;
        }
        a.asking = true;
        let cut = std::mem::take(&mut a.publish_cut).then_some(current);
        Some(Ask {
            want: if need { want } else { 0 },
            rate,
            burst,
            cut,
            cooloff,
        })
    }

    /// Redis's answer to [`Self::ask`]. Returns the log text of a change: Redis lost
    /// or back, or another machine's cut adopted.
    pub fn answer(&mut self, grant: &Grant, now: Instant) -> Option<String> {
        let rate = self.rate;
        let a = self.shared.as_mut()?;
        a.asking = false;
        match grant {
            Grant::Unreachable { retry } => {
                a.not_before = Some(now + *retry);
                a.local = true;
                None
            }
            Grant::Given {
                tokens,
                wait,
                shared_rate,
            } => {
                a.local = false;
                a.granted = a.granted.saturating_add(*tokens);
                a.not_before = (*tokens == 0).then(|| now + (*wait).max(MIN_ASK_GAP));
                let adopt = *shared_rate > 0 && *shared_rate < rate;
                if !adopt {
                    return None;
                }
                self.rate = *shared_rate;
                self.tokens.set_rate(self.rate, self.rule.burst, now);
                self.next_step = Some(now + self.rule.cooloff);
                Some(format!(
                    "rate {rate}/h -> {}/h after a back-off on another machine",
                    self.rate
                ))
            }
        }
    }

    pub fn finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// When the bucket may next change by itself or a token arrives (or may be asked
    /// for): the scheduler sleeps no longer than this.
    pub fn next_event(&self, now: Instant) -> Option<Instant> {
        let token = (!self.tokens.ready(now)).then(|| now + self.tokens.wait(now));
        let ask = self
            .shared
            .as_ref()
            .filter(|a| !a.asking)
            .and_then(|a| a.not_before);
        [token, self.next_step, ask].into_iter().flatten().min()
    }

    fn describe(&self, rate: u32, conc: usize) -> String {
        let mut parts = Vec::new();
        if rate != self.rate {
            parts.push(format!("rate {rate}/h -> {}/h", self.rate));
        }
        if conc != self.concurrency {
            parts.push(format!("concurrency {conc} -> {}", self.concurrency));
        }
        parts.join(", ")
    }

    /// A throttling reply (`why`: its text). Returns the log text when the limits
    /// were cut.
    pub fn throttled(&mut self, why: &str, now: Instant) -> Option<String> {
        self.next_step = Some(now + self.rule.cooloff);
        let recent = self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < self.rule.recover_interval);
        if recent {
            return None;
        }
        let (rate, conc) = (self.rate, self.concurrency);
        let f = self.rule.backoff_factor;
        if self.rate > 0 {
            let cut = (f64::from(self.rate) * f) as u32;
            self.rate = cut.max(self.rule.rate_floor.min(self.rule.rate)).max(1);
        }
        if self.concurrency > 0 {
            let cut = (self.concurrency as f64 * f).ceil() as usize;
            self.concurrency = cut.max(self.rule.concurrency_floor.min(self.rule.concurrency));
        }
        self.last_cut = Some(now);
        if (rate, conc) == (self.rate, self.concurrency) {
            return None;
        }
        if let Some(a) = self.shared.as_mut().filter(|_| self.rate < rate) {
            a.publish_cut = true;
        }
        self.tokens.set_rate(self.rate, self.rule.burst, now);
        Some(format!("{} after {why}", self.describe(rate, conc)))
    }

    /// Takes a recovery step when one is due. Returns the log text of the change.
    pub fn tick(&mut self, now: Instant) -> Option<String> {
        let due = self.next_step.is_some_and(|t| now >= t);
        if !due {
            return None;
        }
        let (rate, conc) = (self.rate, self.concurrency);
        if self.rule.rate > 0 {
            let step = (u64::from(self.rule.rate) * u64::from(self.rule.recover_step) / 100).max(1);
            self.rate = u32::try_from(u64::from(self.rate) + step)
                .unwrap_or(u32::MAX)
                .min(self.rule.rate);
        }
        if self.rule.concurrency > 0 {
            self.concurrency = (self.concurrency + 1).min(self.rule.concurrency);
        }
        let full = self.rate == self.rule.rate && self.concurrency == self.rule.concurrency;
        self.next_step = (!full).then(|| now + self.rule.recover_interval);
        self.tokens.set_rate(self.rate, self.rule.burst, now);
        let change = self.describe(rate, conc);
        (!change.is_empty()).then(|| {
            if full {
                format!("{change}, recovered")
            } else {
                format!("{change}, recovering")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shaping::rules::parse;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn rule() -> Rule {
        parse(
            "[p]\nmx = *.p.test\nconcurrency = 8\nrate = 3600\nrate_floor = 600\n\
             cooloff = 60s\nrecover_interval = 10s\nrecover_step = 25\n",
        )
        .unwrap()
        .rules
        .remove(0)
    }

    #[test]
    fn token_bucket_spaces_messages_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3600, 2, t0);
        // A burst of two, then one a second.
        assert!(b.ready(t0));
        b.take(t0);
        assert!(b.ready(t0));
        b.take(t0);
        assert!(!b.ready(t0));
        assert_eq!(b.wait(t0), secs(1));
        assert!(!b.ready(t0 + Duration::from_millis(999)));
        assert!(b.ready(t0 + secs(1)));
        // Idle for an hour: still only the burst saved.
        let later = t0 + secs(3600);
        b.take(later);
        b.take(later);
        assert!(!b.ready(later));
        // Unlimited never waits.
        let u = TokenBucket::new(0, 1, t0);
        assert!(u.ready(t0));
        assert_eq!(u.wait(t0), Duration::ZERO);
    }

    #[test]
    fn concurrency_counts_over_the_bucket() {
        let t0 = Instant::now();
        let mut r = rule();
        r.rate = 0;
        let mut b = Bucket::new(r, t0);
        for _ in 0..8 {
            assert!(b.ready(t0));
            b.start(t0);
        }
        assert!(!b.ready(t0));
        b.finish();
        assert!(b.ready(t0));
    }

    #[test]
    fn throttle_cuts_once_per_interval_then_recovers_step_by_step() {
        let t0 = Instant::now();
        let mut b = Bucket::new(rule(), t0);
        let log = b.throttled("421 4.7.0 from mx1.p.test", t0).unwrap();
        assert_eq!(
            log,
            "rate 3600/h -> 1800/h, concurrency 8 -> 4 after 421 4.7.0 from mx1.p.test"
        );
        // More throttles within the interval: no further cut, but the cool-off restarts.
        assert_eq!(b.throttled("x", t0 + secs(5)), None);
        assert_eq!((b.rate, b.concurrency), (1800, 4));
        // After the interval: cut again, down to the floors.
        assert!(b.throttled("x", t0 + secs(10)).is_some());
        assert_eq!((b.rate, b.concurrency), (900, 2));
        assert!(b.throttled("x", t0 + secs(20)).is_some());
        assert_eq!((b.rate, b.concurrency), (600, 1));
        assert_eq!(b.throttled("x", t0 + secs(30)), None, "at the floors");
        // Cool-off runs from the last throttle (t0+30): nothing before t0+90.
        assert_eq!(b.tick(t0 + secs(89)), None);
        let step = b.tick(t0 + secs(90)).unwrap();
        assert_eq!(step, "rate 600/h -> 1500/h, concurrency 1 -> 2, recovering");
        assert_eq!(b.tick(t0 + secs(95)), None, "one step per interval");
        assert!(b.tick(t0 + secs(100)).is_some());
        assert_eq!((b.rate, b.concurrency), (2400, 3));
        assert!(b.tick(t0 + secs(110)).is_some());
        assert_eq!((b.rate, b.concurrency), (3300, 4));
        // A throttle while recovering cuts from where it is.
        assert!(b.throttled("x", t0 + secs(111)).is_some());
        assert_eq!((b.rate, b.concurrency), (1650, 2));
        let mut t = t0 + secs(171);
        let mut last = String::new();
        while let Some(s) = b.tick(t) {
            last = s;
            t += secs(10);
        }
        assert!(last.ends_with(", recovered"), "{last}");
        assert_eq!((b.rate, b.concurrency), (3600, 8));
        assert_eq!(b.next_event(t), None);
    }

    #[test]
    fn a_shared_bucket_spends_granted_tokens_and_falls_back_to_local() {
        let t0 = Instant::now();
        let mut r = rule();
        r.rate = 36_000; // ten a second: batches of ten
        r.burst = 20;
        let mut b = Bucket::new(r, t0);
        b.share();
        assert!(!b.ready(t0), "no token granted yet");
        assert_eq!(b.ask(false, t0), None, "nothing queued, nothing asked");
        let ask = b.ask(true, t0).unwrap();
        assert_eq!(
            (ask.want, ask.rate, ask.burst, ask.cut),
            (10, 36_000, 20, None)
        );
        assert_eq!(b.ask(true, t0), None, "one ask out at a time");
        let given = |tokens, wait_ms, shared_rate| Grant::Given {
            tokens,
            wait: Duration::from_millis(wait_ms),
            shared_rate,
        };
        assert_eq!(b.answer(&given(2, 100, 0), t0), None);
        for _ in 0..2 {
            assert!(b.ready(t0));
            b.start(t0);
        }
        assert!(!b.ready(t0), "both granted tokens spent");
        // Redis had no more: the next ask waits for the token it said is due.
        b.ask(true, t0).unwrap();
        b.answer(&given(0, 100, 0), t0);
        assert_eq!(b.ask(true, t0), None);
        assert_eq!(b.next_event(t0), Some(t0 + Duration::from_millis(100)));
        assert!(b.ask(true, t0 + Duration::from_millis(100)).is_some());
        // Redis unreachable: the local token bucket alone decides until it answers.
        let t1 = t0 + secs(1);
        b.answer(&Grant::Unreachable { retry: secs(5) }, t1);
        assert!(b.ready(t1));
        b.start(t1);
        assert_eq!(b.ask(true, t1 + secs(1)), None);
        assert!(b.ask(true, t1 + secs(5)).is_some());
        b.answer(&given(1, 0, 0), t1 + secs(5));
        b.start(t1 + secs(5));
        assert!(
            !b.ready(t1 + secs(5)),
            "shared again: the one token is spent"
        );
    }

    #[test]
    fn cuts_are_published_and_other_machines_cuts_adopted() {
        let t0 = Instant::now();
        let mut b = Bucket::new(rule(), t0);
        b.share();
        b.throttled("421 4.7.0 slow down", t0);
        let ask = b.ask(false, t0).unwrap();
        assert_eq!(
            (ask.want, ask.cut),
            (0, Some(1800)),
            "a cut is told even when idle"
        );
        b.answer(
            &Grant::Given {
                tokens: 0,
                wait: Duration::ZERO,
                shared_rate: 1800,
            },
            t0,
        );
        assert_eq!(b.ask(false, t0 + secs(1)), None, "told once");
        // Another machine cut further: adopted, and recovery waits a cool-off.
        let t1 = t0 + secs(1);
        b.ask(true, t1).unwrap();
        let change = b.answer(
            &Grant::Given {
                tokens: 1,
                wait: Duration::ZERO,
                shared_rate: 900,
            },
            t1,
        );
        assert_eq!(
            change.as_deref(),
            Some("rate 1800/h -> 900/h after a back-off on another machine")
        );
        assert_eq!(b.tick(t1 + secs(59)), None);
        assert!(b.tick(t1 + secs(60)).is_some());
        // An unshared bucket never asks.
        let mut alone = Bucket::new(rule(), t0);
        alone.throttled("421", t0);
        assert_eq!(alone.ask(true, t0), None);
    }

    #[test]
    fn reloaded_rule_resets_the_limits() {
        let t0 = Instant::now();
        let mut b = Bucket::new(rule(), t0);
        b.throttled("x", t0);
        let mut r = rule();
        r.concurrency = 3;
        b.update(r, t0);
        assert_eq!((b.rate, b.concurrency), (3600, 3));
        assert_eq!(b.tick(t0 + secs(3600)), None);
    }
}
