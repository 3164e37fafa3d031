//! `proxy:type:name`: lookups through the proxymap service (Postfix's proxymap(8)),
//! so that a chrooted daemon needs neither the table's files nor the network, and a
//! database sees proxymap's few pooled connections instead of one per process.
//!
//! The protocol (docs/ipc.md, "Table lookups ↔ private/proxymap") is netstrings on
//! the UNIX socket `private/proxymap`: a request `TABLE \0 FLAGS \0 KEY` (FLAGS `0`,
//! or `paranoid` for [`OpenFlags::PARANOID`]), a reply `OK value`, `NOTFOUND `,
//! `TEMP reason`, `PERM reason` or `DENIED reason` (the table is not listed in
//! proxy_read_maps). Everything but OK and NOTFOUND is a lookup error, which callers
//! treat as temporary (4xx, defer): an unreachable database is never "not found".
//!
//! Writes (Postfix's proxywrite service): a table opened with
//! [`crate::open_map_for_write`] talks to `private/proxywrite` instead (lookups too,
//! as Postfix's client does), with two more requests: `TABLE \0 update \0 KEY \0
//! VALUE` and `TABLE \0 delete \0 KEY`, answered `OK ` (deleted: `NOTFOUND ` when the
//! key was not there) or an error. proxywrite serves only the tables listed in
//! proxy_write_maps; proxymap refuses writes.
//!
//! Where the socket is: `private/proxymap` relative to the working directory, which
//! for every daemon after confinement is the queue directory (inside the chroot or
//! not); a command run elsewhere (`rostmap`) names it with [`set_socket`]. When it
//! is not there (master.cf has no proxymap service, or master is not running) the
//! table behind `proxy:` is opened directly, as Postfix's postmap cannot but
//! Rostfix's daemons did before proxymap existed. The direct table is opened at open
//! time only when the socket is absent then (so `rostmap -q` still reports a bad
//! table as such), otherwise on the first lookup that finds no socket: a chrooted
//! daemon could not open the table's files, nor should it connect to its database.

use crate::error::MapError;
use crate::netio::Conn;
use crate::socketmap::{decode, encode};
use crate::{open_map_with, Map, OpenFlags};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The proxymap socket, relative to the queue directory.
pub const SOCKET: &str = "private/proxymap";
/// The proxywrite service's socket name, beside [`SOCKET`].
pub const WRITE_SERVICE: &str = "proxywrite";
/// Longest reply accepted.
pub const MAX_REPLY: usize = 100_000;
/// Longest request proxymap accepts (a table name and a key).
pub const MAX_REQUEST: usize = 8192;
/// How long a lookup through proxymap may take: proxymap may wait for a free pooled
/// connection and then for the database (whose own timeouts are shorter).
const TIMEOUT: Duration = Duration::from_secs(120);

/// The socket path when [`set_socket`] named one.
static SOCKET_PATH: OnceLock<PathBuf> = OnceLock::new();

/// Use `path` as proxymap's socket in this process (a command, such as `rostmap`,
/// whose working directory is not the queue directory). The first call wins.
pub fn set_socket(path: PathBuf) {
    let _ = SOCKET_PATH.set(path);
}

fn socket(write: bool) -> PathBuf {
    let read = SOCKET_PATH
        .get()
        .cloned()
        .unwrap_or_else(|| PathBuf::from(SOCKET));
    if write {
        read.with_file_name(WRITE_SERVICE)
    } else {
        read
    }
}

/// Table types whose lookups match patterns (see [`Map::is_pattern`]).
const PATTERN_TYPES: &[&str] = &["cidr", "pcre", "regexp", "socketmap", "static"];

/// A `proxy:` table.
pub struct ProxyMap {
    spec: String,
    inner: String,
    flags: OpenFlags,
    /// Opened for writing: every request goes to proxywrite.
    write: bool,
    /// `inner` opened here, when proxymap's socket was not there.
    direct: OnceLock<Box<dyn Map>>,
    conn: Mutex<Option<Conn>>,
}

/// The request for `key` in `table`.
pub fn request(table: &str, flags: OpenFlags, key: &str) -> Vec<u8> {
    let flags = if flags.no_regsub { "paranoid" } else { "0" };
    encode(format!("{table}\0{flags}\0{key}").as_bytes())
}

/// The request setting `key` to `value` in `table`.
pub fn update_request(table: &str, key: &str, value: &str) -> Vec<u8> {
    encode(format!("{table}\0update\0{key}\0{value}").as_bytes())
}

/// The request removing `key` from `table`.
pub fn delete_request(table: &str, key: &str) -> Vec<u8> {
    encode(format!("{table}\0delete\0{key}").as_bytes())
}

impl ProxyMap {
    /// `spec` is `proxy:inner`. Opens `inner` directly now when there is no proxymap
    /// socket, so that its errors are open errors.
    pub fn open(spec: &str, inner: &str, flags: OpenFlags) -> Result<ProxyMap, MapError> {
        ProxyMap::open_as(spec, inner, flags, false)
    }

    /// As [`ProxyMap::open`], for writing through proxywrite (without its socket,
    /// `inner` is opened here for writing).
    pub fn open_for_write(spec: &str, inner: &str, flags: OpenFlags) -> Result<ProxyMap, MapError> {
        ProxyMap::open_as(spec, inner, flags, true)
    }

