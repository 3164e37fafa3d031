//! The delivery agent's process: start-up (settings, TLS files, tables and the DNS
//! resolver loaded before the chroot), then master's serve loop: the delivery requests
//! qmgr sends on each connection, until it closes it. The `smtp` and `lmtp` binaries both run [`main`]; LMTP mode is
//! chosen, as in Postfix, by the command name (`lmtp`) or the master.cf service name.

use crate::cache::Cache;
use crate::deliver::{self, Agent};
use crate::dns;
use crate::header_flags::HeaderFlags;
use crate::help;
use crate::settings::{Mode, Settings};
use rostfix_proto::{serve_delivery_stream, StreamEnd};
use rostfix_service::{Connection, Daemon, Passed, Service, Shape, StartError};
use std::io::{Read, Write};
use std::time::Duration;

/// Per-query DNS timeout (two attempts per server).
const DNS_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the agent; `program` is `smtp` or `lmtp` (the binary).
pub fn main(program: &'static str) -> ! {
    rostfix_service::run(Daemon {
        program,
        help: help::HELP,
        before_confine: move |service: &mut Service| load(program, service),
        after_confine: |service: &mut Service, (settings, dns): (Settings, Option<dns::Dns>)| {
            let header_flags =
                HeaderFlags::parse(&service.args.extra).map_err(StartError::daemon)?;
            let cache = Cache::start(settings.cache.time_limit, settings.cache.reuse_limit);
            // Outbound TLS counts (tls.rs); the working directory is queue_directory.
            rostfix_metrics::process::start(program, std::path::Path::new("."));
            let agent = Agent {
                settings,
                header_flags,
                dns,
                cache,
            };
            let timeout = service.ipc_timeout();
            Ok(Shape::Single(Box::new(move |_svc, conn| {
                if !conn.bound_or_refuse(timeout) {
                    return;
                }
                match conn {
                    Connection::Unix(mut s) => handle(&mut s, &agent),
                    // master.cf declares the agent a unix service; answer anyway if
                    // someone configured otherwise, with the same bounds.
                    Connection::Tcp(mut s) | Connection::Passed(Passed { stream: mut s, .. }) => {
                        handle(&mut s, &agent)
                    }
                }
            })))
        },
    })
}

/// Everything outside the chroot, read before confinement: CA files, client
/// certificate, password and policy tables, /etc/resolv.conf.
fn load(program: &str, service: &Service) -> Result<(Settings, Option<dns::Dns>), StartError> {
    let mode = if program == "lmtp" || service.args.name == "lmtp" {
        Mode::Lmtp
    } else {
        Mode::Smtp
    };
    let settings = Settings::load(&service.config, mode).map_err(StartError::daemon)?;
    // Without a resolver, MX destinations are deferred (bracketed IP next hops and
    // LMTP sockets still work).
    let servers = service.config.get_list("rostfix_dns_servers");
    let anchor = service.config.get("rostfix_dnssec_trust_anchor");
    let anchor = (!anchor.trim().is_empty()).then(|| std::path::PathBuf::from(anchor.trim()));
    let made = if settings.dnssec {
        dns::Dns::validating(&servers, DNS_TIMEOUT, anchor.as_deref())
    } else {
        dns::Dns::new(&servers, DNS_TIMEOUT)
    };
    let dns = match made {
        Ok(d) => Some(d),
        Err(e) => {
            log::warn!("DNS lookups disabled: {e}");
            None
        }
    };
    Ok((settings, dns))
}

/// Serves the requests qmgr sends on one stream (kept open: the next request for the
/// same destination comes on it, and so reuses the SMTP session this process keeps),
/// logging each recipient. When qmgr closes the stream, the cached sessions are closed
/// too: an idle session must not outlive the stream that qmgr counts against the
/// destination's concurrency.
fn handle<S: Read + Write>(stream: &mut S, agent: &Agent) {
    let end = serve_delivery_stream(stream, |request| {
        let (reply, lines) = deliver::deliver(request, agent);
        for line in lines {
            log::info!("{line}");
        }
        reply
    });
    if !matches!(end, StreamEnd::Done) {
        log::warn!("{end}");
    }
    agent.cache.close_all();
}
