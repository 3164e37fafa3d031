//! smtp: the SMTP client delivery agent (a slice of issue 4).
//!
//! Runs under master as the `smtp` unix service. For each delivery request from qmgr it
//! resolves the next hop (`[host]:port` without MX lookup, `host[:port]` with MX
//! lookup, A/AAAA fallback, null MX), talks SMTP to the servers in order (EHLO/HELO,
//! MAIL, RCPT, DATA, QUIT; PIPELINING and SIZE when offered), marks recipients the
//! server accepted as done in the queue file, answers qmgr with one result per recipient
//! and logs Postfix-shaped `to=<>, relay=, delay=, delays=, dsn=, status=` lines.
//!
//! The DNS resolver reads /etc/resolv.conf before the service chroots. The
//! Rostfix-specific parameter `rostfix_dns_servers` (a list of `ip:port`, default empty
//! = the system configuration) points it at other name servers instead; tests use it
//! for a DNS server on loopback.
//!
//! Not yet (issue 4): STARTTLS, client SASL, connection reuse, LMTP mode, 8BITMIME
//! downgrade, SMTPUTF8, DSN parameters.

mod deliver;
mod dns;
mod help;
mod logline;
mod nexthop;
mod reply;
mod session;

use rostfix_proto::{read_message, write_message, DeliveryRequest, FrameError};
use rostfix_service::{Connection, Service};
use session::Timeouts;
use std::io::{Read, Write};
use std::time::Duration;

/// A delivery request is a few hundred bytes per recipient; 4 MiB is generous for 50
/// recipients and still bounds what a confused peer makes us read.
const MAX_REQUEST: u64 = 4 * 1024 * 1024;
/// Used when ipc_timeout is unset or zero.
/// Per-query DNS timeout (two attempts per server).
const DNS_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_IPC_TIMEOUT: Duration = Duration::from_secs(3600);

fn main() {
    if std::env::args().skip(1).any(|a| a == "--help") {
        print!("{}", help::HELP);
        return;
    }
    let mut service = match Service::init("smtp") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smtp: fatal: {e}");
            std::process::exit(1);
        }
    };
    let listeners = service.take_listeners();
    let cfg = &service.config;
    let settings = deliver::Settings {
        helo_name: cfg.get("smtp_helo_name"),
        connect_timeout: nonzero(cfg.get_time("smtp_connect_timeout"), 30),
        timeouts: Timeouts {
            helo: nonzero(cfg.get_time("smtp_helo_timeout"), 300),
            mail: nonzero(cfg.get_time("smtp_mail_timeout"), 300),
            rcpt: nonzero(cfg.get_time("smtp_rcpt_timeout"), 300),
            data_init: nonzero(cfg.get_time("smtp_data_init_timeout"), 120),
            data_xfer: nonzero(cfg.get_time("smtp_data_xfer_timeout"), 180),
            data_done: nonzero(cfg.get_time("smtp_data_done_timeout"), 600),
            quit: nonzero(cfg.get_time("smtp_quit_timeout"), 300),
        },
        mx_address_limit: usize::try_from(cfg.get_int("smtp_mx_address_limit"))
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(5),
    };
    // Before confine(): the chroot has no /etc/resolv.conf. Without a resolver, MX
    // destinations are deferred (bracketed IP next hops still work).
    let dns = match dns::Dns::new(&cfg.get_list("rostfix_dns_servers"), DNS_TIMEOUT) {
        Ok(d) => Some(d),
        Err(e) => {
            log::warn!("DNS lookups disabled: {e}");
            None
        }
    };
    if let Err(e) = service.confine() {
        log::error!("fatal: {e}");
        std::process::exit(1);
    }
    let mut timeout = service.config.get_time("ipc_timeout");
    if timeout.is_zero() {
        timeout = DEFAULT_IPC_TIMEOUT;
    }
    service.serve(listeners, move |_svc, conn| match conn {
        Connection::Unix(mut stream) => {
            if let Err(e) = stream
                .set_read_timeout(Some(timeout))
                .and_then(|()| stream.set_write_timeout(Some(timeout)))
            {
                log::warn!("cannot set socket timeouts: {e}");
                return;
            }
            handle(&mut stream, &settings, dns.as_ref());
        }
        Connection::Tcp(mut stream) => {
            // master.cf declares smtp as a unix service; answer anyway if someone
            // configured otherwise, with the same bounds.
            if stream
                .set_read_timeout(Some(timeout))
                .and_then(|()| stream.set_write_timeout(Some(timeout)))
                .is_ok()
            {
                handle(&mut stream, &settings, dns.as_ref());
            }
        }
    })
}

/// Reads one request, delivers it, logs each recipient, answers qmgr.
fn handle<S: Read + Write>(stream: &mut S, settings: &deliver::Settings, dns: Option<&dns::Dns>) {
    let request: DeliveryRequest = match read_message(&mut stream.take(MAX_REQUEST)) {
        Ok(r) => r,
        Err(FrameError::Closed) => return,
        Err(e) => {
            log::warn!("bad delivery request: {e}");
            return;
        }
    };
    let (reply, lines) = deliver::deliver(&request, settings, dns);
    for line in lines {
        log::info!("{line}");
    }
    if let Err(e) = write_message(stream, &reply) {
        log::warn!("{}: cannot send reply to qmgr: {e}", request.queue_id);
    }
}

/// A configured time, or `default_secs` when unset or zero.
fn nonzero(d: Duration, default_secs: u64) -> Duration {
    if d.is_zero() {
        Duration::from_secs(default_secs)
    } else {
        d
    }
}
