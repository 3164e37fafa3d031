//! qmgr's view of main.cf: limits, scheduling policy per transport and retry policy,
//! read once at start (the resolver is built separately, from the same main.cf). A
//! parameter the config crate does not know (not in its table and not set) falls back
//! to Postfix's default here, so a gap in the table can never turn into a zero
//! concurrency (no delivery at all) or a zero lifetime (bounce on first deferral).
//!
//! Per-transport parameters are Postfix's: `TRANSPORT_destination_concurrency_limit`,
//! `TRANSPORT_destination_recipient_limit`, `TRANSPORT_initial_destination_concurrency`,
//! `TRANSPORT_destination_concurrency_{positive,negative}_feedback`,
//! `TRANSPORT_destination_concurrency_failed_cohort_limit`,
//! `TRANSPORT_destination_rate_delay`; unset ones take the `default_` value (for
//! `local`: local_destination_concurrency_limit 2, local_destination_recipient_limit 1).

use crate::backoff::RetryPolicy;
use crate::schedule::{Feedback, Limits, TransportPolicy};
use rostfix_config::MainCf;
use std::collections::HashMap;
use std::time::Duration;

/// Requests in flight over all destinations (Postfix's default_process_limit).
const TOTAL_CONCURRENCY: usize = 100;
/// Requests handed out per slot of a destination's concurrency window: the second
/// waits on the worker of a running delivery, so the agent finds it ready when it
/// answers (schedule.rs, worker.rs). Not a parameter of Postfix's.
const PIPELINE_DEPTH: usize = 2;

/// The per-transport parameter suffixes (after `TRANSPORT_`).
const SUFFIXES: &[&str] = &[
    "destination_concurrency_limit",
    "destination_recipient_limit",
    "initial_destination_concurrency",
    "destination_concurrency_positive_feedback",
    "destination_concurrency_negative_feedback",
    "destination_concurrency_failed_cohort_limit",
    "destination_rate_delay",
];

/// Where parameters come from: main.cf in production, a map in tests.
pub trait ParamSource {
    /// True if the parameter is known (has a default) or explicitly set.
    fn known(&self, name: &str) -> bool;
    fn string(&self, name: &str) -> String;
    fn int(&self, name: &str) -> i64;
    fn time(&self, name: &str) -> Duration;
    /// Names of explicitly set parameters.
    fn explicit_names(&self) -> Vec<String>;
}

impl ParamSource for MainCf {
    fn known(&self, name: &str) -> bool {
        rostfix_config::lookup_param(name).is_some() || self.raw(name).is_some()
    }
    fn string(&self, name: &str) -> String {
        self.get(name)
    }
    fn int(&self, name: &str) -> i64 {
        self.get_int(name)
    }
    fn time(&self, name: &str) -> Duration {
        self.get_time(name)
    }
    fn explicit_names(&self) -> Vec<String> {
        self.explicit().into_iter().map(|s| s.name).collect()
    }
}

/// Everything qmgr reads from the configuration besides the resolver.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    pub retry: RetryPolicy,
    pub queue_run_delay: Duration,
    /// qmgr_message_active_limit.
    pub active_limit: usize,
    /// qmgr_message_recipient_limit: recipients held in memory over active messages.
    pub recipient_limit: usize,
    pub ipc_timeout: Duration,
    /// delay_warning_time in seconds; 0 = no delay warnings.
    pub delay_warning: i64,
    /// How long an agent stream that offered to stay open (the smtp agent, holding
    /// its SMTP session) is kept for the next request to the same destination:
    /// smtp_connection_cache_time_limit.
    pub agent_idle_limit: Duration,
}

fn int_or(p: &dyn ParamSource, name: &str, fallback: i64) -> i64 {
    if p.known(name) {
        p.int(name)
    } else {
        fallback
    }
}

fn secs_or(p: &dyn ParamSource, name: &str, fallback: i64) -> i64 {
    if p.known(name) {
        i64::try_from(p.time(name).as_secs()).unwrap_or(i64::MAX)
    } else {
        fallback
    }
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
}

/// A time value with an optional unit (s, m, h, d, w); seconds when bare.
fn parse_secs(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                'w' => 604800,
                _ => return None,
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.parse::<u64>().ok().map(|n| n.saturating_mul(mult))
}

