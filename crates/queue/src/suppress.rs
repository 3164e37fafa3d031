//! The suppression list: recipients whose mail hard-bounced (docs/bulk-sending.md,
//! "Suppression"), kept in `$queue_directory/suppress/list` so chrooted smtpd can
//! read it. qmgr adds to it as outcomes arrive; `rostsuper -S` lists, adds and
//! removes entries.
//!
//! One line per address: `ADDRESS<TAB>EXPIRES<TAB>ADDED<TAB>REASON`, times in seconds
//! since the epoch, the address lower-cased. Every change takes an exclusive flock on
//! the `suppress/` directory, reads the list, changes it, writes a temporary file,
//! fsyncs it, renames it over the list and fsyncs the directory: readers (who take no
//! lock) see the old list or the new one, never half of one, a crash loses nothing
//! that was reported as added, and two writers cannot lose each other's entries.
//!
//! Lines that cannot be parsed are counted and skipped; before the next rewrite drops
//! them, the damaged file is copied to `suppress/list.corrupt` for the administrator.

use nix::fcntl::{Flock, FlockArg};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The directory under queue_directory.
pub const SUPPRESS_DIR: &str = "suppress";
const LIST_FILE: &str = "list";
const CORRUPT_FILE: &str = "list.corrupt";
/// A list larger than this is refused rather than read into memory.
const MAX_LIST_BYTES: u64 = 256 * 1024 * 1024;
/// Longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS: usize = 256;
/// Reasons are cut to this many bytes.
const MAX_REASON: usize = 512;

/// Why the list could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_LIST_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("not a valid address: {0:?}")]
    BadAddress(String),
}

fn io_err(path: &Path, source: std::io::Error) -> SuppressError {
    SuppressError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `rostfix_suppression_action`: what happens to mail for a listed address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuppressionAction {
    /// Nothing is recorded or checked.
    #[default]
    Off,
    /// smtpd refuses the RCPT of relayed mail; qmgr bounces what still arrives.
    Reject,
    /// Accepted, then bounced by qmgr without a connection.
    Bounce,
}

impl SuppressionAction {
    /// The value of `rostfix_suppression_action`.
    pub fn parse(value: &str) -> Result<SuppressionAction, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "off" | "no" | "" => Ok(SuppressionAction::Off),
            "reject" => Ok(SuppressionAction::Reject),
            "bounce" => Ok(SuppressionAction::Bounce),
            other => Err(format!(
                "rostfix_suppression_action = {other}: expected off, reject or bounce"
            )),
        }
    }
}

/// One suppressed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub address: String,
    /// Seconds since the epoch after which the entry no longer applies.
    pub expires: i64,
    pub added: i64,
    /// Why: class, status code and the start of the reply, e.g.
    /// `bad-mailbox 5.1.1 host mx said: 550 5.1.1 user unknown`.
    pub reason: String,
}

/// The list as read: live and expired entries, and how many lines were unreadable.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub entries: Vec<Entry>,
    pub bad_lines: usize,
}

/// The canonical form of an address: angle brackets and spaces trimmed, lower case.
/// None for something that cannot be an address (empty, white space or controls
/// inside, too long).
pub fn normalize_address(address: &str) -> Option<String> {
    let a = address.trim();
    let a = a
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(a)
        .trim();
    let ok = !a.is_empty()
        && a.len() <= MAX_ADDRESS
        && !a.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| a.to_lowercase())
}

/// Reason text fit for one field of one line.
fn clean_reason(reason: &str) -> String {
    let mut r: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if r.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        r.truncate(end);
    }
    r
}

fn parse_line(line: &str) -> Option<Entry> {
    let mut f = line.splitn(4, '\t');
    let address = normalize_address(f.next()?)?;
    let expires = f.next()?.trim().parse().ok()?;
    let added = f.next()?.trim().parse().ok()?;
    let reason = f.next().unwrap_or("").to_string();
    Some(Entry {
        address,
        expires,
        added,
        reason,
    })
}

fn parse(text: &str) -> Loaded {
    let mut out = Loaded::default();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(e) => out.entries.push(e),
            None => out.bad_lines += 1,
        }
    }
    out
}

fn render(entries: &BTreeMap<String, Entry>) -> String {
    let mut out = String::from("# rostfix suppression list: address, expires, added, reason\n");
    for e in entries.values() {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            e.address,
            e.expires,
            e.added,
            clean_reason(&e.reason)
        ));
    }
    out
}

/// The list of one queue directory.
#[derive(Debug, Clone)]
pub struct SuppressionStore {
    dir: PathBuf,
}

impl SuppressionStore {
    /// The list under `queue_directory` (an absolute path, or "." inside the chroot).
    pub fn new(queue_directory: &Path) -> SuppressionStore {
        SuppressionStore {
            dir: queue_directory.join(SUPPRESS_DIR),
        }
    }

