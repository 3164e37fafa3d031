//! The configuration file of a pgsql:, mysql: or sqlite: table (pgsql_table(5),
//! mysql_table(5), sqlite_table(5)): `name = value` lines in main.cf's shape, read
//! into [`SqlConfig`]. The password is kept out of `Debug` output so it never
//! reaches a log line.

use crate::error::MapError;
use crate::source::logical_lines;
use crate::sql::template::Template;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Postfix's default for retry_interval and idle_interval (seconds).
const DEF_INTERVAL: u64 = 60;
/// Rostfix's connect timeout when the file sets none (Postfix relies on the client
/// library's, which for libmysqlclient and libpq is "wait for the kernel").
const DEF_CONNECT_TIMEOUT: u64 = 10;
/// Rostfix's per-query timeout when the file sets none.
const DEF_QUERY_TIMEOUT: u64 = 30;

/// A password that prints as `*****`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "*****" })
    }
}

/// Everything one SQL table's file says.
#[derive(Debug, Clone)]
pub struct SqlConfig {
    /// The file, for messages.
    pub file: String,
    /// `hosts`: servers in the order given (pgsql/mysql; empty for sqlite).
    pub hosts: Vec<String>,
    /// `user`.
    pub user: String,
    /// `password`.
    pub password: Secret,
    /// `dbname` (for sqlite: `dbpath`).
    pub dbname: String,
    /// `query` (or the one built from table/select_field/where_field).
    pub query: Template,
    /// `result_format`, default `%s`.
    pub result_format: Template,
    /// `domain`: the list of domains whose addresses are looked up (empty: all keys).
    pub domain: Vec<String>,
    /// `expansion_limit`: at most this many results (0: no limit).
    pub expansion_limit: usize,
    /// `retry_interval`: how long a failed server is left alone.
    pub retry_interval: Duration,
    /// `idle_interval`: a connection unused this long is closed and reopened.
    pub idle_interval: Duration,
    /// `connect_timeout` (Rostfix's addition; Postfix leaves it to the client library).
    pub connect_timeout: Duration,
    /// `query_timeout` (Rostfix's addition).
    pub query_timeout: Duration,
}

/// Which flavour of file: they differ in the database parameter and the query
/// shorthands they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// pgsql_table(5): also `select_function`.
    Pgsql,
    /// mysql_table(5).
    Mysql,
    /// sqlite_table(5): `dbpath` instead of hosts/user/password/dbname.
    Sqlite,
}

/// Parse `name = value` text: main.cf's continuation and comment rules; a later
/// setting of the same name replaces an earlier one.
pub fn parse_settings(text: &[u8], file: &Path) -> Result<HashMap<String, String>, MapError> {
    let mut out = HashMap::new();
    for line in logical_lines(text) {
        let Some((name, value)) = line.text.split_once('=') else {
            return Err(MapError::Syntax {
                path: file.to_path_buf(),
                line: line.line,
                reason: "missing '=' after attribute name".into(),
            });
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(MapError::Syntax {
                path: file.to_path_buf(),
                line: line.line,
                reason: format!("bad attribute name \"{name}\""),
            });
        }
        out.insert(name.to_string(), value.trim().to_string());
    }
    Ok(out)
}

fn number(
    settings: &HashMap<String, String>,
    name: &str,
    default: u64,
    min: u64,
    file: &Path,
) -> Result<u64, MapError> {
    let Some(text) = settings.get(name) else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(MapError::BadSpec {
            spec: file.display().to_string(),
            reason: format!("bad numerical configuration: {name} = {text} (need >= {min})"),
        }),
    }
}

impl SqlConfig {
    /// Read and check `file`.
    pub fn load(file: &Path, flavour: Flavour) -> Result<SqlConfig, MapError> {
        let text = std::fs::read(file).map_err(|e| MapError::io(file, e))?;
        SqlConfig::parse(&text, file, flavour)
    }

