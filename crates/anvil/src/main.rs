//! anvil: the connection count and rate service behind smtpd's per-client limits
//! (Postfix's anvil(8)). One process (master.cf `anvil unix - - y - 1 anvil`) listening
//! on `private/anvil`; each smtpd session holds one connection to it for its lifetime.
//!
//! Design: it runs in the service skeleton's multi shape. The table (table.rs) is
//! shared behind a mutex; a thread per client stream reads requests and answers each
//! at once; a stream's open connections are counted down when the stream closes,
//! whatever the peer did. The main thread exits when master goes away, and logs the
//! maxima every anvil_status_update_time, as Postfix. With rostfix_anvil_redis_server
//! the rates and simultaneous connection counts are shared with other machines through
//! Redis (shared_limits.rs).

#![forbid(unsafe_code)]

mod help;
mod server;
mod shared_limits;
mod table;

use rostfix_service::{Daemon, Service, Shape};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    rostfix_service::run(Daemon {
        program: "anvil",
        help: help::HELP,
        before_confine: |_: &mut Service| Ok(()),
        after_confine: |service: &mut Service, ()| {
            let mut unit = service.config.get_time("anvil_rate_time_unit");
            if unit.is_zero() {
                unit = Duration::from_secs(60);
            }
            let mut status_every = service.config.get_time("anvil_status_update_time");
            if status_every.is_zero() {
                status_every = Duration::from_secs(600);
            }
            let redis = service.config.get("rostfix_anvil_redis_server");
            let redis = (!redis.is_empty()).then(|| {
                log::info!("client rate limits shared through redis server {redis}");
                shared_limits::SharedLimits::new(
                    &redis,
                    &service.config.get("rostfix_anvil_redis_prefix"),
                    unit,
                    service.config.get_time("rostfix_anvil_connection_lease"),
                )
            });
            let shared = server::Shared::new(unit, redis, &service.config.get("myhostname"));
            let for_clients = shared.clone();
            Ok(Shape::Multi {
                on_client: Arc::new(move |conn| server::start_stream(conn, &for_clients)),
                main_loop: Box::new(move |service: &Service| {
                    server::supervise(&shared, status_every, &|| service.master_alive());
                }),
            })
        },
    })
}