    pub fn list_path(&self) -> PathBuf {
        self.dir.join(LIST_FILE)
    }

    /// Reads the list without a lock (it is only ever replaced by a rename). A
    /// missing list is an empty one.
    pub fn load(&self) -> Result<Loaded, SuppressError> {
        let path = self.list_path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
            Err(e) => return Err(io_err(&path, e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_LIST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(&path, e))?;
        if bytes.len() as u64 > MAX_LIST_BYTES {
            return Err(SuppressError::TooLarge { path });
        }
        Ok(parse(&String::from_utf8_lossy(&bytes)))
    }

    /// Adds or refreshes entries (the later expiry wins; the first `added` stays),
    /// dropping expired ones. Returns how many addresses were new.
    pub fn add(&self, new: &[Entry], now: i64) -> Result<usize, SuppressError> {
        for e in new {
            if normalize_address(&e.address).is_none() {
                return Err(SuppressError::BadAddress(e.address.clone()));
            }
        }
        self.change(now, |map| {
            let mut fresh = 0;
            for e in new {
                let Some(address) = normalize_address(&e.address) else {
                    continue;
                };
                match map.get_mut(&address) {
                    Some(old) => {
                        old.expires = old.expires.max(e.expires);
                        old.reason = e.reason.clone();
                    }
                    None => {
                        fresh += 1;
                        map.insert(
                            address.clone(),
                            Entry {
                                address,
                                ..e.clone()
                            },
                        );
                    }
                }
            }
            fresh
        })
    }

    /// Removes one address; true if it was listed (and not expired).
    pub fn remove(&self, address: &str, now: i64) -> Result<bool, SuppressError> {
        let address =
            normalize_address(address).ok_or_else(|| SuppressError::BadAddress(address.into()))?;
        self.change(now, |map| map.remove(&address).is_some())
    }

    /// Under the lock: read, drop expired entries, apply `f`, write back.
    fn change<T>(
        &self,
        now: i64,
        f: impl FnOnce(&mut BTreeMap<String, Entry>) -> T,
    ) -> Result<T, SuppressError> {
        let dir = File::open(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let _lock = Flock::lock(dir, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io_err(&self.dir, std::io::Error::from(errno)))?;
        let loaded = self.load()?;
        if loaded.bad_lines > 0 {
            log::warn!(
                "{}: {} unreadable line(s) skipped; the file is kept as {}",
                self.list_path().display(),
                loaded.bad_lines,
                CORRUPT_FILE
            );
            let copy = self.dir.join(CORRUPT_FILE);
            std::fs::copy(self.list_path(), &copy).map_err(|e| io_err(&copy, e))?;
        }
        let mut map: BTreeMap<String, Entry> = loaded
            .entries
            .into_iter()
            .filter(|e| e.expires > now)
            .map(|e| (e.address.clone(), e))
            .collect();
        let result = f(&mut map);
        self.write(&render(&map))?;
        Ok(result)
    }

    /// Replaces the list durably; the new file gets the directory's owner, so a list
    /// root edited stays readable and replaceable by mail_owner.
    fn write(&self, text: &str) -> Result<(), SuppressError> {
        let tmp = self
            .dir
            .join(format!("{LIST_FILE}.tmp.{}", std::process::id()));
        let owner = std::fs::metadata(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let _ = std::fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        let written = (|| {
            let meta = file.metadata()?;
            if meta.uid() != owner.uid() || meta.gid() != owner.gid() {
                std::os::unix::fs::fchown(&file, Some(owner.uid()), Some(owner.gid()))?;
            }
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, self.list_path())?;
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&self.list_path(), e));
        }
        Ok(())
    }
}

/// What identifies one version of the list file.
type Stamp = (u64, u64, i64, i64, u64);

/// A reader's copy of the list, reloaded when the file changes (one stat per
/// lookup: cheap enough for smtpd's RCPT and qmgr's activation).
#[derive(Debug)]
pub struct SuppressionCache {
    store: SuppressionStore,
    stamp: Option<Stamp>,
    expiry: BTreeMap<String, i64>,
}

impl SuppressionCache {
    pub fn new(store: SuppressionStore) -> SuppressionCache {
        SuppressionCache {
            store,
            stamp: None,
            expiry: BTreeMap::new(),
        }
    }

    /// True when `address` is listed and its entry has not expired. A list that
    /// cannot be read suppresses nothing (logged once per change of the file).
    pub fn is_suppressed(&mut self, address: &str, now: i64) -> bool {
        self.refresh();
        normalize_address(address)
            .and_then(|a| self.expiry.get(&a).copied())
            .is_some_and(|expires| expires > now)
    }

