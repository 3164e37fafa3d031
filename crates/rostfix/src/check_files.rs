//! The file checks of `rostfix check` beyond the queue directories, after
//! postfix-script's check-warn: queue files owned by mail_owner and private to it, the
//! set-group-id commands (rostdrop, rostqueue) with group setgid_group and mode 2755,
//! main.cf and master.cf owned by root and not writable by group or other, and every
//! lookup table main.cf names: readable, and an indexed table's `.rdb` not older than
//! its source (`database FILE.rdb is older than source file FILE`).
//!
//! Owners are checked only when running as root (a developer's instance belongs to the
//! developer). Findings are text for the caller: warnings, and errors for tables that
//! cannot be read.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Queue directories whose files belong to mail_owner and no one else.
const OWNED_QUEUES: [&str; 7] = [
    "incoming", "active", "deferred", "hold", "corrupt", "defer", "bounce",
];

/// Commands installed set-group-id setgid_group.
pub const SETGID_COMMANDS: [&str; 2] = ["rostdrop", "rostqueue"];

/// Table types backed by a file named after the colon.
const FILE_TYPES: [&str; 6] = ["hash", "btree", "texthash", "regexp", "pcre", "cidr"];

/// What the checks found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

/// Queue files: owner mail_owner (when `mail_uid` is Some), no group/other access.
pub fn check_queue_files(queue: &Path, mail_uid: Option<u32>, out: &mut Findings) {
    for dir in OWNED_QUEUES {
        let Ok(entries) = std::fs::read_dir(queue.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let path = entry.path();
            if let Some(uid) = mail_uid {
                if meta.uid() != uid {
                    out.warnings
                        .push(format!("not owned by mail_owner: {}", path.display()));
                }
            }
            if meta.permissions().mode() & 0o077 != 0 {
                out.warnings.push(format!(
                    "group or other accessible (mode {:04o}): {}",
                    meta.permissions().mode() & 0o7777,
                    path.display()
                ));
            }
        }
    }
}

/// rostdrop and rostqueue in command_directory: group setgid_group, mode 2755.
pub fn check_setgid_commands(command_directory: &Path, setgid: (&str, u32), out: &mut Findings) {
    for name in SETGID_COMMANDS {
        let path = command_directory.join(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            out.warnings
                .push(format!("{}: no such program", path.display()));
            continue;
        };
        if meta.gid() != setgid.1 {
            out.warnings.push(format!(
                "{}: group should be {} (setgid_group)",
                path.display(),
                setgid.0
            ));
        }
        if meta.permissions().mode() & 0o7777 != 0o2755 {
            out.warnings.push(format!(
                "{}: mode should be 2755, is {:04o}",
                path.display(),
                meta.permissions().mode() & 0o7777
            ));
        }
    }
}

/// main.cf and master.cf: owned by root (when `root`), not group or other writable.
pub fn check_config_files(config_dir: &Path, root: bool, out: &mut Findings) {
    for name in ["main.cf", "master.cf"] {
        let path = config_dir.join(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if root && meta.uid() != 0 {
            out.warnings
                .push(format!("not owned by root: {}", path.display()));
        }
        if meta.permissions().mode() & 0o022 != 0 {
            out.warnings
                .push(format!("group or other writable: {}", path.display()));
        }
    }
}

/// The file-backed tables (`type`, `path`) named in a main.cf value.
pub fn tables_in(value: &str) -> Vec<(String, PathBuf)> {
    value
        .split([',', ' ', '\t', '\n'])
        .filter_map(|word| word.split_once(':'))
        .filter(|(t, p)| FILE_TYPES.contains(t) && p.starts_with('/'))
        .map(|(t, p)| (t.to_string(), PathBuf::from(p)))
        .collect()
}

/// Each table: source readable; hash/btree: `.rdb` present and not older.
pub fn check_table(kind: &str, source: &Path, out: &mut Findings) {
    let src_meta = match std::fs::File::open(source).and_then(|f| f.metadata()) {
        Ok(m) => Some(m),
        // An indexed table may ship only its .rdb; checked below.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && matches!(kind, "hash" | "btree") => {
            None
        }
        Err(e) => {
            out.errors.push(format!(
                "cannot read table {kind}:{}: {e}",
                source.display()
            ));
            return;
        }
    };
    if !matches!(kind, "hash" | "btree") {
        return;
    }
    let db = rostfix_maps::rdb::rdb_path(source);
    let db_meta = match std::fs::File::open(&db).and_then(|f| f.metadata()) {
        Ok(m) => m,
        Err(e) => {
            out.errors.push(format!(
                "cannot read table {kind}:{}: {}: {e} (run rostmap {kind}:{})",
                source.display(),
                db.display(),
                source.display()
            ));
            return;
        }
    };
    if let Some(src) = src_meta {
        if src.mtime() > db_meta.mtime() {
            out.warnings.push(format!(
                "database {} is older than source file {}",
                db.display(),
                source.display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_named_in_values() {
        assert_eq!(
            tables_in("hash:/etc/aliases, texthash:/x/y proxy:unix:passwd.byname regexp:/r inline:{a=b} hash:rel"),
            vec![
                ("hash".to_string(), PathBuf::from("/etc/aliases")),
                ("texthash".to_string(), PathBuf::from("/x/y")),
                ("regexp".to_string(), PathBuf::from("/r")),
            ]
        );
    }

    #[test]
    fn stale_missing_and_unreadable_tables() {
        let dir = std::env::temp_dir().join(format!("rostfix-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("access");
        std::fs::write(&src, "a OK\n").unwrap();
        let mut f = Findings::default();
        check_table("hash", &src, &mut f);
        assert_eq!(f.errors.len(), 1, "{f:?}");
        let db = rostfix_maps::rdb::rdb_path(&src);
        std::fs::write(&db, "x").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(100);
        std::fs::File::options()
            .write(true)
            .open(&db)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut f = Findings::default();
        check_table("hash", &src, &mut f);
        assert_eq!(
            f.warnings,
            vec![format!(
                "database {} is older than source file {}",
                db.display(),
                src.display()
            )]
        );
        let mut f = Findings::default();
        check_table("regexp", &dir.join("nope"), &mut f);
        assert_eq!(f.errors.len(), 1);
        let mut f = Findings::default();
        check_table("texthash", &src, &mut f);
        assert_eq!(f, Findings::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn config_file_modes() {
        let dir = std::env::temp_dir().join(format!("rostfix-cfcheck-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.cf"), "").unwrap();
        std::fs::set_permissions(dir.join("main.cf"), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        let mut f = Findings::default();
        check_config_files(&dir, false, &mut f);
        assert_eq!(
            f.warnings,
            vec![format!(
                "group or other writable: {}",
                dir.join("main.cf").display()
            )]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