/// The policy of one transport: explicit `TRANSPORT_...` settings over `base`.
fn transport_policy(
    base: &TransportPolicy,
    explicit: &HashMap<String, String>,
    transport: &str,
    process_limit: usize,
) -> TransportPolicy {
    let get = |suffix: &str| explicit.get(&format!("{transport}_{suffix}"));
    let num = |suffix: &str, fallback: usize| {
        get(suffix)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map_or(fallback, to_usize)
    };
    let mut p = base.clone();
    p.concurrency_limit = num("destination_concurrency_limit", p.concurrency_limit).max(1);
    p.recipient_limit = num("destination_recipient_limit", p.recipient_limit);
    p.initial_concurrency = num("initial_destination_concurrency", p.initial_concurrency).max(1);
    p.failed_cohort_limit = num(
        "destination_concurrency_failed_cohort_limit",
        p.failed_cohort_limit,
    );
    if let Some(f) =
        get("destination_concurrency_positive_feedback").and_then(|v| Feedback::parse(v))
    {
        p.positive_feedback = f;
    }
    if let Some(f) =
        get("destination_concurrency_negative_feedback").and_then(|v| Feedback::parse(v))
    {
        p.negative_feedback = f;
    }
    if let Some(d) = get("destination_rate_delay").and_then(|v| parse_secs(v)) {
        p.rate_delay = Duration::from_secs(d);
    }
    p.process_limit = process_limit;
    p
}