    fn refresh(&mut self) {
        let stamp = std::fs::metadata(self.store.list_path())
            .ok()
            .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()));
        if stamp == self.stamp {
            return;
        }
        self.stamp = stamp;
        self.expiry.clear();
        if stamp.is_none() {
            return;
        }
        match self.store.load() {
            Ok(loaded) => {
                for e in loaded.entries {
                    self.expiry.insert(e.address, e.expires);
                }
            }
            Err(e) => log::warn!("suppression list not used: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempRoot;

    fn entry(address: &str, expires: i64) -> Entry {
        Entry {
            address: address.into(),
            expires,
            added: 100,
            reason: "bad-mailbox 5.1.1 user unknown".into(),
        }
    }

    fn store(root: &TempRoot) -> SuppressionStore {
        std::fs::create_dir_all(root.path().join(SUPPRESS_DIR)).unwrap();
        SuppressionStore::new(root.path())
    }

    #[test]
    fn add_list_remove_and_normalize() {
        let root = TempRoot::new();
        let s = store(&root);
        assert!(s.load().unwrap().entries.is_empty());
        assert_eq!(s.add(&[entry("<Bob@Example.NET>", 1000)], 200).unwrap(), 1);
        assert_eq!(s.add(&[entry("bob@example.net", 2000)], 200).unwrap(), 0);
        let loaded = s.load().unwrap();
        assert_eq!(loaded.entries.len(), 1);
        assert_eq!(loaded.entries[0].address, "bob@example.net");
        assert_eq!(loaded.entries[0].expires, 2000);
        let mut cache = SuppressionCache::new(s.clone());
        assert!(cache.is_suppressed("BOB@example.net", 300));
        assert!(!cache.is_suppressed("alice@example.net", 300));
        assert!(s.remove("Bob@Example.net", 300).unwrap());
        assert!(!s.remove("bob@example.net", 300).unwrap());
        assert!(!cache.is_suppressed("bob@example.net", 300));
        assert!(matches!(
            s.add(&[entry("two words@x", 1)], 0),
            Err(SuppressError::BadAddress(_))
        ));
    }

    #[test]
    fn entries_expire() {
        let root = TempRoot::new();
        let s = store(&root);
        s.add(&[entry("old@x", 150), entry("new@x", 5000)], 100)
            .unwrap();
        let mut cache = SuppressionCache::new(s.clone());
        assert!(cache.is_suppressed("old@x", 140));
        assert!(!cache.is_suppressed("old@x", 150));
        // The next change drops the expired entry from the file.
        s.add(&[entry("other@x", 5000)], 200).unwrap();
        let addrs: Vec<String> = s
            .load()
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.address)
            .collect();
        assert_eq!(addrs, ["new@x", "other@x"]);
    }

    #[test]
    fn concurrent_adds_and_removes_lose_nothing() {
        let root = TempRoot::new();
        let s = store(&root);
        s.add(&[entry("gone@x", 9_999)], 0).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        s.add(&[entry(&format!("u{t}-{i}@x"), 9_999)], 0).unwrap();
                        if t == 0 && i == 10 {
                            assert!(s.remove("gone@x", 0).unwrap());
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let loaded = s.load().unwrap();
        assert_eq!(loaded.entries.len(), 8 * 25);
        assert!(!loaded.entries.iter().any(|e| e.address == "gone@x"));
    }

    #[test]
    fn corrupt_lines_are_skipped_and_kept_aside() {
        let root = TempRoot::new();
        let s = store(&root);
        std::fs::write(
            s.list_path(),
            b"# header\nok@x\t9999\t1\tbad-mailbox\nnot a line\nbad@x\tsoon\t1\tx\n\xff\xfe\tz\n",
        )
        .unwrap();
        let loaded = s.load().unwrap();
        assert_eq!(loaded.entries.len(), 1);
        assert_eq!(loaded.bad_lines, 3);
        let mut cache = SuppressionCache::new(s.clone());
        assert!(cache.is_suppressed("ok@x", 0));
        s.add(&[entry("new@x", 9999)], 0).unwrap();
        let kept = std::fs::read(root.path().join(SUPPRESS_DIR).join(CORRUPT_FILE)).unwrap();
        assert!(kept.windows(10).any(|w| w == b"not a line"));
        let after = s.load().unwrap();
        assert_eq!(after.bad_lines, 0);
        assert_eq!(after.entries.len(), 2);
    }

    #[test]
    fn reasons_cannot_break_lines() {
        let root = TempRoot::new();
        let s = store(&root);
        let mut e = entry("a@x", 9999);
        e.reason = "550\nforged@x\t1\t1\tx".into();
        s.add(&[e], 0).unwrap();
        let loaded = s.load().unwrap();
        assert_eq!(loaded.entries.len(), 1);
        assert_eq!(loaded.bad_lines, 0);
    }
}
