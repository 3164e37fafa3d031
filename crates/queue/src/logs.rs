//! Per-message delay logs in `defer/ID`: why each deferred recipient was deferred, for
//! rostqueue's listing and for the notice sent when the message expires. Text blocks of
//! `recipient=ADDR` / `reason=TEXT` lines separated by a blank line; the newest reason
//! for a recipient wins.

use crate::file::io_err;
use crate::{is_valid_queue_id, QueueError};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A defer log larger than this is read only this far (it is text we wrote, but a
/// listing must not be made to allocate without bound).
const MAX_LOG_READ: u64 = 16 * 1024 * 1024;

fn log_path(root: &Path, dir: &str, id: &str) -> Result<PathBuf, QueueError> {
    if !is_valid_queue_id(id) {
        return Err(QueueError::Invalid {
            what: "queue id",
            value: id.to_string(),
        });
    }
    Ok(root.join(dir).join(id))
}

/// CR and LF become spaces so one value stays one line.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Appends a reason for `recipient` to `root/defer/id` (created 0600), fsync'ed.
/// CR/LF in the reason are replaced by spaces so a block cannot be forged.
pub fn append_defer_reason(
    root: &Path,
    id: &str,
    recipient: &str,
    reason: &str,
) -> Result<(), QueueError> {
    let path = log_path(root, "defer", id)?;
    let block = format!(
        "recipient={}\nreason={}\n\n",
        one_line(recipient),
        one_line(reason)
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    // One write of the whole block: O_APPEND keeps concurrent blocks from interleaving.
    file.write_all(block.as_bytes())
        .map_err(|e| io_err(&path, e))?;
    file.sync_all().map_err(|e| io_err(&path, e))
}

/// The latest reason per recipient, in first-seen order; empty if there is no log.
///
/// Lines that are not `recipient=` / `reason=` are ignored, as is a reason without a
/// recipient in its block.
pub fn read_defer_reasons(root: &Path, id: &str) -> Result<Vec<(String, String)>, QueueError> {
    let path = log_path(root, "defer", id)?;
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&path, e)),
    };
    let mut raw = Vec::new();
    file.take(MAX_LOG_READ)
        .read_to_end(&mut raw)
        .map_err(|e| io_err(&path, e))?;
    Ok(parse_defer_log(&String::from_utf8_lossy(&raw)))
}

fn parse_defer_log(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut recipient: Option<&str> = None;
    for line in text.lines() {
        if line.is_empty() {
            recipient = None;
        } else if let Some(r) = line.strip_prefix("recipient=") {
            recipient = Some(r);
        } else if let (Some(reason), Some(r)) = (line.strip_prefix("reason="), recipient) {
            match out.iter_mut().find(|(a, _)| a == r) {
                Some(entry) => entry.1 = reason.to_string(),
                None => out.push((r.to_string(), reason.to_string())),
            }
        }
    }
    out
}

/// Removes `defer/id` and `bounce/id` if present (when the message is removed).
pub fn remove_message_logs(root: &Path, id: &str) -> Result<(), QueueError> {
    for dir in ["defer", "bounce"] {
        let path = log_path(root, dir, id)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    Ok(())
}

/// The line that records, in `defer/ID`, that the delay warning was sent.
const DELAY_WARNED: &str = "delay_warning=sent";

/// Records durably (a block appended to `defer/id`, fsync'ed) that the sender was
/// warned of the delay, so the warning goes out once per message.
pub fn mark_delay_warned(root: &Path, id: &str) -> Result<(), QueueError> {
    let path = log_path(root, "defer", id)?;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    file.write_all(format!("{DELAY_WARNED}\n\n").as_bytes())
        .map_err(|e| io_err(&path, e))?;
    file.sync_all().map_err(|e| io_err(&path, e))
}

/// True once [`mark_delay_warned`] was called for this message.
pub fn delay_warned(root: &Path, id: &str) -> Result<bool, QueueError> {
    let path = log_path(root, "defer", id)?;
    match std::fs::read(&path) {
        Ok(raw) => Ok(String::from_utf8_lossy(&raw)
            .lines()
            .any(|l| l == DELAY_WARNED)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> crate::tempdir::TempRoot {
        crate::tempdir::TempRoot::new()
    }

    #[test]
    fn newest_reason_wins_in_first_seen_order() {
        let t = root();
        let id = "ABCDEF1";
        assert!(read_defer_reasons(t.path(), id).unwrap().is_empty());
        append_defer_reason(t.path(), id, "a@x", "connection refused").unwrap();
        append_defer_reason(t.path(), id, "b@x", "mailbox full").unwrap();
        append_defer_reason(t.path(), id, "a@x", "timeout").unwrap();
        assert_eq!(
            read_defer_reasons(t.path(), id).unwrap(),
            vec![
                ("a@x".to_string(), "timeout".to_string()),
                ("b@x".to_string(), "mailbox full".to_string())
            ]
        );
    }

    #[test]
    fn newlines_cannot_forge_blocks() {
        let t = root();
        let id = "ABCDEF2";
        append_defer_reason(
            t.path(),
            id,
            "a@x",
            "bad\n\nrecipient=evil@x\nreason=forged",
        )
        .unwrap();
        let got = read_defer_reasons(t.path(), id).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "a@x");
        assert_eq!(got[0].1, "bad  recipient=evil@x reason=forged");
    }

    #[test]
    fn log_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let t = root();
        append_defer_reason(t.path(), "ABCDEF3", "a@x", "r").unwrap();
        let mode = std::fs::metadata(t.path().join("defer/ABCDEF3"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn remove_logs_removes_both_and_tolerates_absence() {
        let t = root();
        let id = "ABCDEF4";
        append_defer_reason(t.path(), id, "a@x", "r").unwrap();
        std::fs::write(t.path().join("bounce").join(id), "x").unwrap();
        remove_message_logs(t.path(), id).unwrap();
        assert!(!t.path().join("defer").join(id).exists());
        assert!(!t.path().join("bounce").join(id).exists());
        remove_message_logs(t.path(), id).unwrap();
    }

    #[test]
    fn bad_ids_are_refused() {
        let t = root();
        assert!(matches!(
            append_defer_reason(t.path(), "../x", "a", "b"),
            Err(QueueError::Invalid { .. })
        ));
    }

    #[test]
    fn delay_warning_mark_is_durable_and_ignored_by_the_reason_reader() {
        let t = root();
        let id = "ABCDEF5";
        assert!(!delay_warned(t.path(), id).unwrap());
        append_defer_reason(t.path(), id, "a@x", "r").unwrap();
        mark_delay_warned(t.path(), id).unwrap();
        assert!(delay_warned(t.path(), id).unwrap());
        assert_eq!(read_defer_reasons(t.path(), id).unwrap().len(), 1);
        // A reason text cannot forge the mark: it is on a reason= line.
        append_defer_reason(t.path(), "ABCDEF6", "a@x", "x\ndelay_warning=sent").unwrap();
        assert!(!delay_warned(t.path(), "ABCDEF6").unwrap());
    }

    #[test]
    fn garbage_lines_are_ignored() {
        let got = parse_defer_log("junk\nreason=orphan\n\nrecipient=a\nother=1\nreason=ok\n");
        assert_eq!(got, vec![("a".to_string(), "ok".to_string())]);
    }
}
