//! The queue directories with their owners and modes (docs/ARCHITECTURE.md's table):
//! what each should be, what differs on disk, and the fixes. Fixes go through a
//! descriptor opened with O_DIRECTORY|O_NOFOLLOW (fchown/fchmod), so a symbolic link
//! in place of a directory is refused instead of followed as root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Who owns a queue directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    MailOwner,
    Root,
}

/// One queue directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirSpec {
    pub name: &'static str,
    pub owner: Owner,
    /// Group is setgid_group (else the owner's group).
    pub setgid_group: bool,
    pub mode: u32,
}

const fn d(name: &'static str, owner: Owner, setgid_group: bool, mode: u32) -> DirSpec {
    DirSpec {
        name,
        owner,
        setgid_group,
        mode,
    }
}

/// Every directory under queue_directory.
pub const QUEUE_DIRS: [DirSpec; 15] = [
    d("incoming", Owner::MailOwner, false, 0o700),
    d("active", Owner::MailOwner, false, 0o700),
    d("deferred", Owner::MailOwner, false, 0o700),
    d("hold", Owner::MailOwner, false, 0o700),
    d("corrupt", Owner::MailOwner, false, 0o700),
    d("defer", Owner::MailOwner, false, 0o700),
    d("bounce", Owner::MailOwner, false, 0o700),
    d("private", Owner::MailOwner, false, 0o700),
    d("public", Owner::MailOwner, true, 0o710),
    d("maildrop", Owner::MailOwner, true, 0o730),
    d("pid", Owner::Root, false, 0o755),
    d("recycle", Owner::MailOwner, false, 0o700),
    // SMTP TLS reporting: the smtp client's session outcomes (crates/tlsrpt).
    d("tlsrpt", Owner::MailOwner, false, 0o700),
    // The bus intake's staging files and its log of queued bus ids (crates/bus).
    d("bus", Owner::MailOwner, false, 0o700),
    // The suppression list of hard-bounced recipients (docs/bulk-sending.md).
    d("suppress", Owner::MailOwner, false, 0o700),
];

/// The ids directories are given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    /// Running as root: owners are set; otherwise everything belongs to the invoker
    /// and only modes are checked.
    pub root: bool,
    pub mail_uid: u32,
    pub mail_gid: u32,
    pub setgid_gid: u32,
}

/// Owner, group and mode a directory should have, or None for owner and group when
/// they are not ours to set (not root).
pub fn wanted(spec: &DirSpec, ids: &Ids) -> (Option<(u32, u32)>, u32) {
    let owner = ids.root.then_some(match spec.owner {
        Owner::Root => (0, 0),
        Owner::MailOwner if spec.setgid_group => (ids.mail_uid, ids.setgid_gid),
        Owner::MailOwner => (ids.mail_uid, ids.mail_gid),
    });
    (owner, spec.mode)
}

/// What is wrong with an existing directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wrong {
    pub ownership: bool,
    pub permissions: bool,
}

/// Compares what is on disk (uid, gid, permission bits) with what is wanted.
pub fn compare(actual: (u32, u32, u32), owner: Option<(u32, u32)>, mode: u32) -> Wrong {
    Wrong {
        ownership: owner.is_some_and(|(uid, gid)| (actual.0, actual.1) != (uid, gid)),
        permissions: actual.2 & 0o7777 != mode,
    }
}

