//! SQL lookup tables: `pgsql:FILE`, `mysql:FILE`, `sqlite:FILE`, with Postfix's
//! configuration files (pgsql_table(5), mysql_table(5), sqlite_table(5)).
//!
//! The shared part lives here: the `domain` filter, the query expansion, the
//! per-server connection kept open between lookups and reopened after a failure,
//! failover across `hosts`, result formatting and the expansion limit. Each database
//! supplies a [`Connector`] (pgsql.rs, mysql.rs, sqlite.rs).
//!
//! A table whose servers cannot be reached, or whose query fails, answers
//! [`MapError::Lookup`] (callers defer or reply 4xx), never "not found".

pub mod config;
pub mod mysql;
pub mod pgsql;
pub mod sqlite;
pub mod template;

use crate::domain::DomainFilter;
use crate::error::MapError;
use crate::Map;
use config::{Flavour, SqlConfig};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;
use template::{no_quote, Needs};

/// Open `kind:file` (kind: pgsql, mysql or sqlite) from its configuration file.
pub fn open(spec: &str, kind: &str, file: &Path) -> Result<Box<dyn Map>, MapError> {
    let flavour = match kind {
        "pgsql" => Flavour::Pgsql,
        "mysql" => Flavour::Mysql,
        _ => Flavour::Sqlite,
    };
    let cfg = SqlConfig::load(file, flavour)?;
    Ok(match flavour {
        Flavour::Pgsql => Box::new(SqlMap::new(spec, cfg, pgsql::Pgsql)?),
        Flavour::Mysql => Box::new(SqlMap::new(spec, cfg, mysql::Mysql)?),
        Flavour::Sqlite => Box::new(SqlMap::new(spec, cfg, sqlite::Sqlite)?),
    })
}

/// Why talking to one server failed (its text never holds the password: the
/// drivers' messages name the user at most).
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// Could not connect or log in.
    #[error("cannot connect to {host}: {reason}")]
    Connect {
        /// The `hosts` entry.
        host: String,
        /// The driver's message.
        reason: String,
    },
    /// The query failed (syntax, permissions, lost connection, timeout).
    #[error("query failed on {host}: {reason}")]
    Query {
        /// The `hosts` entry.
        host: String,
        /// The driver's message.
        reason: String,
    },
}

/// One database's client side.
pub trait Connector: Send + Sync + 'static {
    /// An open connection.
    type Conn: Send;
    /// Open a connection to `host` (a `hosts` entry; the dbpath for sqlite).
    fn connect(&self, cfg: &SqlConfig, host: &str) -> Result<Self::Conn, SqlError>;
    /// Append `text` to `out`, escaped for a quoted string on `conn`.
    fn quote(conn: &Self::Conn, text: &str, out: &mut String);
    /// Run `sql`; the values of every row, row by row, NULL as None.
    fn query(conn: &mut Self::Conn, host: &str, sql: &str)
        -> Result<Vec<Option<String>>, SqlError>;
}

/// A connection and when it was last used.
struct Open<C> {
    conn: C,
    used: Instant,
}

/// One `hosts` entry's state.
struct Server<C> {
    name: String,
    open: Option<Open<C>>,
    /// After a failure, the server is left alone until then (retry_interval).
    down_until: Option<Instant>,
}

/// A pgsql:, mysql: or sqlite: table.
pub struct SqlMap<K: Connector> {
    spec: String,
    cfg: SqlConfig,
    needs: Needs,
    domains: DomainFilter,
    connector: K,
    servers: Mutex<Vec<Server<K::Conn>>>,
}

impl<K: Connector> SqlMap<K> {
    /// A table for `spec` from a read configuration. No connection is made yet: an
    /// unreachable server is a lookup-time (temporary) error, not an open failure.
    pub fn new(spec: &str, cfg: SqlConfig, connector: K) -> Result<SqlMap<K>, MapError> {
        let needs = Needs::of(&[&cfg.query, &cfg.result_format]);
        let domains = DomainFilter::new(&cfg.domain)?;
        // A lone server is listed twice, as Postfix does, so one failed attempt does
        // not leave the table without a server until retry_interval has passed.
        let mut names = if cfg.hosts.is_empty() {
            vec![cfg.dbname.clone()]
        } else {
            cfg.hosts.clone()
        };
        if names.len() == 1 {
            names.push(names[0].clone());
        }
        let servers = names
            .into_iter()
            .map(|name| Server {
                name,
                open: None,
                down_until: None,
            })
            .collect();
        Ok(SqlMap {
            spec: spec.to_string(),
            cfg,
            needs,
            domains,
            connector,
            servers: Mutex::new(servers),
        })
    }

