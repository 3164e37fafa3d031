//! The SQLite side of `sqlite:` tables, over `rusqlite` (the system libsqlite3).
//! The database (`dbpath`) is opened read-only; a missing or locked file is a
//! lookup error like an unreachable server.

use super::config::SqlConfig;
use super::template::quote_doubling;
use super::{Connector, SqlError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// Opens SQLite databases.
pub struct Sqlite;

fn text_of(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    }
}

impl Connector for Sqlite {
    type Conn = Connection;

    fn connect(&self, cfg: &SqlConfig, path: &str) -> Result<Connection, SqlError> {
        let err = |e: rusqlite::Error| SqlError::Connect {
            host: path.to_string(),
            reason: e.to_string(),
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        // A writer holding the lock makes the lookup wait this long, then fail.
        conn.busy_timeout(cfg.query_timeout).map_err(err)?;
        Ok(conn)
    }

    fn quote(_conn: &Connection, text: &str, out: &mut String) {
        quote_doubling(text, out);
    }

    fn query(
        conn: &mut Connection,
        path: &str,
        sql: &str,
    ) -> Result<Vec<Option<String>>, SqlError> {
        let err = |e: rusqlite::Error| SqlError::Query {
            host: path.to_string(),
            reason: e.to_string(),
        };
        let mut stmt = conn.prepare(sql).map_err(err)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            for i in 0..columns {
                out.push(text_of(row.get_ref(i).map_err(err)?));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::config::Flavour;
    use crate::sql::SqlMap;
    use crate::{Map, MapError};
    use std::path::Path;

    fn table(dir: &Path, extra: &str) -> SqlMap<Sqlite> {
        let db = dir.join("mail.sqlite");
        let cf = format!(
            "dbpath = {}\nquery = SELECT goto FROM alias WHERE address='%s' AND active = 1\n{extra}",
            db.display()
        );
        let cfg = SqlConfig::parse(cf.as_bytes(), Path::new("t.cf"), Flavour::Sqlite).unwrap();
        SqlMap::new("sqlite:t.cf", cfg, Sqlite).unwrap()
    }

    fn fill(dir: &Path) {
        let conn = Connection::open(dir.join("mail.sqlite")).unwrap();
        conn.execute_batch(
            "CREATE TABLE alias (address TEXT, goto TEXT, active INT);
             INSERT INTO alias VALUES ('info@example.com', 'alice@example.com', 1);
             INSERT INTO alias VALUES ('team@example.com', 'bob@example.com', 1);
             INSERT INTO alias VALUES ('team@example.com', 'carol@example.com', 1);
             INSERT INTO alias VALUES ('old@example.com', 'x@example.com', 0);
             INSERT INTO alias VALUES ('o''neil@example.com', 'oneil@example.net', 1);
             INSERT INTO alias VALUES ('empty@example.com', '', 1);
             INSERT INTO alias VALUES ('null@example.com', NULL, 1);",
        )
        .unwrap();
    }

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rostfix-sqlite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lookups() {
        let dir = tmpdir("lookups");
        fill(&dir);
        let t = table(&dir, "");
        assert_eq!(
            t.lookup("Info@Example.COM").unwrap().as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            t.lookup("team@example.com").unwrap().as_deref(),
            Some("bob@example.com,carol@example.com")
        );
        assert_eq!(t.lookup("old@example.com").unwrap(), None);
        assert_eq!(t.lookup("nobody@example.com").unwrap(), None);
        assert_eq!(t.lookup("empty@example.com").unwrap(), None);
        assert_eq!(t.lookup("null@example.com").unwrap(), None);
        // The quote in the key is escaped, so the row is found and nothing breaks out.
        assert_eq!(
            t.lookup("o'neil@example.com").unwrap().as_deref(),
            Some("oneil@example.net")
        );
        assert_eq!(t.lookup("x' OR '1'='1").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn domain_filter_result_format_and_limit() {
        let dir = tmpdir("options");
        fill(&dir);
        let t = table(&dir, "domain = example.org\n");
        assert_eq!(t.lookup("info@example.com").unwrap(), None);
        let t = table(&dir, "domain = example.com\nresult_format = smtp:[%d] %u\n");
        assert_eq!(
            t.lookup("info@example.com").unwrap().as_deref(),
            Some("smtp:[example.com] alice")
        );
        let t = table(&dir, "expansion_limit = 1\n");
        assert_eq!(
            t.lookup("info@example.com").unwrap().as_deref(),
            Some("alice@example.com")
        );
        assert!(matches!(
            t.lookup("team@example.com"),
            Err(MapError::Lookup { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_database_is_a_lookup_error_not_not_found() {
        let dir = tmpdir("missing");
        let t = table(&dir, "");
        assert!(matches!(
            t.lookup("info@example.com"),
            Err(MapError::Lookup { .. })
        ));
        // Once the database exists, the same table answers (after retry_interval).
        fill(&dir);
        let t = table(&dir, "retry_interval = 1\n");
        assert_eq!(
            t.lookup("info@example.com").unwrap().as_deref(),
            Some("alice@example.com")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
