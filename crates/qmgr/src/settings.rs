//! qmgr's view of main.cf: the resolver tables, limits and retry policy, read once at
//! start. A parameter the config crate does not know (not in its table and not set)
//! falls back to Postfix's default here, so a gap in the table can never turn into a
//! zero concurrency (no delivery at all) or a zero lifetime (bounce on first deferral).

use crate::backoff::RetryPolicy;
use crate::resolve::ResolveConfig;
use crate::schedule::Limits;
use rostfix_config::MainCf;
use std::collections::HashMap;
use std::time::Duration;

/// Requests in flight over all destinations (Postfix's default_process_limit).
const TOTAL_CONCURRENCY: usize = 100;

/// Where parameters come from: main.cf in production, a map in tests.
pub trait ParamSource {
    /// True if the parameter is known (has a default) or explicitly set.
    fn known(&self, name: &str) -> bool;
    fn string(&self, name: &str) -> String;
    fn int(&self, name: &str) -> i64;
    fn time(&self, name: &str) -> Duration;
    fn list(&self, name: &str) -> Vec<String>;
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
    fn list(&self, name: &str) -> Vec<String> {
        self.get_list(name)
    }
    fn explicit_names(&self) -> Vec<String> {
        self.explicit().into_iter().map(|s| s.name).collect()
    }
}

/// Everything qmgr reads from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub resolve: ResolveConfig,
    /// mydestination entries the resolver cannot use (table lookups), to warn about.
    pub unsupported_mydestination: Vec<String>,
    pub limits: Limits,
    pub retry: RetryPolicy,
    pub queue_run_delay: Duration,
    /// qmgr_message_active_limit.
    pub active_limit: usize,
    pub ipc_timeout: Duration,
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

fn string_or(p: &dyn ParamSource, name: &str, fallback: &str) -> String {
    if p.known(name) {
        p.string(name)
    } else {
        fallback.to_string()
    }
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
}

impl Settings {
    pub fn load(p: &dyn ParamSource) -> Settings {
        let myhostname = p.string("myhostname");
        let mydestination = if p.known("mydestination") {
            p.list("mydestination")
        } else {
            vec![myhostname.clone(), "localhost".to_string()]
        };
        let (resolve, unsupported_mydestination) = ResolveConfig::new(
            &myhostname,
            &mydestination,
            &string_or(p, "local_transport", &format!("local:{myhostname}")),
            &string_or(p, "default_transport", "smtp"),
            &p.string("relayhost"),
        );

        let mut transport_concurrency = HashMap::new();
        let mut transport_recipients = HashMap::new();
        for name in p.explicit_names() {
            if let Some(t) = name.strip_suffix("_destination_concurrency_limit") {
                if t != "default" {
                    transport_concurrency.insert(
                        t.to_string(),
                        to_usize(p.string(&name).trim().parse().unwrap_or(0)),
                    );
                }
            } else if let Some(t) = name.strip_suffix("_destination_recipient_limit") {
                if t != "default" {
                    if let Ok(n) = p.string(&name).trim().parse::<i64>() {
                        transport_recipients.insert(t.to_string(), to_usize(n));
                    }
                }
            }
        }
        // Zero or unparsable concurrency overrides are dropped: Limits enforces >= 1 anyway.
        transport_concurrency.retain(|_, n| *n > 0);

        let limits = Limits {
            local_concurrency: to_usize(int_or(p, "local_destination_concurrency_limit", 2)),
            default_concurrency: to_usize(int_or(p, "default_destination_concurrency_limit", 20)),
            local_recipients: to_usize(int_or(p, "local_destination_recipient_limit", 1)),
            default_recipients: to_usize(int_or(p, "default_destination_recipient_limit", 50)),
            transport_concurrency,
            transport_recipients,
            total_concurrency: TOTAL_CONCURRENCY,
        };
        let queue_run_delay = secs_or(p, "queue_run_delay", 300).max(1);
        let retry = RetryPolicy {
            minimal_backoff: secs_or(p, "minimal_backoff_time", 300),
            maximal_backoff: secs_or(p, "maximal_backoff_time", 4000),
            maximal_queue_lifetime: secs_or(p, "maximal_queue_lifetime", 5 * 86400),
            bounce_queue_lifetime: secs_or(p, "bounce_queue_lifetime", 5 * 86400),
        };
        let active_limit = match to_usize(int_or(p, "qmgr_message_active_limit", 20000)) {
            0 => 20000,
            n => n,
        };
        let ipc_timeout = match secs_or(p, "ipc_timeout", 3600) {
            n if n <= 0 => 3600,
            n => n,
        };
        Settings {
            resolve,
            unsupported_mydestination,
            limits,
            retry,
            queue_run_delay: Duration::from_secs(queue_run_delay.unsigned_abs()),
            active_limit,
            ipc_timeout: Duration::from_secs(ipc_timeout.unsigned_abs()),
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
            let v = self.string(name);
            let (num, mult) = match v.strip_suffix('d') {
                Some(n) => (n.to_string(), 86400),
                None => (v.trim_end_matches('s').to_string(), 1),
            };
            Duration::from_secs(num.parse::<u64>().unwrap_or(0) * mult)
        }
        fn list(&self, name: &str) -> Vec<String> {
            self.string(name)
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        }
        fn explicit_names(&self) -> Vec<String> {
            self.0.keys().map(|s| s.to_string()).collect()
        }
    }

    #[test]
    fn unknown_parameters_fall_back_to_postfix_defaults() {
        let s = Settings::load(&Map(HashMap::from([("myhostname", "mx.example.org")])));
        assert_eq!(s.limits.local_concurrency, 2);
        assert_eq!(s.limits.default_concurrency, 20);
        assert_eq!(s.limits.recipients("local"), 1);
        assert_eq!(s.limits.recipients("smtp"), 50);
        assert_eq!(s.retry.maximal_queue_lifetime, 5 * 86400);
        assert_eq!(s.retry.minimal_backoff, 300);
        assert_eq!(s.active_limit, 20000);
        assert_eq!(s.resolve.local_transport, "local:mx.example.org");
        assert_eq!(
            s.resolve.mydestination,
            vec!["mx.example.org".to_string(), "localhost".to_string()]
        );
    }

    #[test]
    fn explicit_values_and_per_transport_limits() {
        let s = Settings::load(&Map(HashMap::from([
            ("myhostname", "h"),
            ("mydestination", "h, Example.ORG., hash:/etc/x"),
            ("relayhost", "[relay]:587"),
            ("maximal_queue_lifetime", "1d"),
            ("bounce_queue_lifetime", "0"),
            ("relay_destination_concurrency_limit", "4"),
            ("relay_destination_recipient_limit", "10"),
            ("default_destination_concurrency_limit", "7"),
        ])));
        assert_eq!(
            s.resolve.mydestination,
            vec!["h".to_string(), "example.org".to_string()]
        );
        assert_eq!(s.unsupported_mydestination, vec!["hash:/etc/x".to_string()]);
        assert_eq!(s.resolve.relayhost, "[relay]:587");
        assert_eq!(s.retry.maximal_queue_lifetime, 86400);
        assert_eq!(s.retry.bounce_queue_lifetime, 0);
        assert_eq!(s.limits.concurrency("relay"), 4);
        assert_eq!(s.limits.recipients("relay"), 10);
        assert_eq!(s.limits.concurrency("smtp"), 7);
    }
}