    /// Run the query for `key` on the first server that answers.
    fn run(&self, key: &str) -> Result<Vec<Option<String>>, MapError> {
        let mut servers = self
            .servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        // Servers with an open connection first, then those not marked down.
        let mut order: Vec<usize> = (0..servers.len())
            .filter(|&i| servers[i].open.is_some())
            .collect();
        order.extend(
            (0..servers.len())
                .filter(|&i| servers[i].open.is_none())
                .filter(|&i| servers[i].down_until.is_none_or(|t| t <= now)),
        );
        let mut last: Option<SqlError> = None;
        for i in order {
            let server = &mut servers[i];
            if server
                .open
                .as_ref()
                .is_some_and(|o| o.used.elapsed() >= self.cfg.idle_interval)
            {
                server.open = None;
            }
            if server.open.is_none() {
                match self.connector.connect(&self.cfg, &server.name) {
                    Ok(conn) => {
                        server.open = Some(Open {
                            conn,
                            used: Instant::now(),
                        })
                    }
                    Err(e) => {
                        log::warn!("{}: {e}", self.spec);
                        server.down_until = Some(Instant::now() + self.cfg.retry_interval);
                        last = Some(e);
                        continue;
                    }
                }
            }
            let Some(open) = server.open.as_mut() else {
                continue;
            };
            let quote = |text: &str, out: &mut String| K::quote(&open.conn, text, out);
            let Some(sql) = self.cfg.query.expand(&self.needs, key, key, &quote) else {
                return Ok(Vec::new());
            };
            match K::query(&mut open.conn, &server.name, &sql) {
                Ok(values) => {
                    open.used = Instant::now();
                    server.down_until = None;
                    return Ok(values);
                }
                Err(e) => {
                    log::warn!("{}: {e}", self.spec);
                    server.open = None;
                    server.down_until = Some(Instant::now() + self.cfg.retry_interval);
                    last = Some(e);
                }
            }
        }
        Err(MapError::Lookup {
            table: self.spec.clone(),
            reason: match last {
                Some(e) => e.to_string(),
                None => "no database server available (all failed recently)".into(),
            },
        })
    }
}

impl<K: Connector> Map for SqlMap<K> {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        // Fixed-string keys are folded as for every Postfix table of this kind; a NUL
        // cannot be sent in a query string.
        let key = key.to_lowercase();
        if key.is_empty() || key.contains('\0') || !self.domains.allows(&key)? {
            return Ok(None);
        }
        if self
            .cfg
            .query
            .expand(&self.needs, &key, &key, &no_quote)
            .is_none()
        {
            return Ok(None);
        }
        let values = self.run(&key)?;
        let mut out = String::new();
        let mut count = 0usize;
        for value in values.into_iter().flatten() {
            if value.is_empty() {
                log::warn!(
                    "table \"{}\": empty lookup result for: \"{key}\" -- ignored",
                    self.spec
                );
                continue;
            }
            let Some(formatted) =
                self.cfg
                    .result_format
                    .expand(&self.needs, &value, &key, &no_quote)
            else {
                continue;
            };
            count += 1;
            if self.cfg.expansion_limit > 0 && count > self.cfg.expansion_limit {
                log::warn!(
                    "{}: {}: Expansion limit exceeded for key: '{key}'",
                    self.spec,
                    self.cfg.file
                );
                return Err(MapError::Lookup {
                    table: self.spec.clone(),
                    reason: format!("expansion limit exceeded for key '{key}'"),
                });
            }
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&formatted);
        }
        Ok((!out.is_empty()).then_some(out))
    }

    fn spec(&self) -> &str {
        &self.spec
    }
}
