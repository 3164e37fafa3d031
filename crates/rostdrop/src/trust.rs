//! Which configuration directory a set-group-id rostdrop may use. An ordinary user must
//! not point it at a main.cf they wrote (queue_directory elsewhere, a huge
//! message_size_limit, ...), so `-c DIR` and `MAIL_CONFIG` are honoured only for root
//! or for a directory that only root can change: the directory, every directory above
//! it, and its main.cf owned by root and not writable by group or other (so the
//! checked path cannot be swapped afterwards). A directory ABOVE it may instead be a
//! root-owned sticky directory such as /tmp: the sticky bit stops other users from
//! renaming or removing the root-owned entry inside it, so the path still cannot be
//! swapped. The canonical path is returned and used,
//! so a symbolic link checked now cannot be re-pointed later.

use rostfix_config::DEFAULT_CONFIG_DIR;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a configuration directory was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{dir}: not a trusted configuration directory ({reason})")]
pub struct TrustError {
    pub dir: PathBuf,
    pub reason: String,
}

/// The directory to use: `-c DIR`, else `MAIL_CONFIG`, else the default. A directory
/// other than the default must pass [`check_trusted_dir`] unless the real uid is 0 or
/// rostdrop runs without privileges the caller lacks (`privileged` false: not
/// installed set-group-id, as in a developer's `make run`), where the caller could
/// write the files itself and the check would protect nothing.
pub fn choose_config_dir(
    cli: Option<&Path>,
    env: Option<&OsStr>,
    real_uid: u32,
    privileged: bool,
) -> Result<PathBuf, TrustError> {
    let asked = cli
        .map(Path::to_path_buf)
        .or_else(|| env.filter(|e| !e.is_empty()).map(PathBuf::from));
    match asked {
        None => Ok(PathBuf::from(DEFAULT_CONFIG_DIR)),
        Some(dir) if real_uid == 0 || !privileged || dir == Path::new(DEFAULT_CONFIG_DIR) => {
            Ok(dir)
        }
        Some(dir) => check_trusted_dir(&dir),
    }
}

