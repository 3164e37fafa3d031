//! qmgr's view of main.cf: limits, scheduling policy per transport and retry policy,
//! read once at start (the resolver is built separately, from the same main.cf), through
//! the config crate's typed getters: every default lives in its parameter table.
//!
//! Per-transport parameters are Postfix's: `TRANSPORT_destination_concurrency_limit`,
//! `TRANSPORT_destination_recipient_limit`, `TRANSPORT_initial_destination_concurrency`,
//! `TRANSPORT_destination_concurrency_{positive,negative}_feedback`,
//! `TRANSPORT_destination_concurrency_failed_cohort_limit`,
//! `TRANSPORT_destination_rate_delay`; unset ones take the `default_` value (for
//! `local`: local_destination_concurrency_limit 2, local_destination_recipient_limit 1).
//! Every transport that master.cf runs with the `local` command gets the group commit
//! of rostfix_local_batch_limit and rostfix_local_batch_size_limit (docs/performance.md).

use crate::backoff::RetryPolicy;
use crate::schedule::{Feedback, Limits, TransportPolicy};
use rostfix_config::{parse_time, MainCf};
use std::collections::HashMap;
use std::time::Duration;

/// Requests in flight over all destinations (Postfix's default_process_limit).
const TOTAL_CONCURRENCY: usize = 100;
/// Requests handed out per slot of a destination's concurrency window: the second
/// waits on the worker of a running delivery, so the agent finds it ready when it
/// answers (schedule.rs, worker.rs). Not a parameter of Postfix's.
const PIPELINE_DEPTH: usize = 2;

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
    /// default_filter_nexthop and myhostname: the next hop of a content filter that
    /// names none (see `ContentFilter::nexthop_for`).
    pub default_filter_nexthop: String,
    pub myhostname: String,
    /// verp_delimiter_filter: what a queued VERP request may use.
    pub verp_filter: String,
}

fn int(main: &MainCf, name: &str) -> i64 {
    main.get_int(name)
}

fn secs(main: &MainCf, name: &str) -> i64 {
    i64::try_from(main.get_time(name).as_secs()).unwrap_or(i64::MAX)
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
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
    if let Some(d) = get("destination_rate_delay").and_then(|v| parse_time(v, 's')) {
        p.rate_delay = Duration::from_secs(d);
    }
    p.process_limit = process_limit;
    p
}

