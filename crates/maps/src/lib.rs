//! Lookup tables in Postfix's `type:name` syntax, for every parameter that takes a
//! table (alias_maps, virtual_alias_maps, transport_maps, check_*_access, ...).
//!
//! [`open_map`] parses `type:name` and returns a [`Map`]; [`Map::lookup`] answers
//! `Ok(Some(value))`, `Ok(None)` for "not found", or `Err(MapError)` for a lookup
//! error — which callers must turn into a temporary failure, never a fall-through.
//!
//! # Types
//!
//! | type | source | keys |
//! |------|--------|------|
//! | `texthash:FILE` | FILE (postmap(5) syntax) read into memory | folded to lower case |
//! | `hash:FILE`, `btree:FILE` | `FILE.rdb` built by `rostmap FILE` | folded to lower case |
//! | `inline:{ k=v, { k = v w } }` | the name itself | folded |
//! | `static:value`, `static:{ v w }` | the name itself; every key finds it | — |
//! | `regexp:FILE`, `pcre:FILE` | regexp_table(5) / pcre_table(5) syntax | matched as is |
//! | `cidr:FILE` | cidr_table(5) syntax | an IP address |
//! | `unix:passwd.byname`, `unix:group.byname` | getpwnam / getgrnam | as is |
//! | `pgsql:FILE`, `mysql:FILE`, `sqlite:FILE` | a query per lookup, FILE in pgsql_table(5) / mysql_table(5) / sqlite_table(5) syntax (see [`sql`]) | folded |
//! | `ldap:FILE` | a search per lookup, FILE in ldap_table(5) syntax (see [`ldap`]) | folded |
//! | `memcache:FILE` | memcached, optionally caching a `backup` table, memcache_table(5) (see [`memcache`]) | folded |
//! | `socketmap:inet:HOST:PORT:NAME`, `socketmap:unix:PATH:NAME` | Sendmail's socketmap protocol (see [`socketmap`]) | as is (pattern) |
//! | `tcp:HOST:PORT` | tcp_table(5)'s `get` protocol (see [`tcp`]) | folded |
//!
//! `proxy:type:name` asks the proxymap service when its socket is there (see
//! [`proxy`]), and opens `type:name` directly otherwise; opened with
//! [`open_map_for_write`], its updates and deletes go to the proxywrite service.
//! `hash:` and `btree:` tables opened for writing are updated in place (see
//! [`writable`]).
//!
//! Source file syntax (postmap(5)): `key whitespace value`; blank lines and lines whose
//! first non-blank character is `#` are ignored; a line starting with white space
//! continues the previous one. For a duplicate key the first entry wins (with a
//! warning). Aliases source (aliases(5), built with `rostmap -a` / `rostalias`) is
//! `name: value, value`, the key without the colon.
//!
//! `regexp:` and `pcre:` both use the Rust `regex` crate: no backreferences or
//! look-around, guaranteed linear-time matching. See [`regexp`] for the flags.
//!
//! # Paranoid tables
//!
//! A caller whose results can become commands, files, mailbox paths, user ids or
//! delivery transports opens its tables with [`open_map_with`] and
//! [`OpenFlags::PARANOID`] (Postfix's DICT_FLAG_PARANOID, of which only NO_REGSUB
//! matters here; proxymap is told of it). A `regexp:`/`pcre:` rule of such a table
//! that would copy `$1`... of the key into its result is refused: a lookup that
//! matches it fails with [`MapError::Lookup`] naming the table and line, so the
//! caller defers instead of letting the client's text reach a shell. Postfix skips
//! such a rule at open time; failing the lookup instead keeps the mail in the queue
//! rather than falling through to the next rule or "unknown user".
//!
//! # Reloading
//!
//! File-backed tables remember the mtime, size and inode of their files; at most once
//! per second ([`reload::CHECK_INTERVAL`]) a lookup re-checks them and re-reads the
//! table when any changed, so an edited (and, for hash/btree, rebuilt) table is in
//! force without restarting anything.
//!
//! # The `.rdb` file format (version 1)
//!
//! `hash:` and `btree:` read `FILE.rdb`, written by `rostmap` atomically (a temporary
//! file in the same directory, fsync, rename). All integers are little-endian u32.
//!
//! ```text
//! offset 0   8 bytes  magic "ROSTRDB\0"
//! offset 8   u32      version (1)
//! offset 12  u32      N, the number of entries
//! offset 16  N x u32  index: offset of entry i, relative to the data section
//! 16 + 4N    data:    N entries, each: u32 key length, key bytes (UTF-8),
//!                                      u32 value length, value bytes (UTF-8)
//! ```
//!
//! Entries are sorted by key bytes with no duplicates, so a lookup is a binary search
//! through the index. Keys are stored already folded to lower case. A reader checks
//! the magic, version, that every entry lies inside the file, is UTF-8 and that keys
//! strictly increase; any failure is [`MapError::Corrupt`]. If `FILE.rdb` is missing,
//! opening fails with [`MapError::Stale`] naming both files (run `rostmap FILE`); one
//! older than `FILE` is used with Postfix's warning. hash and btree are the same format (both are ordered).

#![forbid(unsafe_code)]

pub mod address;
pub mod cidr;
mod counted;
pub mod domain;
pub mod error;
pub mod hash;
pub mod inline;
pub mod ldap;
pub mod memcache;
pub mod netio;
pub mod proxy;
pub mod rdb;
pub mod regexp;
pub mod reload;
pub mod socketmap;
pub mod source;
pub mod sql;
pub mod surrogate;
pub mod tcp;
pub mod unix;
pub mod writable;

pub use address::{address_queries, lookup_address};
pub use error::MapError;

use std::path::Path;

