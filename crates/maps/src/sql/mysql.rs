//! The MySQL/MariaDB side of `mysql:` tables, over the blocking `mysql` crate.
//! `hosts` entries are Postfix's: `unix:/path/to/socket`, `inet:host[:port]` or
//! `host[:port]`.

use super::config::SqlConfig;
use super::template::{quote_backslash, quote_doubling};
use super::{Connector, SqlError};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, Value};

/// The default MySQL port.
const MYSQL_PORT: u16 = 3306;

/// Connects to MySQL or MariaDB servers.
pub struct Mysql;

/// The client options for one `hosts` entry.
pub fn my_opts(cfg: &SqlConfig, host: &str) -> Result<OptsBuilder, String> {
    let mut opts = OptsBuilder::new()
        .user((!cfg.user.is_empty()).then(|| cfg.user.clone()))
        .pass((!cfg.password.0.is_empty()).then(|| cfg.password.0.clone()))
        .db_name((!cfg.dbname.is_empty()).then(|| cfg.dbname.clone()))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(cfg.connect_timeout))
        .read_timeout(Some(cfg.query_timeout))
        .write_timeout(Some(cfg.query_timeout));
    if let Some(path) = host.strip_prefix("unix:") {
        opts = opts.socket(Some(path));
    } else {
        let target = host.strip_prefix("inet:").unwrap_or(host);
        let (name, port) = match target.rsplit_once(':') {
            Some((name, port)) => (
                name,
                port.parse::<u16>()
                    .map_err(|_| format!("bad port in \"{target}\""))?,
            ),
            None => (target, MYSQL_PORT),
        };
        opts = opts.ip_or_hostname(Some(name)).tcp_port(port);
    }
    Ok(opts)
}

fn text_of(value: Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::UInt(n) => Some(n.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(f) => Some(f.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

impl Connector for Mysql {
    type Conn = Conn;

    fn connect(&self, cfg: &SqlConfig, host: &str) -> Result<Conn, SqlError> {
        let err = |reason: String| SqlError::Connect {
            host: host.to_string(),
            reason,
        };
        Conn::new(my_opts(cfg, host).map_err(err)?).map_err(|e| err(e.to_string()))
    }

    fn quote(conn: &Conn, text: &str, out: &mut String) {
        // With NO_BACKSLASH_ESCAPES a backslash is an ordinary character, and
        // mysql_real_escape_string then doubles quotes instead.
        if conn.no_backslash_escape() {
            quote_doubling(text, out);
        } else {
            quote_backslash(text, out);
        }
    }

    fn query(conn: &mut Conn, host: &str, sql: &str) -> Result<Vec<Option<String>>, SqlError> {
        let err = |e: mysql::Error| SqlError::Query {
            host: host.to_string(),
            reason: e.to_string(),
        };
        let rows: Vec<mysql::Row> = conn.query(sql).map_err(err)?;
        Ok(rows
            .into_iter()
            .flat_map(|row| row.unwrap().into_iter().map(text_of))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::config::Flavour;
    use std::path::Path;

    #[test]
    fn host_forms() {
        let c = SqlConfig::parse(
            b"dbname = mail\nquery = select 1\n",
            Path::new("t.cf"),
            Flavour::Mysql,
        )
        .unwrap();
        let o: mysql::Opts = my_opts(&c, "inet:db:3307").unwrap().into();
        assert_eq!(
            (o.get_ip_or_hostname().to_string(), o.get_tcp_port()),
            ("db".into(), 3307)
        );
        let o: mysql::Opts = my_opts(&c, "unix:/run/mysqld/mysqld.sock").unwrap().into();
        assert_eq!(o.get_socket(), Some("/run/mysqld/mysqld.sock"));
        let o: mysql::Opts = my_opts(&c, "db").unwrap().into();
        assert_eq!(o.get_tcp_port(), MYSQL_PORT);
        assert!(my_opts(&c, "db:x").is_err());
    }

    #[test]
    fn values_as_text() {
        assert_eq!(text_of(Value::NULL), None);
        assert_eq!(text_of(Value::Int(-3)).as_deref(), Some("-3"));
        assert_eq!(
            text_of(Value::Bytes(b"a@b".to_vec())).as_deref(),
            Some("a@b")
        );
    }
}