impl Settings {
    /// `process_limits`: master.cf maxproc per transport service (0 = unlimited);
    /// `local_services`: the transport services master.cf runs the local agent for.
    pub fn load(
        p: &MainCf,
        process_limits: &HashMap<String, usize>,
        local_services: &[String],
    ) -> Settings {
        let feedback =
            |name: &str| Feedback::parse(&p.get(name)).unwrap_or(Feedback::PerConcurrency(1.0));
        let default = TransportPolicy {
            concurrency_limit: to_usize(int(p, "default_destination_concurrency_limit")).max(1),
            recipient_limit: to_usize(int(p, "default_destination_recipient_limit")),
            initial_concurrency: to_usize(int(p, "initial_destination_concurrency")).max(1),
            positive_feedback: feedback("default_destination_concurrency_positive_feedback"),
            negative_feedback: feedback("default_destination_concurrency_negative_feedback"),
            failed_cohort_limit: to_usize(int(
                p,
                "default_destination_concurrency_failed_cohort_limit",
            )),
            rate_delay: Duration::from_secs(
                secs(p, "default_destination_rate_delay").unsigned_abs(),
            ),
            process_limit: 0,
            batch_limit: 1,
            batch_size_limit: 0,
        };
        // Explicit `TRANSPORT_suffix` settings (any transport name master.cf may have).
        let mut explicit = HashMap::new();
        let mut transports: Vec<String> = vec!["local".into()];
        for name in p.explicit().into_iter().map(|setting| setting.name) {
            for suffix in rostfix_config::per_transport::QMGR_SUFFIXES {
                if let Some(t) = name.strip_suffix(&format!("_{suffix}")) {
                    if t != "default" && !t.is_empty() {
                        explicit.insert(name.clone(), p.get(&name));
                        transports.push(t.to_string());
                    }
                }
            }
        }
        transports.extend(process_limits.keys().cloned());
        transports.extend(local_services.iter().cloned());
        let batch_limit = to_usize(int(p, "rostfix_local_batch_limit")).max(1);
        let batch_size_limit = u64::try_from(int(p, "rostfix_local_batch_size_limit")).unwrap_or(0);
        let local_base = TransportPolicy {
            concurrency_limit: to_usize(int(p, "local_destination_concurrency_limit")).max(1),
            recipient_limit: to_usize(int(p, "local_destination_recipient_limit")),
            ..default.clone()
        };
        let mut per_transport = HashMap::new();
        for t in transports {
            let base = if t == "local" { &local_base } else { &default };
            let maxproc = process_limits.get(&t).copied().unwrap_or(0);
            let mut policy = transport_policy(base, &explicit, &t, maxproc);
            if local_services.contains(&t) {
                policy.batch_limit = batch_limit;
                policy.batch_size_limit = batch_size_limit;
            }
            per_transport.insert(t.clone(), policy);
        }
        let retry = RetryPolicy {
            minimal_backoff: secs(p, "minimal_backoff_time"),
            maximal_backoff: secs(p, "maximal_backoff_time"),
            maximal_queue_lifetime: secs(p, "maximal_queue_lifetime"),
            bounce_queue_lifetime: secs(p, "bounce_queue_lifetime"),
        };
        let limits = Limits {
            default,
            per_transport,
            total_concurrency: TOTAL_CONCURRENCY,
            dead_time: Duration::from_secs(retry.minimal_backoff.max(1).unsigned_abs()),
            pipeline_depth: PIPELINE_DEPTH,
        };
        let queue_run_delay = secs(p, "queue_run_delay").max(1);
        let active_limit = match to_usize(int(p, "qmgr_message_active_limit")) {
            0 => 20000,
            n => n,
        };
        let recipient_limit = match to_usize(int(p, "qmgr_message_recipient_limit")) {
            0 => 20000,
            n => n,
        };
        let ipc_timeout = match secs(p, "ipc_timeout") {
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
            delay_warning: secs(p, "delay_warning_time").max(0),
            agent_idle_limit: Duration::from_secs(
                secs(p, "smtp_connection_cache_time_limit")
                    .max(0)
                    .unsigned_abs(),
            ),
            default_filter_nexthop: p.get("default_filter_nexthop"),
            myhostname: p.get("myhostname"),
            verp_filter: p.get("verp_delimiter_filter"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// main.cf text as qmgr would load it.
    fn main_cf(text: &str) -> MainCf {
        MainCf::parse(text, std::path::Path::new("main.cf")).expect("main.cf parses")
    }

    #[test]
    fn unset_parameters_take_postfix_defaults() {
        let s = Settings::load(&main_cf(""), &HashMap::new(), &["local".to_string()]);
        assert_eq!(s.limits.concurrency("local"), 2);
        assert_eq!(s.limits.policy("local").batch_limit, 32);
        assert_eq!(s.limits.policy("local").batch_size_limit, 10_240_000);
        assert_eq!(s.limits.policy("smtp").batch_limit, 1);
        assert!(s.limits.per_recipient("local"));
        assert!(!s.limits.per_recipient("smtp"));
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
            &main_cf(
                "maximal_queue_lifetime = 1d\n\
                 bounce_queue_lifetime = 0\n\
                 relay_destination_concurrency_limit = 4\n\
                 relay_destination_recipient_limit = 10\n\
                 relay_destination_rate_delay = 2s\n\
                 slow_initial_destination_concurrency = 1\n\
                 slow_destination_concurrency_failed_cohort_limit = 3\n\
                 default_destination_concurrency_limit = 7\n\
                 delay_warning_time = 4h\n\
                 rostfix_local_batch_limit = 0\n\
                 rostfix_local_batch_size_limit = 4096\n",
            ),
            &HashMap::from([("smtp".to_string(), 30)]),
            &["local".to_string(), "maildrop".to_string()],
        );
        assert_eq!(
            s.limits.policy("maildrop").batch_limit,
            1,
            "0 means one at a time"
        );
        assert_eq!(s.limits.policy("maildrop").batch_size_limit, 4096);
        assert!(s.limits.per_recipient("local"));
        assert_eq!(s.limits.policy("relay").batch_limit, 1);
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
