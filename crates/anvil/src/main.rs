//! anvil: the connection count and rate service behind smtpd's per-client limits
//! (Postfix's anvil(8)). One process (master.cf `anvil unix - - y - 1 anvil`) listening
//! on `private/anvil`; each smtpd session holds one connection to it for its lifetime.
//!
//! Design: the table (table.rs) is shared behind a mutex; a thread per client stream
//! reads requests and answers each at once; a stream's open connections are counted
//! down when the stream closes, whatever the peer did. The main thread exits when
//! master goes away, and logs the maxima every anvil_status_update_time, as Postfix.

#![forbid(unsafe_code)]

mod help;
mod server;
mod table;

use rostfix_service::Service;
use std::time::Duration;

fn main() {
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        print!("{}", help::HELP);
        return;
    }
    let mut service = match Service::init("anvil") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("anvil: fatal: {e}");
            std::process::exit(1);
        }
    };
    let listeners = service.take_listeners();
    let mut unit = service.config.get_time("anvil_rate_time_unit");
    if unit.is_zero() {
        unit = Duration::from_secs(60);
    }
    let mut status_every = service.config.get_time("anvil_status_update_time");
    if status_every.is_zero() {
        status_every = Duration::from_secs(600);
    }
    if let Err(e) = service.confine() {
        log::error!("fatal: {e}");
        std::process::exit(1);
    }
    if listeners.is_empty() {
        log::error!("fatal: no listening socket inherited from master");
        std::process::exit(1);
    }
    let shared = server::Shared::new(unit);
    for fd in listeners {
        if let Err(e) = server::spawn_acceptor(fd, shared.clone()) {
            log::error!("fatal: cannot listen: {e}");
            std::process::exit(1);
        }
    }
    server::supervise(&shared, status_every, &|| service.master_alive());
    std::process::exit(0);
}
