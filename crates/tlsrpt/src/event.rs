//! One TLS session outcome as the smtp client records it, and the spool it goes to:
//! `tlsrpt/PERIOD_START.events`, one JSON object per line, appended with O_APPEND in a
//! single write (lines are bounded well under PIPE_BUF, so concurrent smtp processes
//! never interleave). A period's file is read by the tlsrpt service once the period
//! has ended, then removed.

use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The spool directory, relative to the queue directory.
pub const SPOOL: &str = "tlsrpt";
/// Longest line appended; longer fields are cut to keep each append atomic.
const MAX_LINE: usize = 3500;
/// Longest single field kept.
const MAX_FIELD: usize = 300;
/// Most of one period's spool file read (about 300 000 sessions); the rest of a larger
/// file is not reported (the line cut at the bound counts as unreadable, so the
/// caller warns).
const MAX_SPOOL: u64 = 256 * 1024 * 1024;

/// One session: `result` is `success` or an RFC 8460 result-type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The policy domain (the recipient domain).
    pub domain: String,
    /// `sts` or `tlsa`.
    pub policy_type: String,
    pub policy_string: Vec<String>,
    /// MTA-STS MX patterns.
    #[serde(default)]
    pub mx_host: Vec<String>,
    pub result: String,
    #[serde(default)]
    pub sending_mta_ip: String,
    #[serde(default)]
    pub receiving_mx_hostname: String,
    #[serde(default)]
    pub receiving_ip: String,
    /// What went wrong, in our words (failure-reason-code).
    #[serde(default)]
    pub reason: String,
}

impl Event {
    pub fn is_success(&self) -> bool {
        self.result == "success"
    }

    fn bounded(mut self) -> Event {
        let cut = |s: &mut String| {
            if s.len() > MAX_FIELD {
                let mut end = MAX_FIELD;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
        };
        for s in [
            &mut self.domain,
            &mut self.result,
            &mut self.sending_mta_ip,
            &mut self.receiving_mx_hostname,
            &mut self.receiving_ip,
            &mut self.reason,
        ] {
            cut(s);
        }
        self.policy_string.truncate(8);
        self.policy_string.iter_mut().for_each(cut);
        self.mx_host.truncate(8);
        self.mx_host.iter_mut().for_each(cut);
        self
    }
}

/// The start of the period holding `now` (seconds since the epoch).
pub fn period_start(now: u64, period: u64) -> u64 {
    let period = period.max(1);
    now - now % period
}

/// The spool file of the period starting at `start`.
pub fn spool_file(queue: &Path, start: u64) -> PathBuf {
    queue.join(SPOOL).join(format!("{start}.events"))
}

/// Appends `event` to the spool file of the period holding `now`.
pub fn append(queue: &Path, event: Event, now: u64, period: u64) -> io::Result<()> {
    let mut line = serde_json::to_string(&event.bounded()).map_err(io::Error::other)?;
    if line.len() > MAX_LINE {
        return Err(io::Error::other("TLS report event too long"));
    }
    line.push('\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(spool_file(queue, period_start(now, period)))?;
    file.write_all(line.as_bytes())
}

/// The events of one spool file; lines that do not parse (a torn write after a
/// crash) are skipped and counted.
pub fn read(path: &Path) -> io::Result<(Vec<Event>, usize)> {
    use std::io::Read;
    let mut raw = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_SPOOL)
        .read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let mut events = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Event>(line) {
            Ok(e) => events.push(e),
            Err(_) => bad += 1,
        }
    }
    Ok((events, bad))
}

/// Spool files whose period ended at or before `now`: (start, path), oldest first.
pub fn ended(queue: &Path, now: u64, period: u64) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(queue.join(SPOOL))? {
        let path = entry?.path();
        let Some(start) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".events"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if start + period.max(1) <= now {
            out.push((start, path));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(result: &str) -> Event {
        Event {
            domain: "example.org".into(),
            policy_type: "sts".into(),
            policy_string: vec!["version: STSv1".into(), "mode: enforce".into()],
            mx_host: vec!["mx.example.org".into()],
            result: result.into(),
            sending_mta_ip: "192.0.2.1".into(),
            receiving_mx_hostname: "mx.example.org".into(),
            receiving_ip: "192.0.2.2".into(),
            reason: "x".repeat(5000),
        }
    }

    #[test]
    fn append_read_and_period_files() {
        let dir = std::env::temp_dir().join(format!("tlsrpt-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(SPOOL)).unwrap();
        append(&dir, event("success"), 1000, 100).unwrap();
        append(&dir, event("certificate-host-mismatch"), 1050, 100).unwrap();
        append(&dir, event("success"), 1100, 100).unwrap();
        std::fs::write(spool_file(&dir, 1200), "{not json\n").unwrap();
        let ended_now = ended(&dir, 1150, 100).unwrap();
        assert_eq!(ended_now.len(), 1);
        let (events, bad) = read(&ended_now[0].1).unwrap();
        assert_eq!((events.len(), bad), (2, 0));
        assert_eq!(events[1].reason.len(), MAX_FIELD);
        assert_eq!(ended(&dir, 1300, 100).unwrap().len(), 3);
        assert_eq!(read(&spool_file(&dir, 1200)).unwrap(), (vec![], 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
