//! -s (structure repair) and -p (purge temporary files), as postsuper does them.
//!
//! -s, for incoming, active, deferred, hold and corrupt:
//! - a queue file whose name does not end in its inode number (a queue id is 5 hex
//!   digits of microseconds then the inode in hex, docs/queue-format.md) is renamed to
//!   the id its inode gives, with its defer/ and bounce/ logs; this happens after a
//!   restore from backup, where inodes change. rename(2) never replaces an existing
//!   name here (link + unlink), so two files cannot collapse into one;
//! - ownership is set back to mail_owner (root only, owners.rs, before rostsuper
//!   becomes mail_owner) and the mode to 0600, keeping the expire bit (0100).
//!
//! Everything here runs as mail_owner (main.rs drops root first), so a symbolic link
//! planted in a queue directory can only lead to mail_owner's own files.
//!
//! -p removes `tmp.PID.N` files (writers' unfinished files) whose writer process is
//! gone and that are at least [`TMP_MIN_AGE`] old, or that are older than
//! [`TMP_MAX_AGE`] whoever wrote them: a file some process is still writing is never
//! touched, so both are safe while the suite runs.

use crate::ops::EXPIRE_BIT;
use rostfix_queue::{is_valid_queue_id, QueueName};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A dead writer's file younger than this is left alone (clock skew, pid reuse).
pub const TMP_MIN_AGE: Duration = Duration::from_secs(60);
/// Any temporary file older than this is stale.
pub const TMP_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Queues whose files -s checks (maildrop files belong to their submitters).
pub const REPAIR_QUEUES: [QueueName; 5] = [
    QueueName::Incoming,
    QueueName::Active,
    QueueName::Deferred,
    QueueName::Hold,
    QueueName::Corrupt,
];

/// Queues that hold writers' temporary files.
pub const TMP_QUEUES: [QueueName; 4] = [
    QueueName::Maildrop,
    QueueName::Incoming,
    QueueName::Deferred,
    QueueName::Corrupt,
];

/// The id a file named `name` with inode `ino` should have, or None when it already
/// has it or the name is not a queue id at all.
pub fn expected_id(name: &str, ino: u64) -> Option<String> {
    if !is_valid_queue_id(name) || name.len() < 6 {
        return None;
    }
    let want = format!("{}{:X}", &name[..5], ino);
    (want != name).then_some(want)
}

/// The pid in `tmp.PID.N`, if the name has that form.
pub fn tmp_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("tmp.")?;
    let (pid, n) = rest.split_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|p| *p > 0)
}

fn process_alive(pid: i32) -> bool {
    // kill(pid, 0): ESRCH means no such process; EPERM means it exists.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// What one repair pass did, reported by the caller.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

/// Renames and re-modes queue files.
pub fn repair(root: &Path, queues: &[QueueName]) -> Report {
    let mut rep = Report::default();
    for &q in queues {
        let dir = root.join(q.as_str());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if !meta.is_file() || !is_valid_queue_id(&name) {
                continue;
            }
            let mode = meta.permissions().mode() & 0o7777;
            let want = 0o600 | (mode & EXPIRE_BIT);
            if mode != want {
                match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(want)) {
                    Ok(()) => rep.lines.push(format!(
                        "{}/{name}: mode {mode:04o} changed to {want:04o}",
                        q.as_str()
                    )),
                    Err(e) => rep.warnings.push(format!("{}: chmod: {e}", path.display())),
                }
            }
            if let Some(new) = expected_id(&name, meta.ino()) {
                rename_message(root, q, &name, &new, &mut rep);
            }
        }
    }
    rep
}

/// link + unlink, so an existing target is never replaced; logs follow the file.
fn rename_message(root: &Path, q: QueueName, old: &str, new: &str, rep: &mut Report) {
    let dir = root.join(q.as_str());
    match std::fs::hard_link(dir.join(old), dir.join(new)) {
        Ok(()) => {}
        Err(e) => {
            rep.warnings
                .push(format!("{}/{old}: cannot rename to {new}: {e}", q.as_str()));
            return;
        }
    }
    if let Err(e) = std::fs::remove_file(dir.join(old)) {
        rep.warnings
            .push(format!("{}/{old}: cannot remove old name: {e}", q.as_str()));
    }
    for logs in ["defer", "bounce"] {
        let from = root.join(logs).join(old);
        if from.exists() {
            if let Err(e) = std::fs::rename(&from, root.join(logs).join(new)) {
                rep.warnings
                    .push(format!("{logs}/{old}: cannot rename to {new}: {e}"));
            }
        }
    }
    rep.lines.push(format!("{old}: renamed to {new}"));
}