/// Whether a file or directory with this owner and mode can only be changed by root.
pub fn root_only(uid: u32, mode: u32) -> Result<(), String> {
    if uid != 0 {
        return Err(format!("owned by uid {uid}, not root"));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "writable by group or other (mode {:o})",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// Like [`root_only`], but also accepts a root-owned sticky directory (mode 1777 /tmp):
/// only for directories above the configuration directory, see the module comment.
pub fn root_only_ancestor(uid: u32, mode: u32) -> Result<(), String> {
    if uid == 0 && mode & 0o1000 != 0 {
        return Ok(());
    }
    root_only(uid, mode)
}

/// Checks `dir` as described in the module comment; returns its canonical path.
pub fn check_trusted_dir(dir: &Path) -> Result<PathBuf, TrustError> {
    let refuse = |reason: String| TrustError {
        dir: dir.to_path_buf(),
        reason,
    };
    let canonical = dir.canonicalize().map_err(|e| refuse(e.to_string()))?;
    let mut cur: Option<&Path> = Some(&canonical);
    while let Some(p) = cur {
        let meta =
            std::fs::symlink_metadata(p).map_err(|e| refuse(format!("{}: {e}", p.display())))?;
        if !meta.is_dir() {
            return Err(refuse(format!("{}: not a directory", p.display())));
        }
        let verdict = if p == canonical {
            root_only(meta.uid(), meta.mode())
        } else {
            root_only_ancestor(meta.uid(), meta.mode())
        };
        verdict.map_err(|r| refuse(format!("{}: {r}", p.display())))?;
        cur = p.parent();
    }
    let main_cf = canonical.join("main.cf");
    let meta = std::fs::symlink_metadata(&main_cf)
        .map_err(|e| refuse(format!("{}: {e}", main_cf.display())))?;
    if !meta.file_type().is_file() {
        return Err(refuse(format!("{}: not a regular file", main_cf.display())));
    }
    root_only(meta.uid(), meta.mode())
        .map_err(|r| refuse(format!("{}: {r}", main_cf.display())))?;
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// A fresh directory beside the test binary (in the target dir), whose ancestors
    /// are normally root-owned and 0755 (unlike /tmp, which is world-writable).
    fn scratch(name: &str) -> PathBuf {
        let exe = std::env::current_exe().unwrap();
        let base = exe.parent().unwrap().join("rostdrop-trust-tests");
        let dir = base.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }

    fn ancestors_trusted(dir: &Path) -> bool {
        dir.parent().is_some_and(check_trusted_dir_chain)
    }

    fn check_trusted_dir_chain(p: &Path) -> bool {
        p.ancestors().all(|a| {
            std::fs::symlink_metadata(a).is_ok_and(|m| root_only(m.uid(), m.mode()).is_ok())
        })
    }

    #[test]
    fn unprivileged_rostdrop_takes_any_directory() {
        // Not set-group-id: the caller could write maildrop/ directly, nothing to guard.
        let d = choose_config_dir(Some(Path::new("/nonexistent/x")), None, 1000, false);
        assert_eq!(d, Ok(PathBuf::from("/nonexistent/x")));
    }

    #[test]
    fn owner_and_mode_rules() {
        assert!(root_only(0, 0o40755).is_ok());
        assert!(root_only(0, 0o100644).is_ok());
        assert!(root_only(1000, 0o40755).is_err());
        assert!(root_only(0, 0o40775).is_err());
        assert!(root_only(0, 0o41777).is_err());
        assert!(root_only(0, 0o100666).is_err());
    }

    #[test]
    fn sticky_root_ancestor_accepted_only_as_ancestor() {
        assert!(root_only_ancestor(0, 0o41777).is_ok());
        assert!(root_only_ancestor(1000, 0o41777).is_err());
        assert!(root_only_ancestor(0, 0o40777).is_err());
        assert!(root_only(0, 0o41777).is_err());
    }

    #[test]
    fn config_dir_under_tmp_is_trusted_when_root_owned() {
        if !is_root() {
            eprintln!("skipped: needs root to create a root-owned directory under /tmp");
            return;
        }
        let dir = std::env::temp_dir().join(format!("rostdrop-sticky-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("main.cf"), "").unwrap();
        std::fs::set_permissions(dir.join("main.cf"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let ok = check_trusted_dir(&dir);
        // The directory itself must still be root-only even under a sticky parent.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let refused = check_trusted_dir(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(ok.is_ok(), "{ok:?}");
        assert!(refused.is_err());
    }

    #[test]
    fn default_and_root_need_no_check() {
        let d = choose_config_dir(None, None, 1000, true).unwrap();
        assert_eq!(d, PathBuf::from(DEFAULT_CONFIG_DIR));
        let d = choose_config_dir(None, Some(OsStr::new("")), 1000, true).unwrap();
        assert_eq!(d, PathBuf::from(DEFAULT_CONFIG_DIR));
        let d = choose_config_dir(Some(Path::new("/nonexistent/x")), None, 0, true).unwrap();
        assert_eq!(d, PathBuf::from("/nonexistent/x"));
    }

    #[test]
    fn untrusted_for_users() {
        // /tmp is world-writable: anything below it is refused, even if root owns it.
        let err = choose_config_dir(None, Some(OsStr::new("/tmp")), 1000, true).unwrap_err();
        assert!(err
            .to_string()
            .contains("not a trusted configuration directory"));
        assert!(choose_config_dir(Some(Path::new("/nonexistent/x")), None, 1000, true).is_err());
        // -c wins over MAIL_CONFIG.
        let err = choose_config_dir(
            Some(Path::new("/tmp")),
            Some(OsStr::new("/etc")),
            1000,
            true,
        )
        .unwrap_err();
        assert_eq!(err.dir, PathBuf::from("/tmp"));
    }

    #[test]
    fn trusted_directory_on_disk() {
        if !is_root() {
            eprintln!("skipped: needs root to create root-owned files");
            return;
        }
        let dir = scratch("good");
        if !ancestors_trusted(&dir) {
            eprintln!(
                "skipped: {} has a non-root or writable ancestor",
                dir.display()
            );
            return;
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let main_cf = dir.join("main.cf");
        std::fs::write(&main_cf, "myhostname = x\n").unwrap();
        std::fs::set_permissions(&main_cf, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            choose_config_dir(Some(&dir), None, 1000, true),
            Ok(dir.clone())
        );

        // A symlink to it resolves to the canonical path.
        let link = dir.with_extension("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert_eq!(check_trusted_dir(&link), Ok(dir.clone()));
        std::fs::remove_file(&link).unwrap();

        // Group-writable main.cf.
        std::fs::set_permissions(&main_cf, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(check_trusted_dir(&dir)
            .unwrap_err()
            .reason
            .contains("main.cf"));
        // main.cf owned by a user.
        std::fs::set_permissions(&main_cf, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&main_cf, Some(1000), None).unwrap();
        assert!(check_trusted_dir(&dir)
            .unwrap_err()
            .reason
            .contains("uid 1000"));
        std::os::unix::fs::chown(&main_cf, Some(0), None).unwrap();
        // main.cf as a symlink is refused (it could point anywhere later).
        std::fs::remove_file(&main_cf).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &main_cf).unwrap();
        assert!(check_trusted_dir(&dir)
            .unwrap_err()
            .reason
            .contains("not a regular file"));
        std::fs::remove_file(&main_cf).unwrap();
        // Missing main.cf.
        assert!(check_trusted_dir(&dir).is_err());
        // The directory itself writable by others.
        std::fs::write(&main_cf, "").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o757)).unwrap();
        assert!(check_trusted_dir(&dir).is_err());
        // ... or owned by a user.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&dir, Some(1000), None).unwrap();
        assert!(check_trusted_dir(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
