//! `memcache:FILE` tables (Postfix's memcache_table(5)): a memcached server, spoken
//! to in its text protocol, optionally in front of a `backup` table whose answers it
//! caches for `ttl` seconds.
//!
//! A lookup formats the key with `key_format` (the SQL tables' `%` templates), asks
//! `get`, and on a miss asks the backup table and stores what it finds with `set`.
//! A memcached that cannot be reached makes a table with a backup answer from the
//! backup (with a warning); without a backup it is [`MapError::Lookup`]. Replies are
//! bounded by `line_size_limit` and `data_size_limit`, every read by `timeout`.

use crate::domain::DomainFilter;
use crate::error::MapError;
use crate::netio::{read_line, Conn};
use crate::sql::config::parse_settings;
use crate::sql::template::{no_quote, Needs, Template};
use crate::{open_map, Map};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// memcached's longest key.
const MAX_KEY: usize = 250;

/// Why talking to memcached failed.
#[derive(Debug, thiserror::Error)]
pub enum McError {
    /// Connect, read or write failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server said something the protocol does not allow here.
    #[error("unexpected reply: {0}")]
    Protocol(String),
}

/// What one memcache: table's file says.
#[derive(Debug, Clone)]
pub struct MemcacheConfig {
    /// `memcache`: `inet:host:port` or `unix:path`.
    pub server: String,
    /// `backup`: a `type:name` table, or empty.
    pub backup: String,
    /// `flags` stored with each value.
    pub flags: u32,
    /// `ttl` in seconds for values stored from the backup.
    pub ttl: u64,
    /// `key_format`.
    pub key_format: Template,
    /// `domain`.
    pub domain: Vec<String>,
    /// `data_size_limit`.
    pub data_size_limit: usize,
    /// `line_size_limit`.
    pub line_size_limit: usize,
    /// `max_try`: attempts per request.
    pub max_try: u32,
    /// `retry_pause` between attempts.
    pub retry_pause: Duration,
    /// `timeout` for connect, read and write.
    pub timeout: Duration,
}

fn number(
    s: &HashMap<String, String>,
    name: &str,
    default: u64,
    min: u64,
    file: &Path,
) -> Result<u64, MapError> {
    match s.get(name) {
        None => Ok(default),
        Some(t) => match t.parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(MapError::BadSpec {
                spec: file.display().to_string(),
                reason: format!("bad numerical configuration: {name} = {t} (need >= {min})"),
            }),
        },
    }
}

impl MemcacheConfig {
    /// Parse a memcache_table(5) file's text.
    pub fn parse(text: &[u8], file: &Path) -> Result<MemcacheConfig, MapError> {
        let s = parse_settings(text, file)?;
        let get =
            |name: &str, default: &str| s.get(name).map_or(default, String::as_str).to_string();
        let key_format =
            Template::parse(&get("key_format", "%s"), true).map_err(|e| MapError::BadSpec {
                spec: file.display().to_string(),
                reason: format!("key_format: {e}"),
            })?;
        Ok(MemcacheConfig {
            server: get("memcache", "inet:localhost:11211"),
            backup: get("backup", ""),
            flags: u32::try_from(number(&s, "flags", 0, 0, file)?).unwrap_or(u32::MAX),
            ttl: number(&s, "ttl", 3600, 0, file)?,
            key_format,
            domain: DomainFilter::words(&get("domain", "")),
            data_size_limit: number(&s, "data_size_limit", 10240, 1, file)? as usize,
            line_size_limit: number(&s, "line_size_limit", 1024, 1, file)? as usize,
            max_try: u32::try_from(number(&s, "max_try", 2, 1, file)?).unwrap_or(u32::MAX),
            retry_pause: Duration::from_secs(number(&s, "retry_pause", 1, 0, file)?),
            timeout: Duration::from_secs(number(&s, "timeout", 2, 1, file)?),
        })
    }
}

/// A memcache: table.
pub struct MemcacheMap {
    spec: String,
    cfg: MemcacheConfig,
    needs: Needs,
    domains: DomainFilter,
    backup: Option<Box<dyn Map>>,
    conn: Mutex<Option<Conn>>,
}

/// A key memcached accepts: 1 to 250 bytes, no white space or control characters.
fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.bytes().all(|b| b > b' ' && b != 0x7f)
}

impl MemcacheMap {
    /// Open `spec` from `file` (and its backup table).
    pub fn open(spec: &str, file: &Path) -> Result<MemcacheMap, MapError> {
        let text = std::fs::read(file).map_err(|e| MapError::io(file, e))?;
        let cfg = MemcacheConfig::parse(&text, file)?;
        let backup = if cfg.backup.is_empty() {
            None
        } else {
            Some(open_map(&cfg.backup)?)
        };
        Ok(MemcacheMap {
            spec: spec.to_string(),
            needs: Needs::of(&[&cfg.key_format]),
            domains: DomainFilter::new(&cfg.domain)?,
            cfg,
            backup,
            conn: Mutex::new(None),
        })
    }

