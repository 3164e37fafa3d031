//! postscreen: screens SMTP clients before smtpd sees them, as Postfix's
//! postscreen(8) does. One process (master.cf maxproc 1) takes every connection on
//! port 25, a thread per client; clients that pass are handed to smtpd over the
//! `pass` service (private/smtpd, file-descriptor passing), the others are refused
//! or kept in postscreen's own SMTP engine. docs/postscreen.md has the whole story.

#![deny(unsafe_code)]

mod access;
mod action;
mod cache;
mod dnsbl;
mod engine;
mod lookup;
mod reply;
mod session;
mod settings;
mod tls;
mod wait;

use rostfix_service::manual::{Manual, RETIRING_EXIT_STATUS};
use rostfix_service::{Connection, Daemon, Service, Shape, StartError};
use session::Ctx;
use std::sync::Arc;
use std::time::Duration;

/// How long a postscreen whose master went away (a reload) keeps serving the clients
/// it already has.
const DRAIN_TIME: Duration = Duration::from_secs(100);

const HELP: Manual = Manual {
    name: "postscreen - Rostfix zombie blocker",
    synopsis: "postscreen -n NAME -t inet [-c] [-u] [-v] [-o name=value]...",
    description: "\
Takes every SMTP connection first and decides whether it reaches smtpd(8):
postscreen_access_list (permit_mynetworks, cidr: and other tables answering
permit, reject or dunno), the pregreet test (a client that talks before the
220 greeting during postscreen_greet_wait), DNSBL scoring of
postscreen_dnsbl_sites (domain=filter*weight, negative weights allowlist)
against postscreen_dnsbl_threshold, and the deep protocol tests in
postscreen's own SMTP engine (postscreen_pipelining_enable,
postscreen_non_smtp_command_enable, postscreen_bare_newline_enable). A client
that passes is remembered in postscreen_cache_map (a text file of Rostfix's
own at that path) and goes straight to smtpd next time (PASS OLD). Passed
clients are handed to the smtpd `pass` service named by smtpd_service_name.
Not meant to be run by hand: master starts it.",
    more_options: "\
Parameters used: postscreen_access_list, postscreen_denylist_action
(postscreen_blacklist_action), postscreen_greet_banner, postscreen_greet_wait,
postscreen_greet_action, postscreen_greet_ttl, postscreen_dnsbl_sites,
postscreen_dnsbl_threshold, postscreen_dnsbl_allowlist_threshold
(postscreen_dnsbl_whitelist_threshold), postscreen_dnsbl_action,
postscreen_dnsbl_reply_map, postscreen_dnsbl_timeout, postscreen_dnsbl_min_ttl,
postscreen_dnsbl_max_ttl (postscreen_dnsbl_ttl), postscreen_pipelining_enable,
postscreen_pipelining_action, postscreen_pipelining_ttl,
postscreen_non_smtp_command_enable, postscreen_non_smtp_command_action,
postscreen_non_smtp_command_ttl, postscreen_forbidden_commands,
postscreen_bare_newline_enable, postscreen_bare_newline_action,
postscreen_bare_newline_ttl, postscreen_command_count_limit,
postscreen_command_time_limit, postscreen_client_connection_count_limit,
postscreen_pre_queue_limit,
postscreen_disable_vrfy_command, postscreen_helo_required,
postscreen_discard_ehlo_keywords, postscreen_discard_ehlo_keyword_address_maps,
postscreen_tls_security_level (postscreen_use_tls, postscreen_enforce_tls; the
certificate and protocols are smtpd's smtpd_tls_*), postscreen_post_queue_limit,
postscreen_cache_map,
postscreen_cache_retention_time, postscreen_cache_cleanup_interval,
postscreen_upstream_proxy_protocol (haproxy, PROXY v1 and v2),
postscreen_upstream_proxy_timeout,
smtpd_service_name, smtpd_banner, mynetworks, rostfix_dns_servers.",
    exit_status: RETIRING_EXIT_STATUS,
    see_also: "master(8), smtpd(8), docs/postscreen.md",
};

fn main() {
    rostfix_service::run(Daemon {
        program: "postscreen",
        help: HELP,
        before_confine: |svc: &mut Service| load(svc),
        after_confine: |_svc: &mut Service, ctx: Arc<Ctx>| {
            // Verdict counts for the metrics service (flushed every 5 s and at exit).
            rostfix_metrics::process::start("postscreen", std::path::Path::new("."));
            let for_clients = Arc::clone(&ctx);
            Ok(Shape::Multi {
                on_client: Arc::new(move |conn| start_client(&for_clients, conn)),
                main_loop: Box::new(move |service: &Service| {
                    while service.master_alive() {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    // A reload: the acceptors have stopped and the next generation
                    // takes new clients; let the clients under way finish (bounded).
                    let deadline = std::time::Instant::now() + DRAIN_TIME;
                    while ctx.active() > 0 && std::time::Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    log::debug!("master is gone; exiting");
                }),
            })
        },
    })
}

/// Reads the settings, opens the tables, the cache file and the resolver: all of
/// them live outside the chroot.
fn load(svc: &Service) -> Result<Arc<Ctx>, StartError> {
    let (settings, warnings) =
        settings::Settings::from_config(&svc.config).map_err(StartError::daemon)?;
    for w in warnings {
        log::warn!("{w}");
    }
    let now = session::unix_now();
    let cache = if settings.cache_map.is_empty() {
        None
    } else {
        let opened = cache::cache_path(&settings.cache_map).and_then(|path| {
            cache::Cache::open(&path, settings.cache_retention, settings.cache_cleanup, now)
        });
        Some(match opened {
            Ok((cache, warnings)) => {
                for w in warnings {
                    log::warn!("{w}");
                }
                cache
            }
            Err(e) => {
                // The cache only saves clients a wait: keep it in memory instead.
                log::warn!("{e}; keeping the postscreen cache in memory only");
                cache::Cache::in_memory(settings.cache_retention, settings.cache_cleanup, now)
            }
        })
    };
    let dnsbl = if settings.dnsbl_enabled() {
        let timeout = settings.dnsbl_timeout.max(Duration::from_secs(1));
        let resolver = rostfix_dns::Resolver::new(&settings.dns_servers, timeout)
            .map_err(StartError::daemon)?;
        Some(Arc::new(lookup::Dnsbl::new(resolver)))
    } else {
        None
    };
    let tls = match &settings.tls.settings {
        Some(t) => Some(t.load().map_err(StartError::daemon)?),
        None => None,
    };
    Ok(Arc::new(Ctx::new(settings, cache, dnsbl).with_tls(tls)))
}

/// Gives the client a thread of its own, so that one slow client (or a full
/// postscreen_greet_wait) never holds up the others.
fn start_client(ctx: &Arc<Ctx>, conn: Connection) {
    let Connection::Tcp(stream) = conn else {
        log::warn!("postscreen takes TCP clients only; closing a connection of another kind");
        return;
    };
    let ctx = Arc::clone(ctx);
    let started = std::thread::Builder::new()
        .name("client".into())
        .spawn(move || session::serve(&ctx, stream));
    if let Err(e) = started {
        log::warn!("cannot start a client thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
