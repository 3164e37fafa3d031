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
mod event;
mod expand;
mod help;
mod ipc;
mod logline;
mod manager;
mod message;
mod route;
mod schedule;
mod settings;
mod trigger;
mod worker;

use manager::Manager;
use rostfix_config::{MasterCf, ServiceType};
use rostfix_resolve::Resolver;
use rostfix_service::Service;
use settings::Settings;
use std::collections::HashMap;
use std::path::PathBuf;

/// master.cf maxproc of every unix service (the transports qmgr may call), read before
/// the chroot. An unreadable master.cf means no per-transport caps (master would not
/// run with one anyway).
fn process_limits(service: &Service) -> HashMap<String, usize> {
    let default = u32::try_from(service.config.get_int("default_process_limit")).unwrap_or(100);
    match MasterCf::load(&service.config_dir, default) {
        Ok(m) => m
            .services
            .iter()
            .filter(|e| e.service_type == ServiceType::Unix)
            .map(|e| (e.name.clone(), e.maxproc as usize))
            .collect(),
        Err(e) => {
            log::warn!("cannot read master.cf for process limits: {e}");
            HashMap::new()
        }
    }
}

fn main() {
    if std::env::args().skip(1).any(|a| a == "--help") {
        print!("{}", help::HELP);
        return;
    }
    let mut service = match Service::init("qmgr") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("qmgr: fatal: {e}");
            std::process::exit(1);
        }
    };
    let listeners = service.take_listeners();
    let settings = Settings::load(&service.config, &process_limits(&service));
    // Tables are opened before the chroot (their paths are outside it).
    let resolver = match Resolver::from_config(&service.config) {
        Ok(r) => r,
        Err(e) => {
            log::error!("fatal: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = service.confine() {
        log::error!("fatal: {e}");
        std::process::exit(1);
    }
    if listeners.is_empty() {
        log::warn!("no trigger socket inherited from master; relying on periodic queue scans");
    }

    let (tx, rx) = std::sync::mpsc::channel();
    let wake_pending = trigger::WakePending::default();
    for fd in listeners {
        if let Err(e) = trigger::spawn_listener(fd, tx.clone(), wake_pending.clone()) {
            log::error!("fatal: cannot start trigger listener: {e}");
            std::process::exit(1);
        }
    }
    // After confine the working directory is queue_directory (or the chroot).
    let mut manager = Manager::new(PathBuf::from("."), settings, resolver, tx);
    manager.share_wake_pending(wake_pending);
    manager.recover();
    manager.scan_incoming();
    manager.run(rx, &|| service.master_alive());
    std::process::exit(0);
}
