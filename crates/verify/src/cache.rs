//! The address verification cache (address_verify_map) and Postfix verify(8)'s rules
//! for it: which answer a query gets, when a probe is due, which update may replace
//! which entry, and when entries expire.
//!
//! Persistence is a text file of Rostfix's own (not Postfix's btree/lmdb format): the
//! path of address_verify_map with its `type:` ignored; empty address_verify_map keeps
//! the cache in memory only. The file starts with [`HEADER`], then one line per
//! change, appended as it happens (a later line for an address replaces an earlier
//! one): `ADDRESS TAB STATUS TAB UPDATED TAB PROBED TAB TEXT`, times in Unix seconds
//! (0 = never). At start and every address_verify_cache_cleanup_interval the expired
//! entries are dropped and the file is rewritten with one line per live entry.
//!
//! `address_verify_map = proxy:TYPE:PATH` (Postfix's way to share the cache through
//! the proxywrite service) keeps the entries in that table instead
//! ([`Cache::with_table`]): each address is read from the table the first time it is
//! asked, and every change is written to it (`STATUS TAB UPDATED TAB PROBED TAB
//! TEXT` as the value), through proxywrite when it runs (else the table itself,
//! opened before confinement). Partial: expired entries
//! left in such a table are ignored when read, and overwritten or deleted when their
//! address comes up again, but not swept (no sequential walk through proxywrite).

use rostfix_proto::VerifyStatus;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The first line of a cache file: a file of another format (Postfix's own database
/// left in place) is recognised and replaced rather than misread.
pub const HEADER: &str = "# rostfix verify cache v1";

/// Postfix's PROBE_TTL: a probe sent this recently is not sent again.
pub const PROBE_TTL: u64 = 1000;

/// The text of an address with no answer yet (Postfix's wording).
pub const IN_PROGRESS: &str = "Address verification in progress";

/// One address's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: VerifyStatus,
    /// When the status was last set by a probe's result; 0 = never.
    pub updated: u64,
    /// When a probe was last sent; 0 = none outstanding.
    pub probed: u64,
    pub text: String,
}

/// The expiry and refresh times (seconds), from main.cf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub positive_expire: u64,
    pub positive_refresh: u64,
    pub negative_expire: u64,
    pub negative_refresh: u64,
    pub cleanup_every: u64,
    /// address_verify_negative_cache: keep failed answers.
    pub negative_cache: bool,
}

impl Times {
    fn expired(&self, e: &Entry, now: u64) -> bool {
        match e.status {
            VerifyStatus::Deliverable => e.updated + self.positive_expire < now,
            _ => e.updated + self.negative_expire < now,
        }
    }

    fn refresh_due(&self, e: &Entry, now: u64) -> bool {
        match e.status {
            VerifyStatus::Deliverable => e.updated + self.positive_refresh < now,
            _ => e.updated + self.negative_refresh < now,
        }
    }
}

/// Why the cache file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("address_verify_map: \"{0}\" is not type:pathname")]
    Spec(String),
    #[error("open verify cache {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The answer to a query: what to tell the client, and whether to send a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: VerifyStatus,
    pub text: String,
    pub probe: bool,
}

/// A lookup table that holds the entries (address_verify_map = proxy:...).
pub struct Table(pub Box<dyn rostfix_maps::Map>);

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.spec())
    }
}

/// The cache: memory plus, when there is one, its file or its table.
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<String, Entry>,
    file: Option<File>,
    table: Option<Table>,
    times: Times,
    last_cleanup: u64,
}

/// The path of a `type:path` (or `proxy:type:path`) address_verify_map.
pub fn cache_path(spec: &str) -> Result<PathBuf, CacheError> {
    let rest = spec.strip_prefix("proxy:").unwrap_or(spec);
    match rest.split_once(':') {
        Some((kind, path)) if !kind.is_empty() && path.starts_with('/') => Ok(PathBuf::from(path)),
        _ => Err(CacheError::Spec(spec.to_string())),
    }
}

impl Cache {
    /// A cache that lives only as long as the process (address_verify_map empty).
    pub fn in_memory(times: Times, now: u64) -> Cache {
        Cache {
            entries: HashMap::new(),
            file: None,
            table: None,
            times,
            last_cleanup: now,
        }
    }