    fn open_as(
        spec: &str,
        inner: &str,
        flags: OpenFlags,
        write: bool,
    ) -> Result<ProxyMap, MapError> {
        let map = ProxyMap {
            spec: spec.to_string(),
            inner: inner.to_string(),
            flags,
            write,
            direct: OnceLock::new(),
            conn: Mutex::new(None),
        };
        crate::split_spec(inner)?;
        if !socket(write).exists() {
            let _ = map.direct.set(map.open_inner()?);
        }
        Ok(map)
    }

    fn open_inner(&self) -> Result<Box<dyn Map>, MapError> {
        if self.write {
            crate::open_map_for_write(&self.inner, self.flags)
        } else {
            open_map_with(&self.inner, self.flags)
        }
    }

    fn error(&self, reason: String) -> MapError {
        MapError::Lookup {
            table: self.spec.clone(),
            reason,
        }
    }

    /// The directly opened table, opening it on first use.
    fn direct(&self) -> Result<&dyn Map, MapError> {
        if let Some(m) = self.direct.get() {
            return Ok(m.as_ref());
        }
        let opened = self.open_inner()?;
        Ok(self.direct.get_or_init(|| opened).as_ref())
    }

    /// Send `req` to proxymap (proxywrite when opened for writing) and read its
    /// reply; None when there is no such socket here.
    fn ask(&self, req: &[u8]) -> Option<Result<Vec<u8>, MapError>> {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = socket(self.write);
        if guard.is_none() && !path.exists() {
            return None;
        }
        let endpoint = format!("unix:{}", path.display());
        let had = guard.is_some();
        for attempt in 0..2 {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => match Conn::open(&endpoint, TIMEOUT) {
                    Ok(c) => guard.insert(c),
                    Err(e) => {
                        return Some(Err(
                            self.error(format!("connect to {}: {e}", path.display()))
                        ))
                    }
                },
            };
            match conn
                .send(req)
                .and_then(|()| decode(&mut conn.reader, MAX_REPLY))
            {
                Ok(reply) => return Some(Ok(reply)),
                Err(e) => {
                    *guard = None;
                    // A kept stream may have been closed by a proxymap that exited
                    // (max_idle, reload): one retry on a new one.
                    if attempt == 1 || !had {
                        return Some(Err(self.error(format!("{}: {e}", path.display()))));
                    }
                }
            }
        }
        Some(Err(self.error("no reply".into())))
    }
}

/// A reply's meaning: the value, not found, or the error text.
pub fn parse_reply(reply: &str) -> Result<Option<String>, String> {
    let (status, text) = reply.split_once(' ').unwrap_or((reply, ""));
    match status {
        "OK" => Ok(Some(text.to_string())),
        "NOTFOUND" => Ok(None),
        "DENIED" | "TEMP" | "PERM" => Err(text.to_string()),
        _ => Err(format!("unexpected proxymap reply: {status}")),
    }
}

impl ProxyMap {
    /// The reply to `req` parsed; None when there is no socket.
    fn call(&self, req: &[u8]) -> Option<Result<Option<String>, MapError>> {
        let reply = self.ask(req)?;
        Some(reply.and_then(|r| {
            let r = String::from_utf8(r).map_err(|_| self.error("reply is not UTF-8".into()))?;
            parse_reply(&r).map_err(|e| self.error(e))
        }))
    }
}

impl Map for ProxyMap {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        match self.call(&request(&self.inner, self.flags, key)) {
            Some(answer) => answer,
            None => self.direct()?.lookup(key),
        }
    }

    fn update(&self, key: &str, value: &str) -> Result<(), MapError> {
        if !self.write {
            return Err(MapError::NotWritable {
                table: self.spec.clone(),
                reason: "not opened for writing".into(),
            });
        }
        match self.call(&update_request(&self.inner, key, value)) {
            Some(answer) => answer.map(|_| ()),
            None => self.direct()?.update(key, value),
        }
    }

    fn delete(&self, key: &str) -> Result<bool, MapError> {
        if !self.write {
            return Err(MapError::NotWritable {
                table: self.spec.clone(),
                reason: "not opened for writing".into(),
            });
        }
        match self.call(&delete_request(&self.inner, key)) {
            Some(answer) => answer.map(|found| found.is_some()),
            None => self.direct()?.delete(key),
        }
    }

    fn spec(&self) -> &str {
        &self.spec
    }

    fn is_pattern(&self) -> bool {
        self.inner
            .split_once(':')
            .is_some_and(|(kind, _)| PATTERN_TYPES.contains(&kind))
    }

    fn entries(&self) -> Option<Result<Vec<(String, String)>, MapError>> {
        match self.direct() {
            Ok(m) => m.entries(),
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply("OK a b"), Ok(Some("a b".into())));
        assert_eq!(parse_reply("NOTFOUND "), Ok(None));
        assert_eq!(parse_reply("TEMP db down"), Err("db down".into()));
        assert!(parse_reply("DENIED x").is_err());
        assert!(parse_reply("WHAT").is_err());
    }

    #[test]
    fn request_format() {
        assert_eq!(
            request("pgsql:/x.cf", OpenFlags::PARANOID, "k"),
            b"22:pgsql:/x.cf\0paranoid\0k,".to_vec()
        );
    }

    #[test]
    fn without_socket_the_table_is_opened_directly() {
        let m = open_map_with("proxy:inline:{a=b}", OpenFlags::default()).unwrap();
        assert_eq!(m.lookup("a").unwrap(), Some("b".into()));
        assert!(!m.is_pattern());
        assert!(open_map_with("proxy:static:x", OpenFlags::default())
            .unwrap()
            .is_pattern());
        assert!(open_map_with("proxy:nosuch:x", OpenFlags::default()).is_err());
    }
}
