//! The policy cache (RFC 8461 section 5.1), kept in the file rostfix_mta_sts_cache so
//! it survives restarts: a policy stays usable for its max_age even when the policy
//! host or the TXT record disappears, which is what defeats an attacker who blocks
//! them. Opened before confinement (the file under data_directory is created by
//! root, mode 0600, and then used through the open descriptor).
//!
//! Format: the [`HEADER`] line, then one JSON object per domain
//! (`{"domain":..,"id":..,"fetched":..,"policy":{..}}`). The whole file is rewritten
//! on each change: there is one entry per policy domain, few and small.

use crate::policy::Policy;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The first line of a cache file.
pub const HEADER: &str = "# rostfix mta-sts cache v1";
/// The file is read up to this size; entries are a few hundred bytes.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// One domain's policy, with the TXT id it was fetched under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub domain: String,
    pub id: String,
    /// Unix seconds of the fetch.
    pub fetched: u64,
    pub policy: Policy,
}

impl Entry {
    /// Usable until max_age after the fetch.
    pub fn fresh(&self, now: u64) -> bool {
        now < self.fetched.saturating_add(self.policy.max_age)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The cache, in memory and (unless it is memory-only) in its file.
pub struct Cache {
    file: Option<(PathBuf, File)>,
    entries: HashMap<String, Entry>,
}

impl Cache {
    pub fn in_memory() -> Cache {
        Cache {
            file: None,
            entries: HashMap::new(),
        }
    }

    /// Opens (creating) the file and loads its fresh entries; malformed lines are
    /// reported and dropped.
    pub fn open(path: &Path, now: u64) -> Result<(Cache, Vec<String>), CacheError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let open_err = |source| CacheError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && !p.exists())
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(open_err)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(open_err)?;
        let mut bytes = Vec::new();
        (&mut file)
            .take(MAX_FILE)
            .read_to_end(&mut bytes)
            .map_err(open_err)?;
        let mut warnings = Vec::new();
        let mut entries = HashMap::new();
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || (n == 0 && line == HEADER) {
                continue;
            }
            match serde_json::from_str::<Entry>(line) {
                Ok(e) if e.fresh(now) => {
                    entries.insert(e.domain.clone(), e);
                }
                Ok(_) => {}
                Err(e) => warnings.push(format!(
                    "{}, line {}: malformed cache entry ({e}); ignored",
                    path.display(),
                    n + 1
                )),
            }
        }
        let cache = Cache {
            file: Some((path.to_path_buf(), file)),
            entries,
        };
        Ok((cache, warnings))
    }

    /// The fresh policy of `domain`, if any.
    pub fn get(&self, domain: &str, now: u64) -> Option<&Entry> {
        self.entries.get(domain).filter(|e| e.fresh(now))
    }

    /// Stores `entry` (dropping expired ones) and rewrites the file.
    pub fn put(&mut self, entry: Entry, now: u64) -> Result<(), CacheError> {
        self.entries.retain(|_, e| e.fresh(now));
        self.entries.insert(entry.domain.clone(), entry);
        self.save()
    }

    fn save(&mut self) -> Result<(), CacheError> {
        let Some((path, file)) = &mut self.file else {
            return Ok(());
        };
        let mut text = format!("{HEADER}\n");
        let mut domains: Vec<&String> = self.entries.keys().collect();
        domains.sort();
        for d in domains {
            if let Ok(line) = serde_json::to_string(&self.entries[d]) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(text.as_bytes())?;
            file.sync_data()
        };
        write(file).map_err(|source| CacheError::Write {
            path: path.clone(),
            source,
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Mode;

    fn entry(domain: &str, fetched: u64, max_age: u64) -> Entry {
        Entry {
            domain: domain.into(),
            id: "1".into(),
            fetched,
            policy: Policy {
                mode: Mode::Enforce,
                mx: vec!["mx.example".into()],
                max_age,
            },
        }
    }

    #[test]
    fn entries_survive_a_reopen_until_max_age() {
        let dir = std::env::temp_dir().join(format!("mtasts-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cache");
        let _ = std::fs::remove_file(&path);
        let (mut c, w) = Cache::open(&path, 1000).unwrap();
        assert!(w.is_empty());
        c.put(entry("a.example", 1000, 100), 1000).unwrap();
        c.put(entry("b.example", 1000, 10), 1000).unwrap();
        drop(c);
        let (c, w) = Cache::open(&path, 1050).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.get("a.example", 1050).unwrap().policy.max_age, 100);
        assert!(c.get("b.example", 1050).is_none());
        assert!(c.get("a.example", 1100).is_none());
        std::fs::write(&path, format!("{HEADER}\nnot json\n")).unwrap();
        let (c, w) = Cache::open(&path, 1050).unwrap();
        assert!(c.is_empty() && w.len() == 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
