//! The PostgreSQL side of `pgsql:` tables, over the `postgres` crate (rust-postgres's
//! blocking client; no libpq). `hosts` entries are Postfix's: a connection URI
//! (`postgresql://...`), `unix:/socket/dir` or `/socket/dir`, `inet:host:port` or
//! `host[:port]`.

use super::config::SqlConfig;
use super::template::{quote_doubling, quote_doubling_backslash};
use super::{Connector, SqlError};
use postgres::{Client, NoTls, SimpleQueryMessage};

/// The default PostgreSQL port.
const PG_PORT: u16 = 5432;

/// A connection and how it wants strings escaped.
pub struct PgConn {
    client: Client,
    /// standard_conforming_strings is off: backslashes in strings are escapes.
    backslash_escapes: bool,
}

/// Connects to PostgreSQL servers.
pub struct Pgsql;

/// The client configuration for one `hosts` entry.
pub fn pg_config(cfg: &SqlConfig, host: &str) -> Result<postgres::Config, String> {
    let mut pc = if host.starts_with("postgresql://") || host.starts_with("postgres://") {
        // A URI names its own database, user and password, as libpq reads it.
        host.parse::<postgres::Config>()
            .map_err(|e| e.to_string())?
    } else {
        let target = host
            .strip_prefix("unix:")
            .or_else(|| host.strip_prefix("inet:"))
            .unwrap_or(host);
        let mut pc = postgres::Config::new();
        if target.starts_with('/') {
            pc.host_path(target);
        } else {
            let (name, port) = match target.rsplit_once(':') {
                Some((name, port)) => (
                    name,
                    port.parse::<u16>()
                        .map_err(|_| format!("bad port in \"{target}\""))?,
                ),
                None => (target, PG_PORT),
            };
            pc.host(name).port(port);
        }
        if cfg.dbname.is_empty() {
            return Err(format!("host target '{host}' requires dbname setting"));
        }
        pc.dbname(&cfg.dbname);
        if !cfg.user.is_empty() {
            pc.user(&cfg.user);
        }
        if !cfg.password.0.is_empty() {
            pc.password(&cfg.password.0);
        }
        pc
    };
    // The server ends a query that runs too long; the kernel gives up on a peer
    // that stops acknowledging, so a dead server cannot hang a lookup forever.
    let timeout_ms = cfg.query_timeout.as_millis();
    pc.connect_timeout(cfg.connect_timeout)
        .tcp_user_timeout(cfg.query_timeout)
        .keepalives(true)
        .options(&format!("-c statement_timeout={timeout_ms}"))
        .application_name("rostfix");
    Ok(pc)
}

impl Connector for Pgsql {
    type Conn = PgConn;

    fn connect(&self, cfg: &SqlConfig, host: &str) -> Result<PgConn, SqlError> {
        let err = |reason: String| SqlError::Connect {
            host: host.to_string(),
            reason,
        };
        let mut client = pg_config(cfg, host)
            .map_err(err)?
            .connect(NoTls)
            .map_err(|e| err(e.to_string()))?;
        let mut backslash_escapes = false;
        for msg in client
            .simple_query("SHOW standard_conforming_strings")
            .map_err(|e| err(e.to_string()))?
        {
            if let SimpleQueryMessage::Row(row) = msg {
                backslash_escapes = row.get(0) == Some("off");
            }
        }
        Ok(PgConn {
            client,
            backslash_escapes,
        })
    }

    fn quote(conn: &PgConn, text: &str, out: &mut String) {
        if conn.backslash_escapes {
            quote_doubling_backslash(text, out);
        } else {
            quote_doubling(text, out);
        }
    }

    fn query(conn: &mut PgConn, host: &str, sql: &str) -> Result<Vec<Option<String>>, SqlError> {
        let messages = conn.client.simple_query(sql).map_err(|e| SqlError::Query {
            host: host.to_string(),
            reason: e.to_string(),
        })?;
        let mut out = Vec::new();
        for msg in messages {
            if let SimpleQueryMessage::Row(row) = msg {
                out.extend((0..row.len()).map(|i| row.get(i).map(str::to_string)));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::config::Flavour;
    use std::path::Path;

    fn cfg() -> SqlConfig {
        SqlConfig::parse(
            b"dbname = mail\nuser = pf\npassword = pw\nquery = select 1\n",
            Path::new("t.cf"),
            Flavour::Pgsql,
        )
        .unwrap()
    }

    #[test]
    fn host_forms() {
        let c = cfg();
        let pc = pg_config(&c, "inet:db.example:5433").unwrap();
        assert_eq!(pc.get_ports(), [5433]);
        assert_eq!(pc.get_dbname(), Some("mail"));
        let pc = pg_config(&c, "db.example").unwrap();
        assert_eq!(pc.get_ports(), [PG_PORT]);
        let pc = pg_config(&c, "unix:/run/postgresql").unwrap();
        assert!(matches!(
            pc.get_hosts()[0],
            postgres::config::Host::Unix(ref p) if p == Path::new("/run/postgresql")
        ));
        let pc = pg_config(&c, "postgresql://u@h:6000/other").unwrap();
        assert_eq!(pc.get_dbname(), Some("other"));
        assert!(pg_config(&c, "h:notaport").is_err());
    }

    #[test]
    fn unreachable_server_is_a_lookup_error() {
        // Port 1 on loopback: nothing listens there.
        let c = SqlConfig::parse(
            b"hosts = inet:127.0.0.1:1\ndbname = m\nquery = SELECT '%s'\nconnect_timeout = 2\n",
            Path::new("t.cf"),
            Flavour::Pgsql,
        )
        .unwrap();
        let map = crate::sql::SqlMap::new("pgsql:t.cf", c, Pgsql).unwrap();
        use crate::Map;
        assert!(matches!(
            map.lookup("a@b"),
            Err(crate::MapError::Lookup { .. })
        ));
    }
}
