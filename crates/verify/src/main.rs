//! verify: the address verification service behind smtpd's
//! reject_unverified_recipient and reject_unverified_sender (Postfix's verify(8)).
//! One process (master.cf `verify unix - - n - 1 verify`) listening on
//! `private/verify`.
//!
//! Design: the service skeleton's multi shape; a thread per (short) client
//! connection; the cache (cache.rs) behind a mutex, opened before confinement so its
//! file may live where only root can create it; probes (probe.rs) are queue files
//! that qmgr routes like mail and reports on (qmgr's manager/probe.rs).

#![forbid(unsafe_code)]

mod cache;
mod help;
mod probe;
mod server;

use cache::{Cache, Times};
use rostfix_service::{Daemon, Service, Shape, StartError};
use std::path::PathBuf;
use std::sync::Arc;

fn times(service: &Service) -> Times {
    let secs = |name: &str| service.config.get_time(name).as_secs();
    Times {
        positive_expire: secs("address_verify_positive_expire_time"),
        positive_refresh: secs("address_verify_positive_refresh_time"),
        negative_expire: secs("address_verify_negative_expire_time"),
        negative_refresh: secs("address_verify_negative_refresh_time"),
        cleanup_every: secs("address_verify_cache_cleanup_interval"),
        negative_cache: service.config.get_bool("address_verify_negative_cache"),
    }
}

fn main() {
    rostfix_service::run(Daemon {
        program: "verify",
        help: help::HELP,
        before_confine: |service: &mut Service| -> Result<Cache, StartError> {
            let times = times(service);
            let now = server::now();
            let spec = service.config.get("address_verify_map");
            if spec.trim().is_empty() {
                return Ok(Cache::in_memory(times, now));
            }
            if let Some(inner) = spec.trim().strip_prefix("proxy:") {
                let socket = std::path::Path::new(&service.config.get("queue_directory"))
                    .join("private")
                    .join(rostfix_maps::proxy::WRITE_SERVICE);
                if socket.exists() {
                    // Through proxywrite, connected after confinement (the socket's
                    // path is relative to the queue directory, chroot or not).
                    return Ok(Cache::in_memory(times, now));
                }
                // No proxywrite service: the table itself, opened now as root (it is
                // in data_directory), its descriptor kept.
                let table =
                    rostfix_maps::open_map_for_write(inner, rostfix_maps::OpenFlags::default())
                        .map_err(StartError::daemon)?;
                return Ok(Cache::with_table(table, times, now));
            }
            let path = cache::cache_path(spec.trim()).map_err(StartError::daemon)?;
            let (cache, warnings) = Cache::open(&path, times, now).map_err(StartError::daemon)?;
            for w in warnings {
                log::warn!("{w}");
            }
            Ok(cache)
        },
        after_confine: |service: &mut Service, cache: Cache| {
            let cf = &service.config;
            let spec = cf.get("address_verify_map");
            let cache = if spec.trim().starts_with("proxy:") && !cache.has_table() {
                let table = rostfix_maps::open_map_for_write(
                    spec.trim(),
                    rostfix_maps::OpenFlags::default(),
                )
                .map_err(StartError::daemon)?;
                Cache::with_table(table, times(service), server::now())
            } else {
                cache
            };
            let sender = probe::probe_sender(&cf.get("address_verify_sender"), &cf.get("myorigin"));
            let shared =
                server::Shared::new(cache, PathBuf::from("."), sender, cf.get("myhostname"));
            let for_clients = shared.clone();
            Ok(Shape::Multi {
                on_client: Arc::new(move |conn| server::start_stream(conn, &for_clients)),
                main_loop: Box::new(move |service: &Service| {
                    server::supervise(&shared, &|| service.master_alive());
                }),
            })
        },
    })
}
