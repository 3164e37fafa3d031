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
        })
    }

    /// All entries in key order.
    pub fn entries(&self) -> Result<Vec<(String, String)>, MapError> {
        Ok(self.table.get()?.entries())
    }
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
}