/// Removes stale temporary files; returns how many.
pub fn purge(root: &Path, now: SystemTime, rep: &mut Report) -> usize {
    let mut count = 0;
    for q in TMP_QUEUES {
        let Ok(entries) = std::fs::read_dir(root.join(q.as_str())) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = tmp_pid(&name) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            let stale = age >= TMP_MAX_AGE || (age >= TMP_MIN_AGE && !process_alive(pid));
            if !stale {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    count += 1;
                    rep.lines.push(format!(
                        "{}/{name}: removed stale temporary file",
                        q.as_str()
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => rep
                    .warnings
                    .push(format!("{}/{name}: cannot remove: {e}", q.as_str())),
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_ids() {
        assert_eq!(expected_id("12345ABC", 0xABC), None);
        assert_eq!(expected_id("12345ABC", 0xDEF).as_deref(), Some("12345DEF"));
        assert_eq!(expected_id("tmp.1.2", 5), None);
        assert_eq!(expected_id("12345", 5), None);
    }

    #[test]
    fn tmp_names() {
        assert_eq!(tmp_pid("tmp.123.4"), Some(123));
        assert_eq!(tmp_pid("tmp.x.4"), None);
        assert_eq!(tmp_pid("tmp.123."), None);
        assert_eq!(tmp_pid("ABCDEF"), None);
    }

    fn root(name: &str) -> std::path::PathBuf {
        let root =
            std::env::temp_dir().join(format!("rostsuper-rep-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for q in ["incoming", "deferred", "maildrop", "defer", "bounce"] {
            std::fs::create_dir_all(root.join(q)).unwrap();
        }
        root
    }

    #[test]
    fn renames_by_inode_and_fixes_modes() {
        let r = root("ren");
        let p = r.join("deferred/12345FFFFFFFF");
        std::fs::write(&p, b"x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o744)).unwrap();
        std::fs::write(r.join("defer/12345FFFFFFFF"), b"recipient=a\n").unwrap();
        let ino = std::fs::metadata(&p).unwrap().ino();
        let rep = repair(&r, &[QueueName::Deferred]);
        let new = format!("12345{ino:X}");
        assert!(r.join("deferred").join(&new).exists(), "{rep:?}");
        assert!(r.join("defer").join(&new).exists());
        assert!(!p.exists());
        let mode = std::fs::metadata(r.join("deferred").join(&new))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o700, "expire bit kept, rest 0600");
        // A second pass finds nothing to do.
        let rep = repair(&r, &[QueueName::Deferred]);
        assert!(rep.lines.is_empty(), "{rep:?}");
        std::fs::remove_dir_all(&r).unwrap();
    }

    #[test]
    fn purge_only_stale_temporary_files() {
        let r = root("purge");
        // Our own pid is alive: young or not-too-old files of ours stay.
        let mine = r.join(format!("incoming/tmp.{}.1", std::process::id()));
        std::fs::write(&mine, b"x").unwrap();
        // A dead writer (pid far above pid_max is never alive).
        let dead = r.join("maildrop/tmp.2147483600.1");
        std::fs::write(&dead, b"x").unwrap();
        let mut rep = Report::default();
        let now = SystemTime::now();
        assert_eq!(purge(&r, now, &mut rep), 0, "too young");
        assert_eq!(purge(&r, now + Duration::from_secs(120), &mut rep), 1);
        assert!(!dead.exists() && mine.exists());
        assert_eq!(
            purge(&r, now + TMP_MAX_AGE + Duration::from_secs(1), &mut rep),
            1
        );
        assert!(!mine.exists());
        std::fs::remove_dir_all(&r).unwrap();
    }
}
