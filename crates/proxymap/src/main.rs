//! proxymap: table lookups on behalf of other daemons (Postfix's proxymap(8)), for
//! tables written `proxy:type:name`. master.cf: `proxymap unix - - n - - proxymap`,
//! and `proxywrite unix - - n - 1 proxymap` for updates of proxy_write_maps tables.
//!
//! Design: the service skeleton's multi shape (as anvil): a thread per client
//! stream, a bounded pool of open instances per table shared between them
//! (server.rs, pool.rs). proxy_read_maps is read
//! once at start; a reload starts new processes.

#![forbid(unsafe_code)]

mod help;
mod pool;
mod server;

use rostfix_service::{Daemon, Service, Shape};
use std::sync::Arc;

fn main() {
    rostfix_service::run(Daemon {
        program: "proxymap",
        help: help::HELP,
        before_confine: |service: &mut Service| {
            // As Postfix's proxymap(8): run under the service name proxywrite it
            // serves proxy_write_maps and writes; otherwise proxy_read_maps, read-only.
            let write = service.args.name == rostfix_maps::proxy::WRITE_SERVICE;
            let param = if write {
                "proxy_write_maps"
            } else {
                "proxy_read_maps"
            };
            let value = service
                .config
                .expanded(param)
                .unwrap_or_else(|_| service.config.get(param));
            let pool_size = service.config.get_int("rostfix_proxymap_pool_size");
            let pool_size = usize::try_from(pool_size).unwrap_or(1).max(1);
            let shared = server::Shared::new(server::approved(&value), pool_size, write);
            if write {
                // Writable tables live in root's data_directory: opened now, their
                // descriptors kept (docs/tables.md).
                shared.preopen_writable();
            }
            Ok(shared)
        },
        after_confine: |_: &mut Service, shared: server::Shared| {
            Ok(Shape::Multi {
                on_client: Arc::new(move |conn| server::start_stream(conn, &shared)),
                main_loop: Box::new(move |service: &Service| loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    if !service.master_alive() {
                        return;
                    }
                }),
            })
        },
    })
}