impl Settings {
    /// `process_limits`: master.cf maxproc per transport service (0 = unlimited).
    pub fn load(p: &dyn ParamSource, process_limits: &HashMap<String, usize>) -> Settings {
        let feedback =
            |name: &str| Feedback::parse(&p.string(name)).unwrap_or(Feedback::PerConcurrency(1.0));
        let default = TransportPolicy {
            concurrency_limit: to_usize(int_or(p, "default_destination_concurrency_limit", 20))
                .max(1),
            recipient_limit: to_usize(int_or(p, "default_destination_recipient_limit", 50)),
            initial_concurrency: to_usize(int_or(p, "initial_destination_concurrency", 5)).max(1),
            positive_feedback: feedback("default_destination_concurrency_positive_feedback"),
            negative_feedback: feedback("default_destination_concurrency_negative_feedback"),
            failed_cohort_limit: to_usize(int_or(
                p,
                "default_destination_concurrency_failed_cohort_limit",
                1,
            )),
            rate_delay: Duration::from_secs(
                secs_or(p, "default_destination_rate_delay", 0).unsigned_abs(),
            ),
            process_limit: 0,
        };
        // Explicit `TRANSPORT_suffix` settings (any transport name master.cf may have).
        let mut explicit = HashMap::new();
        let mut transports: Vec<String> = vec!["local".into()];
        for name in p.explicit_names() {
            for suffix in SUFFIXES {
                if let Some(t) = name.strip_suffix(&format!("_{suffix}")) {
                    if t != "default" && !t.is_empty() {
                        explicit.insert(name.clone(), p.string(&name));
                        transports.push(t.to_string());
                    }
                }
            }
        }
        transports.extend(process_limits.keys().cloned());
        let local_base = TransportPolicy {
            concurrency_limit: to_usize(int_or(p, "local_destination_concurrency_limit", 2)).max(1),
            recipient_limit: to_usize(int_or(p, "local_destination_recipient_limit", 1)),
            ..default.clone()
        };
        let mut per_transport = HashMap::new();
        for t in transports {
            let base = if t == "local" { &local_base } else { &default };
            let maxproc = process_limits.get(&t).copied().unwrap_or(0);
            per_transport.insert(t.clone(), transport_policy(base, &explicit, &t, maxproc));
        }
        let retry = RetryPolicy {
            minimal_backoff: secs_or(p, "minimal_backoff_time", 300),
            maximal_backoff: secs_or(p, "maximal_backoff_time", 4000),
            maximal_queue_lifetime: secs_or(p, "maximal_queue_lifetime", 5 * 86400),
            bounce_queue_lifetime: secs_or(p, "bounce_queue_lifetime", 5 * 86400),
        };
        let limits = Limits {
            default,
            per_transport,
            total_concurrency: TOTAL_CONCURRENCY,
            dead_time: Duration::from_secs(retry.minimal_backoff.max(1).unsigned_abs()),
            pipeline_depth: PIPELINE_DEPTH,
        };
        let queue_run_delay = secs_or(p, "queue_run_delay", 300).max(1);
        let active_limit = match to_usize(int_or(p, "qmgr_message_active_limit", 20000)) {
            0 => 20000,
            n => n,
        };
        let recipient_limit = match to_usize(int_or(p, "qmgr_message_recipient_limit", 20000)) {
            0 => 20000,
            n => n,
        };
        let ipc_timeout = match secs_or(p, "ipc_timeout", 3600) {
            n if n <= 0 => 3600,
            n => n,
        };
        Settings {
            limits,
            retry,
            queue_run_delay: Duration::from_secs(queue_run_delay.unsigned_abs()),
            active_limit,
            recipient_limit,
            ipc_timeout: Duration::from_secs(ipc_timeout.unsigned_abs()),
            delay_warning: secs_or(p, "delay_warning_time", 0).max(0),
            agent_idle_limit: Duration::from_secs(
                secs_or(p, "smtp_connection_cache_time_limit", 2)
                    .max(0)
                    .unsigned_abs(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parameter map; values are already "expanded".
    struct Map(HashMap<&'static str, &'static str>);

    impl ParamSource for Map {
        fn known(&self, name: &str) -> bool {
            self.0.contains_key(name)
        }
        fn string(&self, name: &str) -> String {
            self.0.get(name).map(|s| s.to_string()).unwrap_or_default()
        }
        fn int(&self, name: &str) -> i64 {
            self.string(name).parse().unwrap_or(0)
        }
        fn time(&self, name: &str) -> Duration {
            Duration::from_secs(parse_secs(&self.string(name)).unwrap_or(0))
        }
        fn explicit_names(&self) -> Vec<String> {
            self.0.keys().map(|s| s.to_string()).collect()
        }
    }

    #[test]
    fn unknown_parameters_fall_back_to_postfix_defaults() {
        let s = Settings::load(&Map(HashMap::new()), &HashMap::new());
        assert_eq!(s.limits.concurrency("local"), 2);
        assert_eq!(s.limits.concurrency("smtp"), 20);
        assert_eq!(s.limits.recipients("local"), 1);
        assert_eq!(s.limits.recipients("smtp"), 50);
        assert_eq!(s.limits.policy("smtp").initial_concurrency, 5);
        assert_eq!(s.limits.policy("smtp").failed_cohort_limit, 1);
        assert_eq!(s.retry.maximal_queue_lifetime, 5 * 86400);
        assert_eq!(s.retry.minimal_backoff, 300);
        assert_eq!(s.active_limit, 20000);
        assert_eq!(s.recipient_limit, 20000);
        assert_eq!(s.delay_warning, 0);
    }

    #[test]
    fn explicit_values_and_per_transport_limits() {
        let s = Settings::load(
            &Map(HashMap::from([
                ("maximal_queue_lifetime", "1d"),
                ("bounce_queue_lifetime", "0"),
                ("relay_destination_concurrency_limit", "4"),
                ("relay_destination_recipient_limit", "10"),
                ("relay_destination_rate_delay", "2s"),
                ("slow_initial_destination_concurrency", "1"),
                ("slow_destination_concurrency_failed_cohort_limit", "3"),
                ("default_destination_concurrency_limit", "7"),
                ("delay_warning_time", "4h"),
            ])),
            &HashMap::from([("smtp".to_string(), 30)]),
        );
        assert_eq!(s.retry.maximal_queue_lifetime, 86400);
        assert_eq!(s.retry.bounce_queue_lifetime, 0);
        assert_eq!(s.limits.policy("relay").concurrency_limit, 4);
        assert_eq!(
            s.limits.concurrency("relay"),
            1,
            "a rate delay means one at a time"
        );
        assert_eq!(s.limits.recipients("relay"), 10);
        assert_eq!(s.limits.policy("relay").rate_delay, Duration::from_secs(2));
        assert_eq!(s.limits.concurrency("smtp"), 7);
        assert_eq!(s.limits.policy("smtp").process_limit, 30);
        assert_eq!(s.limits.policy("slow").initial_concurrency, 1);
        assert_eq!(s.limits.policy("slow").failed_cohort_limit, 3);
        assert_eq!(s.limits.policy("slow").concurrency_limit, 7);
        assert_eq!(s.delay_warning, 4 * 3600);
    }
}
