//! proxymap's socket side: a thread per client stream, each reading netstring
//! requests `TABLE \0 FLAGS \0 KEY` and answering `OK value`, `NOTFOUND `,
//! `TEMP reason`, `PERM reason` or `DENIED reason` (docs/ipc.md). Run as the
//! `proxywrite` service, it also takes `TABLE \0 update \0 KEY \0 VALUE` and
//! `TABLE \0 delete \0 KEY`, for the tables of proxy_write_maps (opened for writing),
//! as Postfix's proxymap(8) does under that service name.
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
    /// The proxywrite role: tables of proxy_write_maps, writes allowed.
    write: bool,
    pool_size: usize,
    pools: Arc<Mutex<Pools>>,
    threads: ClientThreads,
}

/// The `type:name` tables a proxy_read_maps (or proxy_write_maps) value approves:
/// its `proxy:` words, without the prefix (Postfix ignores the other words, which are
/// there because the default lists whole parameters). Words are split as Postfix
/// splits lists, so `proxy:inline:{ a=b, c=d }` stays one table.
pub fn approved(value: &str) -> HashSet<String> {
    rostfix_config::split_list(value)
        .into_iter()
        .filter_map(|w| w.strip_prefix("proxy:").map(str::to_string))
        .filter(|w| !w.is_empty())
        .collect()
}

impl Shared {
    /// `write`: the proxywrite role (`approved` from proxy_write_maps).
    pub fn new(approved: HashSet<String>, pool_size: usize, write: bool) -> Shared {
        Shared {
            approved: Arc::new(approved),
            write,
            pool_size,
            pools: Arc::new(Mutex::new(HashMap::new())),
            threads: ClientThreads::new("proxymap", MAX_STREAMS),
        }
    }

    /// proxywrite: opens every approved table for writing now (before confinement,
    /// as root: the files are in data_directory), one kept instance per table. A
    /// table that cannot be opened now is logged and opened on its first request.
    pub fn preopen_writable(&self) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        for table in self.approved.iter() {
            match rostfix_maps::open_map_for_write(table, OpenFlags::default()) {
                Ok(map) => {
                    let pool = Pool::with_instance(table, OpenFlags::default(), map);
                    pools.insert((table.clone(), false), Arc::new(pool));
                }
                Err(e) => log::warn!("proxy_write_maps: {table}: {e}"),
            }
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
        let (paranoid, op) = match flags {
            "0" => (false, Op::Lookup),
            "paranoid" => (true, Op::Lookup),
            "update" => match key.split_once('\0') {
                Some((key, value)) => (false, Op::Update(key, value)),
                None => return "PERM malformed request".into(),
            },
            "delete" => (false, Op::Delete),
            _ => return "PERM unknown flags".into(),
        };
        let (service, access, param) = if self.write {
            ("proxywrite", "read-write", "proxy_write_maps")
        } else {
            ("proxymap", "read-only", "proxy_read_maps")
        };
        if !self.approved.contains(table) {
            // Postfix's words, on both sides.
            log::warn!("request for unapproved table: \"{table}\"");
            log::warn!(
                "to approve this table for {access} access, list proxy:{table} in \
                 main.cf:{param}"
            );
            return format!("DENIED {service} service is not configured for table \"{table}\"");
        }
        if !self.write && op != Op::Lookup {
            log::warn!("update or delete request for table \"{table}\" to the proxymap service");
            return format!(
                "DENIED proxymap service is read-only: list proxy:{table} in \
                 proxy_write_maps and use the proxywrite service"
            );
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
                .or_insert_with(|| Arc::new(Pool::new(table, flags, self.pool_size, self.write)))
                .clone()
        };
        let result = match op {
            Op::Lookup => pool.lookup(key),
            Op::Update(key, value) => pool
                .with(|m| m.update(key, value))
                .map(|()| Some(String::new())),
            Op::Delete => pool
                .with(|m| m.delete(key))
                .map(|found| found.then(String::new)),
        };
        match result {
            Ok(Some(v)) => format!("OK {v}"),
            Ok(None) => "NOTFOUND ".into(),
            // A table type that cannot be written will not learn to on a retry.
            Err(e @ rostfix_maps::MapError::NotWritable { .. }) => format!("PERM {e}"),
            Err(e) => format!("TEMP {e}"),
        }
    }
}

/// What a request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op<'a> {
    Lookup,
    /// The key is the request's; the value is this.
    Update(&'a str, &'a str),
    Delete,
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
            false,
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
        // proxymap never writes.
        assert!(shared
            .answer(b"inline:{a=b}\x00update\x00a\x00c")
            .starts_with("DENIED proxymap service is read-only"));
    }

    #[test]
    fn braces_keep_an_inline_table_whole() {
        let set = approved("proxy:inline:{ a=b, c=d }, proxy:static:{ x y }\tproxy:cidr:/x");
        let want: HashSet<String> = ["inline:{ a=b, c=d }", "static:{ x y }", "cidr:/x"]
            .into_iter()
            .map(str::to_string)
            .collect();
        assert_eq!(set, want);
        let shared = Shared::new(set, 1, false);
        assert_eq!(shared.answer(b"inline:{ a=b, c=d }\x000\x00c"), "OK d");
    }

    #[test]
    fn proxywrite_updates_and_deletes_approved_tables() {
        let dir = std::env::temp_dir().join(format!("rostfix-proxywrite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let table = format!("btree:{}/cache", dir.display());
        let shared = Shared::new(approved(&format!("proxy:{table}")), 2, true);
        let ask = |req: String| shared.answer(req.as_bytes());
        assert_eq!(ask(format!("{table}\x00update\x00K\x00v 1")), "OK ");
        assert_eq!(ask(format!("{table}\x000\x00k")), "OK v 1");
        // The file itself holds it: another reader sees it.
        let direct = rostfix_maps::open_map(&table).unwrap();
        assert_eq!(direct.lookup("k").unwrap(), Some("v 1".into()));
        assert_eq!(ask(format!("{table}\x00delete\x00k")), "OK ");
        assert_eq!(ask(format!("{table}\x00delete\x00k")), "NOTFOUND ");
        assert_eq!(ask(format!("{table}\x000\x00k")), "NOTFOUND ");
        assert!(ask("btree:/other\x00update\x00k\x00v".into())
            .starts_with("DENIED proxywrite service is not configured for table"));
        // A type that cannot be written is a permanent error.
        let inline = Shared::new(approved("proxy:inline:{a=b}"), 1, true);
        assert!(inline
            .answer(b"inline:{a=b}\x00update\x00a\x00c")
            .starts_with("PERM "));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
