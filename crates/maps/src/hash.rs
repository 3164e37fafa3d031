//! Fixed-string tables: `texthash:` (the source text read into memory) and `hash:` /
//! `btree:` (the .rdb file rostmap builds next to the source). Keys are case-folded to
//! lower case both when built and when looked up, as Postfix does for these types.

use crate::error::MapError;
use crate::rdb::{rdb_path, Rdb};
use crate::reload::Watched;
use crate::source::{dedup_first, parse_aliases, parse_postmap};
use crate::Map;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Which source syntax a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceSyntax {
    /// postmap(5): `key value`.
    Postmap,
    /// aliases(5): `name: value, value`.
    Aliases,
}

/// Read and parse a source file into de-duplicated, case-folded entries.
pub fn read_source(
    path: &Path,
    syntax: SourceSyntax,
) -> Result<Vec<crate::source::Entry>, MapError> {
    let bytes = std::fs::read(path).map_err(|e| MapError::io(path, e))?;
    Ok(dedup_first(match syntax {
        SourceSyntax::Postmap => parse_postmap(&bytes, true),
        SourceSyntax::Aliases => parse_aliases(&bytes, true),
    }))
}

/// `texthash:FILE`.
pub struct TextHash {
    spec: String,
    table: Watched<HashMap<String, String>>,
}

impl TextHash {
    /// Read `path` now.
    pub fn open(spec: &str, path: &Path) -> Result<TextHash, MapError> {
        let p = path.to_path_buf();
        let table = Watched::new(
            vec![p.clone()],
            Box::new(move || {
                Ok(read_source(&p, SourceSyntax::Postmap)?
                    .into_iter()
                    .map(|e| (e.key, e.value))
                    .collect())
            }),
        )?;
        Ok(TextHash {
            spec: spec.to_string(),
            table,
        })
    }
}

impl Map for TextHash {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        Ok(self.table.get()?.get(&key.to_lowercase()).cloned())
    }
    fn spec(&self) -> &str {
        &self.spec
    }
    fn entries(&self) -> Option<Result<Vec<(String, String)>, MapError>> {
        Some(self.table.get().map(|t| {
            let mut v: Vec<(String, String)> =
                t.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            v.sort();
            v
        }))
    }
}

/// Open the .rdb for `source`, refusing one that is missing. One older than its source
/// is used with a warning, as Postfix does ("database X is older than source file Y"):
/// an edited table whose rostmap was forgotten must not stop every daemon that reads
/// it; `rostfix check` names it too.
pub fn open_indexed_file(source: &Path) -> Result<Rdb, MapError> {
    let db = rdb_path(source);
    let db_md = std::fs::metadata(&db);
    let src_md = std::fs::metadata(source);
    match (&db_md, &src_md) {
        (Err(e), Ok(_)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MapError::Stale {
                db,
                state: "missing for",
                source_file: source.to_path_buf(),
            })
        }
        (Ok(d), Ok(s)) => {
            if let (Ok(dm), Ok(sm)) = (d.modified(), s.modified()) {
                if dm < sm {
                    log::warn!(
                        "database {} is older than source file {}",
                        db.display(),
                        source.display()
                    );
                }
            }
        }
        // No source (only the .rdb was installed) is fine; other errors show on open.
        _ => {}
    }
    Rdb::open(&db)
}

/// `hash:FILE` and `btree:FILE`: both read FILE.rdb.
pub struct Indexed {
    spec: String,
    table: Watched<Rdb>,
    /// Set when opened for writing: FILE.rdb.
    db: Option<PathBuf>,
}

impl Indexed {
    /// Open `source`.rdb now.
    pub fn open(spec: &str, source: &Path) -> Result<Indexed, MapError> {
        let src: PathBuf = source.to_path_buf();
        let files = vec![src.clone(), rdb_path(&src)];
        let table = Watched::new(files, Box::new(move || open_indexed_file(&src)))?;
        Ok(Indexed {
            spec: spec.to_string(),
            table,
            db: None,
        })
    }

