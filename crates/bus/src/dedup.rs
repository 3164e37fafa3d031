//! The bus message ids already queued, remembered for rostfix_bus_dedup_time so a
//! redelivery (the bus did not get our acknowledgement: we crashed, or the ack was
//! lost) is acknowledged without queueing a second copy.
//!
//! On disk: `bus/ids` in the queue directory, one line `SECONDS ID` per queued
//! message, appended and fdatasync'ed once per batch before the batch's files leave
//! `bus/` for `maildrop/`. A crash can leave a last line without its newline: it was
//! never synced, so the batch it belonged to never left `bus/`, and recovery records
//! those ids again (docs/bulk-sending.md, crash points); loading cuts such a tail off.
//! Expired lines are dropped by rewriting the file (temporary file, fsync, rename,
//! directory fsync) when they outnumber the live ones.
//!
//! One intake at a time: the store holds an exclusive flock on the `bus/` directory
//! (a bus left running by a killed master and its successor must not both append and
//! recover), released when the process exits however it exits.

use nix::fcntl::{Flock, FlockArg};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The log's name inside the staging directory.
pub const LOG_NAME: &str = "ids";
/// Rewrite the log when it holds more than twice as many lines as live ids plus this.
const COMPACT_SLACK: usize = 10_000;

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: another bus intake is running")]
    Busy(PathBuf),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DedupError + '_ {
    move |source| DedupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The remembered ids and the open log.
pub struct DedupStore {
    dir: PathBuf,
    log: File,
    /// id -> when it was recorded (seconds since the epoch).
    seen: HashMap<String, u64>,
    /// Lines in the log file (live or expired).
    lines: usize,
    keep_secs: u64,
    _lock: Flock<File>,
}

impl DedupStore {
    /// Locks `dir`, loads `dir/ids` (ids older than `keep_secs` before `now` are
    /// forgotten) and opens it for appending.
    pub fn open(dir: &Path, keep_secs: u64, now: u64) -> Result<DedupStore, DedupError> {
        let handle = File::open(dir).map_err(io(dir))?;
        let lock = match Flock::lock(handle, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(DedupError::Busy(dir.to_path_buf()))
            }
            Err((_, e)) => return Err(io(dir)(e.into())),
        };
        let path = dir.join(LOG_NAME);
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode_0600()
            .open(&path)
            .map_err(io(&path))?;
        let mut text = Vec::new();
        log.read_to_end(&mut text).map_err(io(&path))?;
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            // A torn last line: never synced, so nothing relied on it.
            log.set_len(complete as u64).map_err(io(&path))?;
            log.sync_data().map_err(io(&path))?;
        }
        let mut store = DedupStore {
            dir: dir.to_path_buf(),
            log,
            seen: HashMap::new(),
            lines: 0,
            keep_secs,
            _lock: lock,
        };
        for line in text[..complete].split(|b| *b == b'\n') {
            let Some((when, id)) = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.split_once(' '))
                .and_then(|(w, id)| Some((w.parse::<u64>().ok()?, id)))
            else {
                continue;
            };
            store.lines += 1;
            if !store.expired(when, now) {
                store.seen.insert(id.to_string(), when);
            }
        }
        store.compact_if_due(now)?;
        Ok(store)
    }

    fn expired(&self, when: u64, now: u64) -> bool {
        when.saturating_add(self.keep_secs) < now
    }

    /// True if `id` was queued within the remembered time.
    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains_key(id)
    }

    /// Ids remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records `ids` durably (one write, one fdatasync). Ids must not contain white
    /// space or newlines (the caller validated them: submission::valid_bus_id).
    pub fn record<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a str>,
        now: u64,
    ) -> Result<(), DedupError> {
        let mut text = String::new();
        let mut added = Vec::new();
        for id in ids {
            debug_assert!(!id.contains(char::is_whitespace));
            text.push_str(&format!("{now} {id}\n"));
            added.push(id.to_string());
        }
        if added.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(LOG_NAME);
        self.log.write_all(text.as_bytes()).map_err(io(&path))?;
        self.log.sync_data().map_err(io(&path))?;
        self.lines += added.len();
        for id in added {
            self.seen.insert(id, now);
        }
        Ok(())
    }

    /// Forgets expired ids and rewrites the log when it has grown well past the live
    /// ones.
    pub fn compact_if_due(&mut self, now: u64) -> Result<(), DedupError> {
        let keep = self.keep_secs;
        self.seen.retain(|_, when| when.saturating_add(keep) >= now);
        if self.lines <= 2 * self.seen.len() + COMPACT_SLACK {
            return Ok(());
        }
        let path = self.dir.join(LOG_NAME);
        let temp = self.dir.join(format!("{LOG_NAME}.new"));
        let mut entries: Vec<(&String, &u64)> = self.seen.iter().collect();
        entries.sort_by_key(|(_, when)| **when);
        let mut text = String::with_capacity(entries.len() * 24);
        for (id, when) in entries {
            text.push_str(&format!("{when} {id}\n"));
        }
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode_0600()
            .open(&temp)
            .map_err(io(&temp))?;
        out.write_all(text.as_bytes()).map_err(io(&temp))?;
        out.sync_all().map_err(io(&temp))?;
        std::fs::rename(&temp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        self.log = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        self.lines = self.seen.len();
        Ok(())
    }
}

/// `mode(0o600)` without importing the extension trait at every call.
trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("rostfix-bus-dedup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn remembers_across_reopen_and_forgets_after_the_time() {
        let d = dir("reopen");
        {
            let mut s = DedupStore::open(&d, 100, 1000).unwrap();
            assert!(!s.contains("1"));
            s.record(["1", "2"], 1000).unwrap();
            s.record(["3"], 1050).unwrap();
            assert!(s.contains("1") && s.contains("3"));
        }
        let s = DedupStore::open(&d, 100, 1100).unwrap();
        assert_eq!(s.len(), 3);
        drop(s);
        let s = DedupStore::open(&d, 100, 1101).unwrap();
        assert!(!s.contains("1") && !s.contains("2"));
        assert!(s.contains("3"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_cut_off() {
        let d = dir("torn");
        std::fs::write(d.join(LOG_NAME), "10 a\nxx b\n10 c").unwrap();
        let mut s = DedupStore::open(&d, 100, 20).unwrap();
        assert!(s.contains("a"));
        assert!(!s.contains("b"), "malformed line skipped");
        assert!(!s.contains("c"), "torn line not believed");
        s.record(["d"], 20).unwrap();
        drop(s);
        assert_eq!(
            std::fs::read_to_string(d.join(LOG_NAME)).unwrap(),
            "10 a\nxx b\n20 d\n"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn only_one_store_per_directory() {
        let d = dir("lock");
        let s = DedupStore::open(&d, 100, 0).unwrap();
        assert!(matches!(
            DedupStore::open(&d, 100, 0),
            Err(DedupError::Busy(_))
        ));
        drop(s);
        assert!(DedupStore::open(&d, 100, 0).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn expired_lines_are_compacted_away() {
        let d = dir("compact");
        let mut s = DedupStore::open(&d, 10, 0).unwrap();
        let old: Vec<String> = (0..COMPACT_SLACK * 2).map(|i| format!("o{i}")).collect();
        s.record(old.iter().map(String::as_str), 0).unwrap();
        s.record(["new"], 100).unwrap();
        s.compact_if_due(100).unwrap();
        assert_eq!(s.len(), 1);
        s.record(["newer"], 101).unwrap();
        drop(s);
        assert_eq!(
            std::fs::read_to_string(d.join(LOG_NAME)).unwrap(),
            "100 new\n101 newer\n"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