    /// Opens (creating it, mode 0600) and loads the file at `path`. Returns the cache
    /// and a warning per line or file it could not use: a cache is an optimisation,
    /// so a damaged one is started afresh rather than stopping the service.
    pub fn open(path: &Path, times: Times, now: u64) -> Result<(Cache, Vec<String>), CacheError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let open_err = |p: &Path, source| CacheError::Open {
            path: p.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.exists()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| open_err(parent, e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| open_err(path, e))?;
        let mut warnings = Vec::new();
        let mut bytes = Vec::new();
        if let Err(e) = file.read_to_end(&mut bytes) {
            warnings.push(format!("{}: read: {e}; starting empty", path.display()));
            bytes.clear();
        }
        let mut cache = Cache::in_memory(times, now);
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        match lines.next() {
            None => {}
            Some(HEADER) => {
                for (n, line) in lines.enumerate() {
                    match parse_line(line) {
                        Some((addr, e)) => {
                            cache.entries.insert(addr, e);
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
                "{}: not a Rostfix verify cache (a Postfix database?); replacing it",
                path.display()
            )),
        }
        cache.file = Some(file);
        if let Err(e) = cache.cleanup(now) {
            warnings.push(format!("{}: write: {e}", path.display()));
        }
        Ok((cache, warnings))
    }

    /// A cache whose entries live in `table` (opened for writing: through
    /// proxywrite for a `proxy:` table).
    pub fn with_table(table: Box<dyn rostfix_maps::Map>, times: Times, now: u64) -> Cache {
        Cache {
            table: Some(Table(table)),
            ..Cache::in_memory(times, now)
        }
    }

    /// Whether the entries live in a table.
    pub fn has_table(&self) -> bool {
        self.table.is_some()
    }

    /// Reads the entry of key `k` from the table into memory, once.
    fn load(&mut self, k: &str) -> io::Result<()> {
        let Some(Table(table)) = &self.table else {
            return Ok(());
        };
        if self.entries.contains_key(k) {
            return Ok(());
        }
        let found = table.lookup(k).map_err(io::Error::other)?;
        if let Some((_, e)) = found.and_then(|v| parse_line(&format!("{k}\t{v}"))) {
            if e.status != VerifyStatus::Unknown || e.probed != 0 {
                self.entries.insert(k.to_string(), e);
            }
        }
        Ok(())
    }

    /// The entry of `address`, as stored (expired or not).
    #[cfg(test)]
    pub fn get(&self, address: &str) -> Option<&Entry> {
        self.entries.get(&key(address))
    }

    /// Postfix's verify_query_service: the status to answer and whether a probe
    /// must go out now. When it must, the entry records the probe time (so that
    /// the next queries within [`PROBE_TTL`] do not send another).
    pub fn query(&mut self, address: &str, now: u64) -> io::Result<Answer> {
        let k = key(address);
        self.load(&k)?;
        let fresh = self
            .entries
            .get(&k)
            .filter(|e| e.updated == 0 || !self.times.expired(e, now))
            .cloned();
        let mut entry = fresh.unwrap_or(Entry {
            status: VerifyStatus::Unknown,
            updated: 0,
            probed: 0,
            text: IN_PROGRESS.to_string(),
        });
        let probe =
            now.saturating_sub(entry.probed) > PROBE_TTL && self.times.refresh_due(&entry, now);
        let answer = Answer {
            status: entry.status,
            text: entry.text.clone(),
            probe,
        };
        if probe {
            entry.probed = now;
            self.store(k, entry)?;
        }
        Ok(answer)
    }

    /// Postfix's verify_update_service: records a probe's result. A failure never
    /// replaces a deliverable entry that has not expired (the next query probes
    /// again; as long as some probes succeed the address stays deliverable), and
    /// with address_verify_negative_cache = no failures are not kept at all.
    pub fn update(
        &mut self,
        address: &str,
        status: VerifyStatus,
        text: &str,
        now: u64,
    ) -> io::Result<()> {
        let k = key(address);
        self.load(&k)?;
        if status != VerifyStatus::Deliverable {
            if self.entries.get(&k).is_some_and(|e| {
                e.status == VerifyStatus::Deliverable && !self.times.expired(e, now)
            }) {
                return Ok(());
            }
            if !self.times.negative_cache {
                if self.entries.remove(&k).is_some() {
                    self.append(&k, None)?;
                }
                return Ok(());
            }
        }
        let entry = Entry {
            status,
            updated: now,
            probed: 0,
            text: clean_text(text),
        };
        self.store(k, entry)
    }

    /// Drops expired entries and compacts the file when the cleanup interval has
    /// passed (address_verify_cache_cleanup_interval; 0 = never).
    pub fn maybe_cleanup(&mut self, now: u64) -> io::Result<bool> {
        let every = self.times.cleanup_every;
        if every == 0 || now.saturating_sub(self.last_cleanup) < every {
            return Ok(false);
        }
        self.cleanup(now)?;
        Ok(true)
    }

    /// The number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn cleanup(&mut self, now: u64) -> io::Result<()> {
        self.last_cleanup = now;
        let times = self.times;
        // An entry with a probe out and no result yet lives until the probe could
        // have been resent (its `updated` is 0).
        self.entries.retain(|_, e| {
            if e.updated == 0 {
                now.saturating_sub(e.probed) <= PROBE_TTL.max(times.negative_refresh)
            } else {
                !times.expired(e, now)
            }
        });
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let mut text = String::with_capacity(64 * (self.entries.len() + 1));
        text.push_str(HEADER);
        text.push('\n');
        let mut keys: Vec<&String> = self.entries.keys().collect();
        keys.sort();
        for k in keys {
            text.push_str(&format_line(k, Some(&self.entries[k])));
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }

    fn store(&mut self, k: String, entry: Entry) -> io::Result<()> {
        self.append(&k, Some(&entry))?;
        self.entries.insert(k, entry);
        Ok(())
    }

    /// Appends one line (None: a deletion, status `-`), or writes the table.
    fn append(&mut self, k: &str, entry: Option<&Entry>) -> io::Result<()> {
        if let Some(Table(table)) = &self.table {
            return match entry {
                Some(_) => {
                    let line = format_line(k, entry);
                    let value = line[k.len() + 1..].trim_end_matches('\n');
                    table.update(k, value).map_err(io::Error::other)
                }
                None => table.delete(k).map(|_| ()).map_err(io::Error::other),
            };
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.seek(SeekFrom::End(0))?;
        // One write per line, so a crash leaves at most one partial last line, which
        // the loader ignores with a warning.
        file.write_all(format_line(k, entry).as_bytes())
    }
}

/// The cache key: the address with its domain in lower case (local parts may be
/// case-sensitive).
fn key(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
        None => address.to_string(),
    }
}

/// Tabs, CR, LF and other control characters become spaces; long texts are cut.
fn clean_text(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.len() > rostfix_proto::MAX_VERIFY_TEXT {
        let mut cut = rostfix_proto::MAX_VERIFY_TEXT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn format_line(k: &str, entry: Option<&Entry>) -> String {
    match entry {
        Some(e) => format!(
            "{k}\t{}\t{}\t{}\t{}\n",
            e.status.as_str(),
            e.updated,
            e.probed,
            clean_text(&e.text)
        ),
        None => format!("{k}\t-\t0\t0\t\n"),
    }
}

/// One file line; a deletion line gives an entry of status Unknown with updated and
/// probed 0, which the loader treats as absent.
fn parse_line(line: &str) -> Option<(String, Entry)> {
    let mut f = line.splitn(5, '\t');
    let addr = f.next().filter(|a| !a.is_empty())?.to_string();
    let status_word = f.next()?;
    let updated: u64 = f.next()?.parse().ok()?;
    let probed: u64 = f.next()?.parse().ok()?;
    let text = f.next()?.to_string();
    let status = if status_word == "-" {
        VerifyStatus::Unknown
    } else {
        VerifyStatus::parse(status_word)?
    };
    Some((
        addr,
        Entry {
            status,
            updated,
            probed,
            text,
        },
    ))
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
