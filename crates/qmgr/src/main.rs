//! qmgr: the queue manager. One long-lived process (master.cf: maxproc 1, wakeup 300).
//!
//! Moves mail from incoming/ (and due mail from deferred/) into active/, resolves each
//! pending recipient to a (transport, nexthop), sends delivery requests to
//! `private/TRANSPORT` within per-destination concurrency limits, and applies the
//! per-recipient results: done, deferred (backoff, defer log) or bounced (a notice via
//! `private/bounce`, then done). See docs/ARCHITECTURE.md "Mail path".
//!
//! Design: the main loop (manager.rs) owns every piece of queue state; blocking socket
//! work runs in short-lived threads (a trigger listener per socket, one worker per
//! request) that report over a channel. Scheduling rules live in pure, unit-tested
//! modules: backoff, schedule, message, expand, builtin; address resolution is the
//! rostfix-resolve crate.

#![forbid(unsafe_code)]

mod backoff;
mod builtin;
mod bulk;
mod event;
mod expand;
mod fd_limit;
mod group_commit;
mod help;
mod ipc;
mod logline;
mod manager;
mod message;
mod route;
mod schedule;
mod settings;
mod shaping;
mod trigger;
mod worker;

use manager::Manager;
use rostfix_config::{MasterCf, ServiceType};
use rostfix_resolve::Resolver;
use rostfix_service::{Daemon, Service, Shape, StartError};
use settings::Settings;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The transport services master.cf names, read before the chroot: the maxproc of
/// every unix service (the transports qmgr may call), and those that run the local
/// delivery agent (they get the group commit). An unreadable master.cf means no
/// per-transport caps (master would not run with one anyway) and the stock `local`.
fn transport_services(service: &Service) -> (HashMap<String, usize>, Vec<String>) {
    let default = u32::try_from(service.config.get_int("default_process_limit")).unwrap_or(100);
    match MasterCf::load(&service.config_dir, default) {
        Ok(m) => {
            let unix = || {
                m.services
                    .iter()
                    .filter(|e| e.service_type == ServiceType::Unix)
            };
            let limits = unix()
                .map(|e| (e.name.clone(), e.maxproc as usize))
                .collect();
            let local = unix()
                .filter(|e| e.command == "local")
                .map(|e| e.name.clone())
                .collect();
            (limits, local)
        }
        Err(e) => {
            log::warn!("cannot read master.cf for process limits: {e}");
            (HashMap::new(), vec!["local".to_string()])
        }
    }
}

/// What qmgr opens before the chroot.
struct Opened {
    settings: Settings,
    resolver: Resolver,
    /// The JSON delivery log (opened here: its path is outside the chroot) and the
    /// suppression settings.
    bulk: bulk::Bulk,
    shaper: shaping::Shaper,
    /// For the shaping rules' MX lookups; None without rules file or resolver.
    dns: Option<rostfix_dns::Resolver>,
    /// rostfix_shaping_redis_server and _prefix, when bucket rates are shared.
    shared_rates: Option<(String, String)>,
}

/// Each try of a shaping MX lookup (the resolver tries twice).
const SHAPING_DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The shaping rules (rostfix_shaping_rules) and, when there is a rules file, the DNS
/// resolver for their MX lookups, built before the chroot (it reads resolv.conf).
fn shaping_setup(service: &Service) -> (shaping::Shaper, Option<rostfix_dns::Resolver>) {
    let cf = &service.config;
    let path = cf.get("rostfix_shaping_rules");
    let shaper = shaping::Shaper::new(
        Some(PathBuf::from(path.trim())),
        cf.get_list("rostfix_shaping_transports"),
    );
    if !shaper.enabled() {
        return (shaper, None);
    }
    match rostfix_dns::Resolver::new(&cf.get_list("rostfix_dns_servers"), SHAPING_DNS_TIMEOUT) {
        Ok(dns) => (shaper, Some(dns)),
        Err(e) => {
            log::warn!("shaping: no DNS resolver ({e}): only domain rules apply");
            (shaper, None)
        }
    }
}

/// How often qmgr's counts go to the metrics service.
const METRICS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

fn main() {
    rostfix_service::run(Daemon {
        program: "qmgr",
        help: help::HELP,
        before_confine: |service: &mut Service| {
            let (shaper, dns) = shaping_setup(service);
            let redis = service.config.get("rostfix_shaping_redis_server");
            let shared_rates = (shaper.enabled() && !redis.trim().is_empty()).then(|| {
                (
                    redis.trim().to_string(),
                    service.config.get("rostfix_shaping_redis_prefix"),
                )
            });
            let (process_limits, local_services) = transport_services(service);
            let mut settings = Settings::load(&service.config, &process_limits, &local_services);
            settings.active_limit = fd_limit::fit_active_limit(settings.active_limit);
            Ok(Opened {
                shaper,
                dns,
                shared_rates,
                settings,
                // Tables are opened before the chroot (their paths are outside it).
                resolver: Resolver::from_config(&service.config).map_err(StartError::daemon)?,
                bulk: bulk::BulkSettings::load(&service.config)
                    .and_then(bulk::Bulk::open)
                    .map_err(StartError::daemon)?,
            })
        },
        after_confine: |_: &mut Service, opened: Opened| {
            let (tx, rx) = std::sync::mpsc::channel();
            let wake_pending = trigger::WakePending::default();
            let on_trigger = trigger::forwarder(tx.clone(), wake_pending.clone());
            // After confine the working directory is queue_directory (or the chroot).
            let mut manager = Manager::new(
                PathBuf::from("."),
                opened.settings,
                opened.resolver,
                tx.clone(),
            );
            manager.share_wake_pending(wake_pending);
            manager.set_bulk(opened.bulk);
            let mut shaper = opened.shaper;
            if let Some(dns) = opened.dns {
                match shaping::mx::MxLookups::start(dns, tx.clone()) {
                    Ok(l) => shaper.set_lookups(l),
                    Err(e) => log::warn!("shaping: cannot start the MX lookup thread: {e}"),
                }
            }
            if let Some((address, prefix)) = opened.shared_rates {
                match shaping::shared::SharedRates::start(address, prefix, tx.clone()) {
                    Ok(s) => shaper.set_shared(s),
                    Err(e) => log::warn!(
                        "shaping: cannot start the redis thread: {e}; bucket rates are this machine's own"
                    ),
                }
            }
            manager.set_shaper(shaper);
            manager.metrics().spawn_flusher(METRICS_EVERY);
            Ok(Shape::Event {
                on_trigger: Arc::new(on_trigger),
                main_loop: Box::new(move |service: &Service| {
                    manager.recover();
                    manager.scan_incoming();
                    manager.run(
                        rx,
                        &|| service.master_alive(),
                        &|| service.why_pipe_broke() == rostfix_service::PipeBroke::Reload,
                        &|| service.terminating(),
                    );
                }),
            })
        },
    })
}
