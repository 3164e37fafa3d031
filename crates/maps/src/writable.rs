//! `hash:FILE` and `btree:FILE` opened for writing (Postfix's O_RDWR|O_CREAT open,
//! used by the proxywrite service and by caches such as verify's): FILE.rdb itself is
//! the table (a cache has no source file), created empty (mode 0600) when missing,
//! with its directory (mode 0700) when that is missing too.
//!
//! The file is opened once and its descriptor kept, as Rostfix's daemons open their
//! caches as root before they drop privileges: data_directory stays root's, and the
//! process keeps writing through the descriptor afterwards (inside a chroot too).
//! Each change rewrites the file in place under an exclusive flock(2), then syncs it;
//! each lookup first re-reads the file (under a shared lock) when its size or
//! modification time moved, so two processes writing the same table see each other's
//! changes. A process that reads FILE.rdb by name without the lock (rostmap -q, a
//! read-only `hash:` table) could catch a rewrite half done and get a lookup error for
//! that one lookup. Every change costs the whole file: fine for small tables and
//! caches (thousands of entries), not a database.

use crate::error::MapError;
use crate::rdb::{encode, rdb_path, Rdb};
use crate::source::Entry;
use crate::Map;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The file's size and modification time when last read.
type Stamp = (u64, i64, i64);

struct State {
    file: File,
    table: Arc<Rdb>,
    stamp: Stamp,
}

/// A hash/btree table opened for writing.
pub struct Writable {
    spec: String,
    db: PathBuf,
    state: Mutex<State>,
}

fn stamp(file: &File, db: &Path) -> Result<Stamp, MapError> {
    let md = file.metadata().map_err(|e| MapError::io(db, e))?;
    Ok((md.len(), md.mtime(), md.mtime_nsec()))
}

/// The whole file, read through `file` from its start.
fn read_all(file: &mut File, db: &Path) -> Result<Rdb, MapError> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| MapError::io(db, e))?;
    Rdb::from_bytes(db, bytes)
}

/// `file` locked (shared or exclusive) while the guard lives. The lock is taken on a
/// duplicate descriptor (same open file description), so it is released on drop.
fn lock(file: &File, db: &Path, how: FlockArg) -> Result<Flock<File>, MapError> {
    let dup = file.try_clone().map_err(|e| MapError::io(db, e))?;
    Flock::lock(dup, how).map_err(|(_, errno)| MapError::io(db, std::io::Error::from(errno)))
}

impl Writable {
    /// Open (creating it when missing) `source`.rdb.
    pub fn open(spec: &str, source: &Path) -> Result<Writable, MapError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let db = rdb_path(source);
        if let Some(parent) = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && !p.exists())
        {
            // As the other caches: data_directory made on first use, private.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| MapError::io(parent, e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&db)
            .map_err(|e| MapError::io(&db, e))?;
        {
            let _guard = lock(&file, &db, FlockArg::LockExclusive)?;
            let empty = file.metadata().map_err(|e| MapError::io(&db, e))?.len() == 0;
            if empty {
                let bytes = encode(&[]).map_err(|reason| MapError::Corrupt {
                    path: db.clone(),
                    reason,
                })?;
                file.write_all(&bytes)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| MapError::io(&db, e))?;
            }
        }
        let table = {
            let _guard = lock(&file, &db, FlockArg::LockShared)?;
            read_all(&mut file, &db)?
        };
        let stamp = stamp(&file, &db)?;
        Ok(Writable {
            spec: spec.to_string(),
            db,
            state: Mutex::new(State {
                file,
                table: Arc::new(table),
                stamp,
            }),
        })
    }

    /// The current table, re-read when another writer changed the file.
    fn current(&self) -> Result<Arc<Rdb>, MapError> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = stamp(&st.file, &self.db)?;
        if now != st.stamp {
            let _guard = lock(&st.file, &self.db, FlockArg::LockShared)?;
            st.table = Arc::new(read_all(&mut st.file, &self.db)?);
            st.stamp = stamp(&st.file, &self.db)?;
        }
        Ok(Arc::clone(&st.table))
    }

    /// Apply `change` to the entries under the exclusive lock and write them back.
    fn rewrite<R>(&self, change: impl FnOnce(&mut Vec<Entry>) -> R) -> Result<R, MapError> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let _guard = lock(&st.file, &self.db, FlockArg::LockExclusive)?;
        // Read afresh under the lock: another writer may have changed it since.
        let mut entries: Vec<Entry> = read_all(&mut st.file, &self.db)?
            .entries()
            .into_iter()
            .map(|(key, value)| Entry {
                line: 0,
                key,
                value,
            })
            .collect();
        let result = change(&mut entries);
        entries.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        let bytes = encode(&entries).map_err(|reason| MapError::Corrupt {
            path: self.db.clone(),
            reason,
        })?;
        let file = &mut st.file;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&bytes))
            .and_then(|()| file.set_len(bytes.len() as u64))
            .and_then(|()| file.sync_data())
            .map_err(|e| MapError::io(&self.db, e))?;
        st.table = Arc::new(Rdb::from_bytes(&self.db, bytes)?);
        st.stamp = stamp(&st.file, &self.db)?;
        Ok(result)
    }
}

impl Map for Writable {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        self.current()?.get(&key.to_lowercase())
    }
    fn spec(&self) -> &str {
        &self.spec
    }
    fn entries(&self) -> Option<Result<Vec<(String, String)>, MapError>> {
        Some(self.current().map(|t| t.entries()))
    }
    fn update(&self, key: &str, value: &str) -> Result<(), MapError> {
        let (key, value) = (key.to_lowercase(), value.to_string());
        self.rewrite(
            move |entries| match entries.iter_mut().find(|e| e.key == key) {
                Some(e) => e.value = value,
                None => entries.push(Entry {
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
    use crate::hash::Indexed;

    #[test]
    fn a_table_opened_for_writing_is_created_updated_and_deleted_from() {
        let dir = std::env::temp_dir().join(format!("rostfix-writable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("cache");
        let w = Writable::open("btree:cache", &source).unwrap();
        assert_eq!(w.lookup("a").unwrap(), None);
        w.update("A", "1").unwrap();
        w.update("b", "2").unwrap();
        w.update("a", "3").unwrap();
        assert_eq!(w.lookup("a").unwrap(), Some("3".into()));
        // A reader by name sees the file's entries.
        let r = Indexed::open("btree:cache", &source).unwrap();
        assert_eq!(
            r.entries().unwrap(),
            [("a".into(), "3".into()), ("b".into(), "2".into())]
        );
        // A second writer (another process) sees the first one's changes, and the
        // first sees the second's.
        let w2 = Writable::open("btree:cache", &source).unwrap();
        assert_eq!(w2.lookup("b").unwrap(), Some("2".into()));
        assert!(w2.delete("a").unwrap());
        assert_eq!(w.lookup("a").unwrap(), None);
        assert!(!w.delete("a").unwrap());
        assert!(r.update("x", "y").is_err(), "opened read-only");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
