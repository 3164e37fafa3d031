//! mtasts: fetches and caches MTA-STS policies (RFC 8461) for the smtp client, which
//! asks on `private/mtasts` (master.cf `mtasts unix - - n - 1 mtasts`). It runs
//! unchrooted as mail_owner because it needs what the chrooted smtp client does not
//! have: its cache file under data_directory shared by all smtp processes, and
//! outbound HTTPS with the CA roots (docs/mta-sts.md).
//!
//! Design: the service skeleton's multi shape, a thread per (short) client
//! connection; the cache, the resolver and the CA roots set up before confinement.

#![forbid(unsafe_code)]

mod help;
mod server;

use rostfix_mtasts::cache::Cache;
use rostfix_mtasts::fetch::Fetcher;
use rostfix_service::{Daemon, Service, Shape, StartError};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Per DNS attempt (two attempts).
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

fn main() {
    rostfix_service::run(Daemon {
        program: "mtasts",
        help: help::HELP,
        before_confine: |service: &mut Service| -> Result<server::Shared, StartError> {
            let cf = &service.config;
            let path = cf.get("rostfix_mta_sts_cache");
            let cache = if path.trim().is_empty() {
                Cache::in_memory()
            } else {
                let (cache, warnings) = Cache::open(Path::new(path.trim()), server::now())
                    .map_err(StartError::daemon)?;
                for w in warnings {
                    log::warn!("{w}");
                }
                cache
            };
            let ca = cf.get("rostfix_mta_sts_CAfile");
            let ca = (!ca.trim().is_empty()).then(|| std::path::PathBuf::from(ca.trim()));
            let port = u16::try_from(cf.get_int("rostfix_mta_sts_https_port")).unwrap_or(443);
            let timeout = cf
                .get_time("rostfix_mta_sts_fetch_timeout")
                .max(Duration::from_secs(1));
            let fetcher = Fetcher::new(ca.as_deref(), port, timeout).map_err(StartError::daemon)?;
            let dns = rostfix_dns::Resolver::new(&cf.get_list("rostfix_dns_servers"), DNS_TIMEOUT)
                .map_err(StartError::daemon)?;
            Ok(server::Shared::new(cache, dns, fetcher))
        },
        after_confine: |_service: &mut Service, shared: server::Shared| {
            let for_clients = shared.clone();
            Ok(Shape::Multi {
                on_client: Arc::new(move |conn| server::start_stream(conn, &for_clients)),
                main_loop: Box::new(move |service: &Service| {
                    server::supervise(&|| service.master_alive());
                }),
            })
        },
    })
}