    /// Check already-read text.
    pub fn parse(text: &[u8], file: &Path, flavour: Flavour) -> Result<SqlConfig, MapError> {
        let s = parse_settings(text, file)?;
        let get = |name: &str| s.get(name).cloned().unwrap_or_default();
        let bad = |reason: String| MapError::BadSpec {
            spec: file.display().to_string(),
            reason,
        };
        let query = match s.get("query") {
            Some(q) => q.clone(),
            None => legacy_query(&s, flavour).map_err(bad)?,
        };
        let query = Template::parse(&query, true).map_err(|e| bad(format!("query: {e}")))?;
        let result_format = s.get("result_format").map_or("%s", String::as_str);
        let result_format = Template::parse(result_format, false)
            .map_err(|e| bad(format!("result_format: {e}")))?;
        let dbname = match flavour {
            Flavour::Sqlite => get("dbpath"),
            _ => get("dbname"),
        };
        if dbname.is_empty() && flavour == Flavour::Sqlite {
            return Err(bad("missing dbpath".into()));
        }
        let hosts: Vec<String> = get("hosts")
            .split([',', ' ', '\t'])
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        let hosts = if hosts.is_empty() && flavour != Flavour::Sqlite {
            vec!["localhost".to_string()]
        } else {
            hosts
        };
        let domain = get("domain")
            .split([',', ' ', '\t'])
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        Ok(SqlConfig {
            file: file.display().to_string(),
            hosts,
            user: get("user"),
            password: Secret(get("password")),
            dbname,
            query,
            result_format,
            domain,
            expansion_limit: number(&s, "expansion_limit", 0, 0, file)? as usize,
            retry_interval: Duration::from_secs(number(
                &s,
                "retry_interval",
                DEF_INTERVAL,
                1,
                file,
            )?),
            idle_interval: Duration::from_secs(number(&s, "idle_interval", DEF_INTERVAL, 1, file)?),
            connect_timeout: Duration::from_secs(number(
                &s,
                "connect_timeout",
                DEF_CONNECT_TIMEOUT,
                1,
                file,
            )?),
            query_timeout: Duration::from_secs(number(
                &s,
                "query_timeout",
                DEF_QUERY_TIMEOUT,
                1,
                file,
            )?),
        })
    }
}

/// The query of files written before `query` existed: `select_field`, `table`,
/// `where_field`, `additional_conditions` (and pgsql's `select_function`).
fn legacy_query(s: &HashMap<String, String>, flavour: Flavour) -> Result<String, String> {
    if flavour == Flavour::Pgsql {
        if let Some(function) = s.get("select_function") {
            return Ok(format!("SELECT {function}('%s')"));
        }
    }
    let need = |name: &str| {
        s.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("neither 'query' nor '{name}' is set"))
    };
    let (table, select, field) = (need("table")?, need("select_field")?, need("where_field")?);
    let extra = s.get("additional_conditions").map_or("", String::as_str);
    Ok(format!(
        "SELECT {select} FROM {table} WHERE {field}='%s' {extra}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, flavour: Flavour) -> Result<SqlConfig, MapError> {
        SqlConfig::parse(text.as_bytes(), Path::new("/etc/t.cf"), flavour)
    }

    #[test]
    fn postfixadmin_style_file() {
        let c = parse(
            "# virtual mailboxes\nhosts = unix:/run/postgresql, inet:db1:5433 db2\n\
             user = postfix\npassword = s3cret\ndbname = mail\n\
             query = SELECT maildir FROM mailbox\n    WHERE username='%s' AND active = true\n\
             domain = example.com, example.org\nexpansion_limit = 5\nretry_interval = 2\n",
            Flavour::Pgsql,
        )
        .unwrap();
        assert_eq!(c.hosts, ["unix:/run/postgresql", "inet:db1:5433", "db2"]);
        assert_eq!((c.user.as_str(), c.dbname.as_str()), ("postfix", "mail"));
        assert_eq!(c.password.0, "s3cret");
        assert_eq!(
            c.query.text(),
            "SELECT maildir FROM mailbox    WHERE username='%s' AND active = true"
        );
        assert_eq!(c.domain, ["example.com", "example.org"]);
        assert_eq!(c.expansion_limit, 5);
        assert_eq!(c.retry_interval, Duration::from_secs(2));
        assert_eq!(c.idle_interval, Duration::from_secs(60));
        assert_eq!(c.result_format.text(), "%s");
    }

    #[test]
    fn password_never_in_debug_output() {
        let c = parse("password = hunter2\nquery = select 1\n", Flavour::Mysql).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.hosts, ["localhost"]);
    }

    #[test]
    fn legacy_fields_build_the_query() {
        let c = parse(
            "table = alias\nselect_field = goto\nwhere_field = address\n\
             additional_conditions = AND active = '1'\n",
            Flavour::Mysql,
        )
        .unwrap();
        assert_eq!(
            c.query.text(),
            "SELECT goto FROM alias WHERE address='%s' AND active = '1'"
        );
        let c = parse("select_function = lookup\n", Flavour::Pgsql).unwrap();
        assert_eq!(c.query.text(), "SELECT lookup('%s')");
        assert!(parse("table = x\n", Flavour::Mysql).is_err());
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(
            parse("query select\n", Flavour::Pgsql),
            Err(MapError::Syntax { line: 1, .. })
        ));
        assert!(parse("query = select '%x'\n", Flavour::Pgsql).is_err());
        assert!(parse("query = select 1\nretry_interval = 0\n", Flavour::Pgsql).is_err());
        assert!(parse("query = select 1\n", Flavour::Sqlite).is_err());
        let c = parse(
            "dbpath = /var/db/m.sqlite\nquery = select 1\n",
            Flavour::Sqlite,
        )
        .unwrap();
        assert_eq!(c.dbname, "/var/db/m.sqlite");
        assert!(c.hosts.is_empty());
    }
}
