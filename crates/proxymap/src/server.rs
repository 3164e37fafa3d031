//! proxymap's socket side: a thread per client stream, each reading netstring
//! requests `TABLE \0 FLAGS \0 KEY` and answering `OK value`, `NOTFOUND `,
//! `TEMP reason`, `PERM reason` or `DENIED reason` (docs/ipc.md).
//!
//! Each table gets a [`Pool`] on first use, shared by every stream (so a database
//! sees at most rostfix_proxymap_pool_size connections per table from this
//! process), and only tables approved by proxy_read_maps are opened at all:
//! proxymap runs with the mail owner's rights, and must not become a way to read any
//! file a client names.
//!
//! Bounds: at most [`MAX_STREAMS`] streams, requests of at most
//! [`rostfix_maps::proxy::MAX_REQUEST`] bytes, an idle stream is closed after
//! [`STREAM_IDLE`].

use crate::pool::Pool;
use rostfix_maps::proxy::MAX_REQUEST;
use rostfix_maps::socketmap::{decode, encode};
use rostfix_maps::OpenFlags;
use rostfix_service::{ClientThreads, Connection};
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Client streams served at once.
const MAX_STREAMS: usize = 1024;
/// A client that says nothing for this long is gone (Postfix's ipc_idle is 5 s on
/// the client side; daemons keep the stream for their lifetime).
const STREAM_IDLE: Duration = Duration::from_secs(3600);

/// Table pools by (`type:name`, paranoid).
type Pools = HashMap<(String, bool), Arc<Pool>>;

/// The approved tables, their pools, and the stream count.
#[derive(Clone)]
pub struct Shared {
    approved: Arc<HashSet<String>>,
    pool_size: usize,
    pools: Arc<Mutex<Pools>>,
    threads: ClientThreads,
}

/// The `type:name` tables a proxy_read_maps value approves: its `proxy:` words,
/// without the prefix (Postfix ignores the other words, which are there because the
/// default lists whole parameters).
pub fn approved(value: &str) -> HashSet<String> {
    value
        .split([',', ' ', '\t', '\n', '\r'])
        .filter_map(|w| w.strip_prefix("proxy:"))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

impl Shared {
    pub fn new(approved: HashSet<String>, pool_size: usize) -> Shared {
        Shared {
            approved: Arc::new(approved),
            pool_size,
            pools: Arc::new(Mutex::new(HashMap::new())),
            threads: ClientThreads::new("proxymap", MAX_STREAMS),
        }
    }

    /// The reply text for one request body.
    pub fn answer(&self, body: &[u8]) -> String {
        let Ok(body) = std::str::from_utf8(body) else {
            return "PERM request is not UTF-8".into();
        };
        let mut parts = body.splitn(3, '\0');
        let (Some(table), Some(flags), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            return "PERM malformed request".into();
        };
        let paranoid = match flags {
            "0" => false,
            "paranoid" => true,
            _ => return "PERM unknown flags".into(),
        };
        if !self.approved.contains(table) {
            // Postfix's words, on both sides.
            log::warn!("request for unapproved table: \"{table}\"");
            log::warn!(
                "to approve this table for read-only access, list proxy:{table} in \
                 main.cf:proxy_read_maps"
            );
            return format!("DENIED proxymap service is not configured for table \"{table}\"");
        }
        let pool = {
            let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            let flags = if paranoid {
                OpenFlags::PARANOID
            } else {
                OpenFlags::default()
            };
            pools
                .entry((table.to_string(), paranoid))
                .or_insert_with(|| Arc::new(Pool::new(table, flags, self.pool_size)))
                .clone()
        };
        match pool.lookup(key) {
            Ok(Some(v)) => format!("OK {v}"),
            Ok(None) => "NOTFOUND ".into(),
            Err(e) => format!("TEMP {e}"),
        }
    }
}

/// Takes one new client stream: starts its thread, or closes it when too many.
pub fn start_stream(conn: Connection, shared: &Shared) {
    let s = shared.clone();
    shared
        .threads
        .start(conn, move |stream| serve_stream(stream, &s));
}

fn serve_stream(stream: UnixStream, shared: &Shared) {
    if let Err(e) = stream
        .set_read_timeout(Some(STREAM_IDLE))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(30))))
    {
        log::warn!("cannot set socket timeouts: {e}");
        return;
    }
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let body = match decode(&mut reader, MAX_REQUEST) {
            Ok(b) => b,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::UnexpectedEof {
                    log::debug!("client stream ends: {e}");
                }
                return;
            }
        };
        let reply = shared.answer(&body);
        if let Err(e) = writer.write_all(&encode(reply.as_bytes())) {
            log::debug!("cannot answer a client: {e}");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_approved_tables_are_answered() {
        let shared = Shared::new(
            approved("$alias_maps proxy:inline:{a=b} , hash:/etc/x proxy:static:yes"),
            2,
        );
        assert_eq!(shared.answer(b"inline:{a=b}\x000\x00a"), "OK b");
        assert!(shared
            .answer(b"proxy:no\x000\x00a")
            .starts_with("DENIED proxymap service is not configured for table"));
        assert!(shared.answer(b"static:yes\x000\x00k").starts_with("OK"));
        assert_eq!(shared.answer(b"inline:{a=b}\x000\x00z"), "NOTFOUND ");
        assert_eq!(shared.answer(b"static:yes\x00paranoid\x00k"), "OK yes");
        assert!(shared
            .answer(b"hash:/etc/x\x000\x00a")
            .starts_with("DENIED "));
        assert!(shared
            .answer(b"inline:{a=b}\x00odd\x00a")
            .starts_with("PERM "));
        assert!(shared.answer(b"no separators").starts_with("PERM "));
    }
}