    /// Send `request` and read its reply with `read`, reconnecting up to max_try times.
    fn exchange<T>(
        &self,
        request: &[u8],
        read: impl Fn(&mut Conn) -> Result<T, McError>,
    ) -> Result<T, McError> {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut last = None;
        for attempt in 0..self.cfg.max_try {
            if attempt > 0 {
                std::thread::sleep(self.cfg.retry_pause);
            }
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => match Conn::open(&self.cfg.server, self.cfg.timeout) {
                    Ok(c) => guard.insert(c),
                    Err(e) => {
                        last = Some(McError::Io(e));
                        continue;
                    }
                },
            };
            let result = conn
                .send(request)
                .map_err(McError::Io)
                .and_then(|()| read(conn));
            match result {
                Ok(v) => return Ok(v),
                Err(e) => {
                    *guard = None;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| McError::Protocol("no attempt made".into())))
    }

    /// `get key`: Some(value) or None on a miss.
    fn get(&self, key: &str) -> Result<Option<String>, McError> {
        let line_limit = self.cfg.line_size_limit;
        let data_limit = self.cfg.data_size_limit;
        self.exchange(format!("get {key}\r\n").as_bytes(), |conn| {
            let line = read_line(&mut conn.reader, line_limit)?;
            if line == "END" {
                return Ok(None);
            }
            // VALUE <key> <flags> <bytes>
            let words: Vec<&str> = line.split(' ').collect();
            let [tag, _key, _flags, bytes] = words.as_slice() else {
                return Err(McError::Protocol(line));
            };
            let len: usize = match (*tag, bytes.parse()) {
                ("VALUE", Ok(n)) => n,
                _ => return Err(McError::Protocol(line)),
            };
            if len > data_limit {
                return Err(McError::Protocol(format!(
                    "value of {len} bytes exceeds data_size_limit {data_limit}"
                )));
            }
            let mut data = vec![0u8; len + 2];
            conn.reader.read_exact(&mut data)?;
            if !data.ends_with(b"\r\n") {
                return Err(McError::Protocol("value not followed by CRLF".into()));
            }
            data.truncate(len);
            let end = read_line(&mut conn.reader, line_limit)?;
            if end != "END" {
                return Err(McError::Protocol(end));
            }
            String::from_utf8(data)
                .map(Some)
                .map_err(|_| McError::Protocol("value is not UTF-8".into()))
        })
    }

    /// `set key`: store a value found in the backup table.
    fn set(&self, key: &str, value: &str) -> Result<(), McError> {
        if value.len() > self.cfg.data_size_limit {
            return Ok(());
        }
        let mut request = format!(
            "set {key} {} {} {}\r\n",
            self.cfg.flags,
            self.cfg.ttl,
            value.len()
        )
        .into_bytes();
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
        let limit = self.cfg.line_size_limit;
        self.exchange(&request, |conn| {
            let line = read_line(&mut conn.reader, limit)?;
            if line == "STORED" {
                Ok(())
            } else {
                Err(McError::Protocol(line))
            }
        })
    }
}

impl Map for MemcacheMap {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        let key = key.to_lowercase();
        if key.is_empty() || !self.domains.allows(&key)? {
            return Ok(None);
        }
        let Some(mc_key) = self
            .cfg
            .key_format
            .expand(&self.needs, &key, &key, &no_quote)
        else {
            return Ok(None);
        };
        if !valid_key(&mc_key) {
            log::warn!(
                "{}: key \"{mc_key}\" is not a valid memcache key -- ignored",
                self.spec
            );
            return Ok(None);
        }
        let cached = self.get(&mc_key);
        let Some(backup) = &self.backup else {
            return cached.map_err(|e| MapError::Lookup {
                table: self.spec.clone(),
                reason: format!("{}: {e}", self.cfg.server),
            });
        };
        match cached {
            Ok(Some(value)) => return Ok(Some(value)),
            Ok(None) => {}
            Err(e) => log::warn!(
                "{}: {}: {e}; using backup {}",
                self.spec,
                self.cfg.server,
                backup.spec()
            ),
        }
        let found = backup.lookup(&key)?;
        if let Some(value) = &found {
            if let Err(e) = self.set(&mc_key, value) {
                log::warn!(
                    "{}: cannot store \"{mc_key}\" on {}: {e}",
                    self.spec,
                    self.cfg.server
                );
            }
        }
        Ok(found)
    }

    fn spec(&self) -> &str {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults() {
        let c = MemcacheConfig::parse(
            b"backup = hash:/etc/x\nkey_format = aliases:%s\n",
            Path::new("/m.cf"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.server, "inet:localhost:11211");
        assert_eq!((c.ttl, c.max_try, c.data_size_limit), (3600, 2, 10240));
        assert_eq!(c.key_format.text(), "aliases:%s");
        assert!(MemcacheConfig::parse(b"key_format = %q\n", Path::new("/m.cf")).is_err());
        assert!(MemcacheConfig::parse(b"max_try = 0\n", Path::new("/m.cf")).is_err());
    }

    #[test]
    fn memcached_keys() {
        assert!(valid_key("user@example.com"));
        assert!(!valid_key("two words"));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(251)));
        assert!(!valid_key("a\u{1}b"));
    }
}