    /// Open `source`.rdb to write it, creating it empty (mode 0600) when missing, as
    /// Postfix creates a cache's btree file. Each update or delete rewrites the whole
    /// file atomically under an exclusive lock on `source`.rdb.lock, so concurrent
    /// writers (proxywrite's pooled instances, several processes) never lose one
    /// another's change: fine for the small tables written this way (caches, a few
    /// thousand entries), not a database.
    pub fn open_for_write(spec: &str, source: &Path) -> Result<Indexed, MapError> {
        let db = rdb_path(source);
        if !db.exists() {
            let _lock = write_lock(&db)?;
            if !db.exists() {
                crate::rdb::write_atomic(&db, &[])?;
            }
        }
        let loaded = db.clone();
        let table = Watched::new(vec![db.clone()], Box::new(move || Rdb::open(&loaded)))?;
        Ok(Indexed {
            spec: spec.to_string(),
            table,
            db: Some(db),
        })
    }

    /// Apply `change` to the entries of the file opened for writing, under the lock.
    fn rewrite<R>(
        &self,
        change: impl FnOnce(&mut Vec<crate::source::Entry>) -> R,
    ) -> Result<R, MapError> {
        let Some(db) = &self.db else {
            return Err(MapError::NotWritable {
                table: self.spec.clone(),
                reason: "table not opened for writing".into(),
            });
        };
        let _lock = write_lock(db)?;
        // Read afresh under the lock: another writer may have changed it since.
        let mut entries: Vec<crate::source::Entry> = Rdb::open(db)?
            .entries()
            .into_iter()
            .map(|(key, value)| crate::source::Entry {
                line: 0,
                key,
                value,
            })
            .collect();
        let result = change(&mut entries);
        entries.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        crate::rdb::write_atomic(db, &entries)?;
        self.table.reload_now()?;
        Ok(result)
    }

    /// All entries in key order.
    pub fn entries(&self) -> Result<Vec<(String, String)>, MapError> {
        Ok(self.table.get()?.entries())
    }
}

/// An exclusive lock on `db`.lock, held while the guard lives.
fn write_lock(db: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, MapError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut path = db.as_os_str().to_os_string();
    path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| MapError::io(&path, e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| MapError::io(&path, std::io::Error::from(errno)))
}

impl Map for Indexed {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        self.table.get()?.get(&key.to_lowercase())
    }
    fn spec(&self) -> &str {
        &self.spec
    }
    fn entries(&self) -> Option<Result<Vec<(String, String)>, MapError>> {
        Some(Indexed::entries(self))
    }
    fn update(&self, key: &str, value: &str) -> Result<(), MapError> {
        let (key, value) = (key.to_lowercase(), value.to_string());
        self.rewrite(
            move |entries| match entries.iter_mut().find(|e| e.key == key) {
                Some(e) => e.value = value,
                None => entries.push(crate::source::Entry {
                    line: 0,
                    key,
                    value,
                }),
            },
        )
    }
    fn delete(&self, key: &str) -> Result<bool, MapError> {
        let key = key.to_lowercase();
        self.rewrite(move |entries| {
            let before = entries.len();
            entries.retain(|e| e.key != key);
            entries.len() != before
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Map;

    #[test]
    fn a_table_opened_for_writing_is_created_updated_and_deleted_from() {
        let dir = std::env::temp_dir().join(format!("rostfix-hash-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("cache");
        let w = Indexed::open_for_write("btree:cache", &source).unwrap();
        assert_eq!(w.lookup("a").unwrap(), None);
        w.update("A", "1").unwrap();
        w.update("b", "2").unwrap();
        w.update("a", "3").unwrap();
        // Seen at once by the writer, and by a reader opened afterwards.
        assert_eq!(w.lookup("a").unwrap(), Some("3".into()));
        let r = Indexed::open("btree:cache", &source).unwrap();
        assert_eq!(
            r.entries().unwrap(),
            [("a".into(), "3".into()), ("b".into(), "2".into())]
        );
        assert!(w.delete("a").unwrap());
        assert!(!w.delete("a").unwrap());
        assert_eq!(w.lookup("a").unwrap(), None);
        assert!(r.update("x", "y").is_err(), "opened read-only");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
