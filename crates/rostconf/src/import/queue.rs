//! What of Postfix stays behind after the import: messages still in Postfix's queue
//! (Rostfix cannot read Postfix's queue file format, so they are listed with the
//! command that re-injects them) and other programs' configuration that points into
//! Postfix's queue directory (Dovecot's auth and LMTP sockets, typically).

use std::fs;
use std::path::{Path, PathBuf};

/// Postfix queues that hold messages not yet delivered.
const QUEUES: &[&str] = &["maildrop", "incoming", "active", "deferred", "hold"];

/// Messages found per Postfix queue: (queue name, queue ids).
pub fn pending_messages(queue_directory: &Path) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for queue in QUEUES {
        let mut ids = Vec::new();
        collect_files(&queue_directory.join(queue), 0, &mut ids);
        ids.sort();
        if !ids.is_empty() {
            found.push((queue.to_string(), ids));
        }
    }
    found
}

/// Regular files under `dir` (Postfix hashes deferred/ into subdirectories).
fn collect_files(dir: &Path, depth: usize, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && depth < 4 {
            collect_files(&entry.path(), depth + 1, out);
        } else if kind.is_file() {
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
}

/// Files under `dir` (e.g. /etc/dovecot) that mention `needle` (Postfix's queue
/// directory): they need editing by hand to point at Rostfix's.
pub fn files_mentioning(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    scan(dir, needle, 0, &mut hits);
    hits.sort();
    hits
}

fn scan(dir: &Path, needle: &str, depth: usize, hits: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() && depth < 3 => scan(&path, needle, depth + 1, hits),
            Ok(kind) if kind.is_file() => {
                // Configuration files are small; anything big is not one.
                let small = entry.metadata().map(|m| m.len() < 1 << 20).unwrap_or(false);
                // Only live lines count: Dovecot's stock files mention the path in comments.
                let live = |text: String| {
                    text.lines()
                        .any(|line| !line.trim_start().starts_with('#') && line.contains(needle))
                };
                if small && fs::read_to_string(&path).is_ok_and(live) {
                    hits.push(path);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_hashed_deferred_files_and_mentions() {
        let base =
            std::env::temp_dir().join(format!("rostconf-import-queue-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("q/deferred/4")).expect("mkdir");
        fs::create_dir_all(base.join("q/active")).expect("mkdir");
        fs::write(base.join("q/deferred/4/4F2A81C0D4E"), "x").expect("write");
        fs::write(base.join("q/active/1B2C"), "x").expect("write");
        assert_eq!(
            pending_messages(&base.join("q")),
            vec![
                ("active".to_string(), vec!["1B2C".to_string()]),
                ("deferred".to_string(), vec!["4F2A81C0D4E".to_string()]),
            ]
        );
        fs::create_dir_all(base.join("dovecot/conf.d")).expect("mkdir");
        fs::write(
            base.join("dovecot/conf.d/10-master.conf"),
            "unix_listener /var/spool/postfix/private/auth {\n}\n",
        )
        .expect("write");
        fs::write(base.join("dovecot/other.conf"), "#/var/spool/postfix/x\n").expect("write");
        assert_eq!(
            files_mentioning(&base.join("dovecot"), "/var/spool/postfix"),
            vec![base.join("dovecot/conf.d/10-master.conf")]
        );
        let _ = fs::remove_dir_all(&base);
    }
}