/// Creates or fixes every queue directory under `queue`; returns the warnings to show
/// (already phrased, without `warning: `).
pub fn ensure_queue_dirs(queue: &Path, ids: &Ids) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    if !queue.exists() {
        std::fs::create_dir_all(queue).map_err(|e| format!("create {}: {e}", queue.display()))?;
        std::fs::set_permissions(queue, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", queue.display()))?;
    }
    if !queue.is_dir() {
        return Err(format!("{} is not a directory", queue.display()));
    }
    for spec in &QUEUE_DIRS {
        let path = queue.join(spec.name);
        let (owner, mode) = wanted(spec, ids);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let wrong = match &meta {
            None => {
                std::fs::create_dir(&path)
                    .map_err(|e| format!("create {}: {e}", path.display()))?;
                Wrong {
                    ownership: owner.is_some(),
                    permissions: true,
                }
            }
            Some(meta) if !meta.file_type().is_dir() => {
                return Err(format!("{} exists and is not a directory", path.display()));
            }
            Some(meta) => {
                let wrong = compare((meta.uid(), meta.gid(), meta.mode()), owner, mode);
                if wrong.ownership {
                    warnings.push(format!("fixing ownership of {}", path.display()));
                }
                if wrong.permissions {
                    warnings.push(format!("fixing permissions of {}", path.display()));
                }
                wrong
            }
        };
        if !wrong.ownership && !wrong.permissions {
            continue;
        }
        let dir = open_dir_nofollow(&path)?;
        if let (true, Some((uid, gid))) = (wrong.ownership, owner) {
            std::os::unix::fs::fchown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
        }
        if wrong.permissions {
            // After chown: chown clears set-id bits, and the mode must be exact.
            dir.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        }
    }
    Ok(warnings)
}

/// Opens the directory `path` itself, never what a symbolic link there points to.
fn open_dir_nofollow(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: Ids = Ids {
        root: true,
        mail_uid: 100,
        mail_gid: 101,
        setgid_gid: 200,
    };

    #[test]
    fn table_matches_architecture() {
        let by_name = |n: &str| QUEUE_DIRS.iter().find(|s| s.name == n).copied().unwrap();
        assert_eq!(
            wanted(&by_name("incoming"), &IDS),
            (Some((100, 101)), 0o700)
        );
        assert_eq!(wanted(&by_name("public"), &IDS), (Some((100, 200)), 0o710));
        assert_eq!(
            wanted(&by_name("maildrop"), &IDS),
            (Some((100, 200)), 0o730)
        );
        assert_eq!(wanted(&by_name("pid"), &IDS), (Some((0, 0)), 0o755));
        let user = Ids { root: false, ..IDS };
        assert_eq!(wanted(&by_name("maildrop"), &user), (None, 0o730));
    }

    #[test]
    fn compare_finds_differences() {
        assert_eq!(
            compare((100, 101, 0o40700), Some((100, 101)), 0o700),
            Wrong::default()
        );
        assert!(compare((0, 0, 0o700), Some((100, 101)), 0o700).ownership);
        assert!(compare((100, 101, 0o755), Some((100, 101)), 0o700).permissions);
        assert_eq!(
            compare((5, 5, 0o700), None, 0o700),
            Wrong::default(),
            "not root: owners not checked"
        );
    }

    #[test]
    fn fixes_never_follow_a_link() {
        let base = std::env::temp_dir().join(format!("rostfix-dirs-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("real")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        let refused = open_dir_nofollow(&base.join("link"));
        let opened = open_dir_nofollow(&base.join("real"));
        std::fs::remove_dir_all(&base).unwrap();
        assert!(refused.is_err());
        assert!(opened.is_ok());
    }

    #[test]
    fn creates_and_fixes_modes_as_invoker() {
        let queue = std::env::temp_dir()
            .join(format!("rostfix-dirs-{}", std::process::id()))
            .join("queue");
        let _ = std::fs::remove_dir_all(queue.parent().unwrap());
        let user = Ids { root: false, ..IDS };
        assert!(ensure_queue_dirs(&queue, &user).unwrap().is_empty());
        for spec in &QUEUE_DIRS {
            let mode = std::fs::metadata(queue.join(spec.name))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777;
            assert_eq!(mode, spec.mode, "{}", spec.name);
        }
        std::fs::set_permissions(
            queue.join("maildrop"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let warnings = ensure_queue_dirs(&queue, &user).unwrap();
        assert_eq!(
            warnings,
            [format!(
                "fixing permissions of {}",
                queue.join("maildrop").display()
            )]
        );
        assert_eq!(
            std::fs::metadata(queue.join("maildrop"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o730
        );
        std::fs::remove_dir_all(queue.parent().unwrap()).unwrap();
    }
}
