//! The temporary allowlist (postscreen_cache_map): per client address, until when
//! each test it passed stays passed. Held in memory and written to a small text file
//! of Rostfix's own (not Postfix's btree format): the path of postscreen_cache_map
//! with its `type:` (btree, hash, lmdb, proxy:...) ignored. The file is opened before
//! the chroot and kept open, rewritten whole after each change, merged first with
//! what another postscreen process (a reload's old one) wrote; one line per client,
//! `ADDRESS PREGREET DNSBL PIPELINING NON_SMTP BARE_NEWLINE`, each a Unix time (0 =
//! not passed). Entries whose every time is older than postscreen_cache_retention_time
//! are dropped at load and every postscreen_cache_cleanup_interval.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The first line of a cache file, so that a file of another format (Postfix's own
/// btree cache left in place) is recognised and replaced rather than misread.
const HEADER: &str = "# rostfix postscreen cache v1";

/// The tests whose results are cached, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    Pregreet = 0,
    Dnsbl = 1,
    Pipelining = 2,
    NonSmtp = 3,
    BareNewline = 4,
}

pub const TEST_COUNT: usize = 5;

/// Until when (Unix seconds) each test stays passed; 0 = not passed.
pub type Stamps = [u64; TEST_COUNT];

/// Why the cache file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("postscreen_cache_map: \"{0}\" is not type:pathname")]
    Spec(String),
    #[error("open postscreen cache {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The cache: memory plus, when there is one, its file.
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<IpAddr, Stamps>,
    file: Option<File>,
    retention: u64,
    cleanup_every: u64,
    last_cleanup: u64,
}

/// The path of a `type:path` (or `proxy:type:path`) postscreen_cache_map.
pub fn cache_path(spec: &str) -> Result<PathBuf, CacheError> {
    let mut rest = spec;
    while let Some((kind, tail)) = rest.split_once(':') {
        if kind.contains('/') {
            break;
        }
        rest = tail;
    }
    if rest == spec || !rest.starts_with('/') {
        return Err(CacheError::Spec(spec.to_string()));
    }
    Ok(PathBuf::from(rest))
}

impl Cache {
    /// A cache kept in memory only.
    pub fn in_memory(retention: u64, cleanup_every: u64, now: u64) -> Cache {
        Cache {
            entries: HashMap::new(),
            file: None,
            retention,
            cleanup_every,
            last_cleanup: now,
        }
    }

    /// Opens (creating it, mode 0600) and loads the file at `path`. Returns the cache
    /// and a warning per line or file it could not use.
    pub fn open(
        path: &Path,
        retention: u64,
        cleanup_every: u64,
        now: u64,
    ) -> Result<(Cache, Vec<String>), CacheError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        // data_directory is not made by anyone else; Postfix's `postfix check` would.
        if let Some(parent) = path.parent().filter(|p| !p.exists()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|source| CacheError::Open {
                    path: parent.to_path_buf(),
                    source,
                })?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|source| CacheError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let mut bytes = Vec::new();
        // A cache is an optimisation: an unreadable one is started afresh.
        let mut warnings = Vec::new();
        if let Err(e) = file.read_to_end(&mut bytes) {
            warnings.push(format!(
                "{}: read: {e}; starting an empty cache",
                path.display()
            ));
            bytes.clear();
        }
        let mut cache = Cache::in_memory(retention, cleanup_every, now);
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        match lines.next() {
            None => {}
            Some(HEADER) => {
                for (n, line) in lines.enumerate() {
                    match parse_line(line) {
                        Some((addr, stamps)) => {
                            cache.entries.insert(addr, stamps);
                        }
                        None => warnings.push(format!(
                            "{}, line {}: malformed cache entry; ignored",
                            path.display(),
                            n + 2
                        )),
                    }
                }
            }
            Some(_) => warnings.push(format!(
                "{}: not a Rostfix postscreen cache (a Postfix database?); replacing it",
                path.display()
            )),
        }
        cache.file = Some(file);
        cache.remove_expired(now);
        if let Err(e) = cache.save(Some(now)) {
            warnings.push(format!("{}: write: {e}", path.display()));
        }
        Ok((cache, warnings))
    }

    /// The stamps of `addr`, if cached.
    pub fn get(&self, addr: IpAddr) -> Option<Stamps> {
        self.entries.get(&addr).copied()
    }

    /// Records `stamps` for `addr` and writes the file.
    pub fn put(&mut self, addr: IpAddr, stamps: Stamps, now: u64) -> io::Result<()> {
        self.entries.insert(addr, stamps);
        let cleanup =
            self.cleanup_every > 0 && now.saturating_sub(self.last_cleanup) >= self.cleanup_every;
        if cleanup {
            self.last_cleanup = now;
        }
        self.save(cleanup.then_some(now))
    }

    fn remove_expired(&mut self, now: u64) {
        let horizon = now.saturating_sub(self.retention);
        self.entries
            .retain(|_, stamps| stamps.iter().any(|&t| t > horizon));
    }

    /// Writes the file, first taking in what another postscreen wrote there since
    /// (during a reload the old process finishes its clients while the new one takes
    /// new ones): per client and test, the later time wins. `cleanup_at`: drop the
    /// entries past retention, after the merge so that none comes back from the file.
    fn save(&mut self, cleanup_at: Option<u64>) -> io::Result<()> {
        let mut bytes = Vec::new();
        if let Some(file) = self.file.as_mut() {
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut bytes)?;
        }
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        if lines.next() == Some(HEADER) {
            for (addr, theirs) in lines.filter_map(parse_line) {
                let ours = self.entries.entry(addr).or_insert([0; TEST_COUNT]);
                for (o, t) in ours.iter_mut().zip(theirs) {
                    *o = (*o).max(t);
                }
            }
        }
        if let Some(now) = cleanup_at {
            self.remove_expired(now);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let mut text = String::with_capacity(64 * (self.entries.len() + 1));
        text.push_str(HEADER);
        text.push('\n');
        let mut addrs: Vec<&IpAddr> = self.entries.keys().collect();
        addrs.sort();
        for addr in addrs {
            let s = self.entries[addr];
            text.push_str(&format!(
                "{addr} {} {} {} {} {}\n",
                s[0], s[1], s[2], s[3], s[4]
            ));
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(text.as_bytes())?;
        file.flush()
    }
}