/// An open lookup table.
pub trait Map: Send + Sync {
    /// Look `key` up: `Ok(None)` is "not found"; `Err` is a lookup error (temporary).
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError>;
    /// The table as `type:name`, for log messages.
    fn spec(&self) -> &str;
    /// True for tables matched by pattern (regexp, pcre, cidr, static), which
    /// [`lookup_address`] asks only with the full address.
    fn is_pattern(&self) -> bool {
        false
    }
    /// Every entry in key order, for tables that can list them (`rostmap -s`).
    fn entries(&self) -> Option<Result<Vec<(String, String)>, MapError>> {
        None
    }
    /// Set `key` to `value` (Postfix's dict_update), for tables opened with
    /// [`open_map_for_write`]; most types cannot be written.
    fn update(&self, key: &str, value: &str) -> Result<(), MapError> {
        let _ = (key, value);
        Err(MapError::NotWritable {
            table: self.spec().to_string(),
            reason: "this table type does not support update".into(),
        })
    }
    /// Remove `key`: `Ok(false)` when it was not there (Postfix's dict_delete).
    fn delete(&self, key: &str) -> Result<bool, MapError> {
        let _ = key;
        Err(MapError::NotWritable {
            table: self.spec().to_string(),
            reason: "this table type does not support delete".into(),
        })
    }
}

/// The table types [`open_map`] knows (for `rostconf -m`).
pub const MAP_TYPES: &[&str] = &[
    "btree",
    "cidr",
    "hash",
    "inline",
    "ldap",
    "memcache",
    "mysql",
    "pcre",
    "pgsql",
    "regexp",
    "socketmap",
    "sqlite",
    "static",
    "tcp",
    "texthash",
    "unix",
];

/// Split `type:name`; the name may itself contain colons.
pub fn split_spec(spec: &str) -> Result<(&str, &str), MapError> {
    match spec.split_once(':') {
        Some((t, n)) if !t.is_empty() => Ok((t, n)),
        _ => Err(MapError::BadSpec {
            spec: spec.to_string(),
            reason: "need type:name".into(),
        }),
    }
}

/// How a caller opens a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Refuse `$N` substitution of regexp/pcre match groups into results
    /// (DICT_FLAG_NO_REGSUB): a lookup that hits such a rule is a lookup error.
    pub no_regsub: bool,
}

impl OpenFlags {
    /// For tables whose results can become commands, files or identities (local's
    /// alias_maps, virtual's maps) or delivery routes (transport_maps).
    pub const PARANOID: OpenFlags = OpenFlags { no_regsub: true };
}

/// Open a table given as `type:name`, with no restrictions.
pub fn open_map(spec: &str) -> Result<Box<dyn Map>, MapError> {
    open_map_with(spec, OpenFlags::default())
}

/// Open a table to write it (Postfix's O_RDWR|O_CREAT open): `hash:` and `btree:`
/// work on FILE.rdb itself, created empty when missing (a cache has no source file);
/// `proxy:` sends writes to the proxywrite service. Other types open as for reading
/// and refuse [`Map::update`] and [`Map::delete`].
pub fn open_map_for_write(spec: &str, flags: OpenFlags) -> Result<Box<dyn Map>, MapError> {
    let (kind, name) = split_spec(spec)?;
    match kind {
        "proxy" => Ok(Box::new(proxy::ProxyMap::open_for_write(
            spec, name, flags,
        )?)),
        "hash" | "btree" if !name.is_empty() => {
            Ok(Box::new(writable::Writable::open(spec, Path::new(name))?))
        }
        _ => open_map_with(spec, flags),
    }
}

/// Open a table given as `type:name` with `flags`.
pub fn open_map_with(spec: &str, flags: OpenFlags) -> Result<Box<dyn Map>, MapError> {
    let kind = split_spec(spec)?.0.to_string();
    let inner = open_uncounted(spec, flags)?;
    Ok(Box::new(counted::Counted::new(inner, kind)))
}

fn open_uncounted(spec: &str, flags: OpenFlags) -> Result<Box<dyn Map>, MapError> {
    let (kind, name) = split_spec(spec)?;
    if kind == "proxy" {
        return Ok(Box::new(proxy::ProxyMap::open(spec, name, flags)?));
    }
    let need_name = || {
        if name.is_empty() {
            Err(MapError::BadSpec {
                spec: spec.to_string(),
                reason: "empty table name".into(),
            })
        } else {
            Ok(Path::new(name))
        }
    };
    Ok(match kind {
        "texthash" => Box::new(hash::TextHash::open(spec, need_name()?)?),
        "hash" | "btree" => Box::new(hash::Indexed::open(spec, need_name()?)?),
        "inline" => Box::new(inline::InlineMap::open(spec, name)?),
        "static" => Box::new(inline::StaticMap::open(spec, name)?),
        "regexp" => Box::new(regexp::RegexpMap::open(
            spec,
            need_name()?,
            regexp::Dialect::Regexp,
            flags,
        )?),
        "pcre" => Box::new(regexp::RegexpMap::open(
            spec,
            need_name()?,
            regexp::Dialect::Pcre,
            flags,
        )?),
        "cidr" => Box::new(cidr::CidrMap::open(spec, need_name()?)?),
        "unix" => Box::new(unix::UnixMap::open(spec, name)?),
        "pgsql" | "mysql" | "sqlite" => sql::open(spec, kind, need_name()?)?,
        "ldap" => Box::new(ldap::LdapMap::open(spec, need_name()?)?),
        "memcache" => Box::new(memcache::MemcacheMap::open(spec, need_name()?)?),
        "socketmap" => Box::new(socketmap::SocketMap::open(spec, name)?),
        "tcp" => Box::new(tcp::TcpMap::open(spec, name)?),
        other => return Err(MapError::UnknownType(other.to_string())),
    })
}