fn parse_line(line: &str) -> Option<(IpAddr, Stamps)> {
    let mut fields = line.split_whitespace();
    let addr: IpAddr = fields.next()?.parse().ok()?;
    let mut stamps = [0u64; TEST_COUNT];
    for slot in stamps.iter_mut() {
        *slot = fields.next()?.parse().ok()?;
    }
    fields.next().is_none().then_some((addr, stamps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("rostfix-postscreen-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn the_path_is_taken_from_any_table_type() {
        assert_eq!(
            cache_path("btree:/var/lib/rostfix/postscreen_cache").unwrap(),
            PathBuf::from("/var/lib/rostfix/postscreen_cache")
        );
        assert_eq!(
            cache_path("proxy:btree:/var/lib/x").unwrap(),
            PathBuf::from("/var/lib/x")
        );
        assert!(cache_path("/var/lib/x").is_err());
        assert!(cache_path("btree:relative").is_err());
    }

    #[test]
    fn entries_survive_a_reopen_and_expired_ones_go() {
        let path = temp_path("reopen");
        let addr: IpAddr = "192.0.2.7".parse().unwrap();
        let old: IpAddr = "192.0.2.8".parse().unwrap();
        {
            let (mut c, w) = Cache::open(&path, 100, 10, 1000).unwrap();
            assert!(w.is_empty(), "{w:?}");
            c.put(addr, [2000, 1500, 0, 0, 0], 1000).unwrap();
            c.put(old, [1001, 0, 0, 0, 0], 1000).unwrap();
        }
        let (c, w) = Cache::open(&path, 100, 10, 1050).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.get(addr), Some([2000, 1500, 0, 0, 0]));
        assert!(c.get(old).is_some());
        // 1001 is older than now (1200) minus the retention (100): dropped.
        let (c, _) = Cache::open(&path, 100, 10, 1200).unwrap();
        assert_eq!(c.get(addr), Some([2000, 1500, 0, 0, 0]));
        assert_eq!(c.get(old), None);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_memory_cache_forgets_old_entries_at_cleanup() {
        let mut c = Cache::in_memory(100, 10, 1000);
        let old: IpAddr = "192.0.2.5".parse().unwrap();
        let young: IpAddr = "192.0.2.6".parse().unwrap();
        c.put(old, [1001, 0, 0, 0, 0], 1000).unwrap();
        c.put(young, [1500, 0, 0, 0, 0], 1005).unwrap();
        assert!(c.get(old).is_some());
        // At 1200 the cleanup is due and 1001 is past the 100 s retention.
        c.put(young, [1600, 0, 0, 0, 0], 1200).unwrap();
        assert_eq!(c.get(old), None);
        assert_eq!(c.get(young), Some([1600, 0, 0, 0, 0]));
    }

    #[test]
    fn two_processes_sharing_the_file_keep_each_others_entries() {
        let path = temp_path("shared");
        let (a_addr, b_addr): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let (mut old, _) = Cache::open(&path, 1000, 0, 1000).unwrap();
        let (mut new, _) = Cache::open(&path, 1000, 0, 1000).unwrap();
        new.put(b_addr, [5000, 0, 0, 0, 0], 1000).unwrap();
        old.put(a_addr, [4000, 0, 0, 0, 0], 1000).unwrap();
        new.put(a_addr, [0, 3000, 0, 0, 0], 1000).unwrap();
        let (merged, _) = Cache::open(&path, 1000, 0, 1000).unwrap();
        assert_eq!(merged.get(a_addr), Some([4000, 3000, 0, 0, 0]));
        assert_eq!(merged.get(b_addr), Some([5000, 0, 0, 0, 0]));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_foreign_or_damaged_file_is_not_misread() {
        let path = temp_path("foreign");
        std::fs::write(&path, b"\x00\x06\x15\x61btree").unwrap();
        let (c, w) = Cache::open(&path, 100, 10, 1000).unwrap();
        assert_eq!(c.get("192.0.2.7".parse().unwrap()), None);
        assert!(w[0].contains("not a Rostfix postscreen cache"), "{w:?}");
        std::fs::write(
            &path,
            format!("{HEADER}\n192.0.2.7 5000 0 0 0 0\ngarbage\n192.0.2.9 1 2\n"),
        )
        .unwrap();
        let (c, w) = Cache::open(&path, 100, 10, 1000).unwrap();
        assert_eq!(
            c.get("192.0.2.7".parse().unwrap()),
            Some([5000, 0, 0, 0, 0])
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("line 3"), "{w:?}");
        let _ = std::fs::remove_file(path);
    }
}
