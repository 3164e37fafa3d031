//! Which configuration directory a set-group-id command (rostdrop, rostqueue) may use.
//! Its caller must not point it at a main.cf of their choosing (queue_directory
//! elsewhere, a huge message_size_limit, ...), so, as in Postfix, a directory other
//! than the default one, given with `-c DIR` or `MAIL_CONFIG`, is accepted from an
//! unprivileged caller only when the DEFAULT main.cf lists it in
//! alternate_config_directories or multi_instance_directories: the administrator
//! decides, not whoever owns the directory.

use rostfix_config::MainCf;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Why a configuration directory was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigDirError {
    #[error(
        "unauthorized configuration directory name: {dir}: list it in \
         alternate_config_directories or multi_instance_directories in {main_cf}"
    )]
    NotListed { dir: PathBuf, main_cf: PathBuf },
    #[error("unauthorized configuration directory name: {dir}: {source}")]
    DefaultUnreadable {
        dir: PathBuf,
        #[source]
        source: Box<rostfix_config::ConfigError>,
    },
}

/// The parameters whose directories an unprivileged caller may name.
const LISTS: [&str; 2] = ["alternate_config_directories", "multi_instance_directories"];

/// Whether the default configuration `default_main` lists `dir`. Entries are compared
/// as paths (a trailing slash or a doubled one makes no difference), never resolved:
/// the administrator's spelling is what is authorized.
pub fn listed(dir: &Path, default_main: &MainCf) -> bool {
    LISTS
        .iter()
        .flat_map(|name| default_main.get_list(name))
        .any(|entry| Path::new(&entry) == dir)
}

/// The directory to use: `-c DIR`, else a non-empty `MAIL_CONFIG`, else `default_dir`.
/// A `trusted` caller (real uid root, or a command not running set-id, whose caller
/// could read and write everything it can) may name any directory; anyone else only
/// `default_dir` or one its main.cf lists (see [`listed`]).
pub fn choose_config_dir(
    cli: Option<&Path>,
    env: Option<&OsStr>,
    trusted: bool,
    default_dir: &Path,
) -> Result<PathBuf, ConfigDirError> {
    let asked = cli
        .map(Path::to_path_buf)
        .or_else(|| env.filter(|e| !e.is_empty()).map(PathBuf::from));
    let dir = match asked {
        None => return Ok(default_dir.to_path_buf()),
        Some(dir) if trusted || dir == default_dir => return Ok(dir),
        Some(dir) => dir,
    };
    let default_main =
        MainCf::load(default_dir).map_err(|source| ConfigDirError::DefaultUnreadable {
            dir: dir.clone(),
            source: Box::new(source),
        })?;
    if listed(&dir, &default_main) {
        Ok(dir)
    } else {
        Err(ConfigDirError::NotListed {
            dir,
            main_cf: default_dir.join("main.cf"),
        })
    }
}

/// True when the process runs with ids its real user lacks (installed set-uid or
/// set-group-id), so its caller is not trusted with a configuration of their choice.
pub fn running_set_id() -> bool {
    nix::unistd::getegid() != nix::unistd::getgid()
        || nix::unistd::geteuid() != nix::unistd::getuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_dir(name: &str, main_cf: Option<&str>) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("privilege-cfdir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(text) = main_cf {
            std::fs::write(dir.join("main.cf"), text).unwrap();
        }
        dir
    }

    #[test]
    fn listed_entries_compare_as_paths() {
        let main = MainCf::parse(
            "alternate_config_directories = /etc/rf-a, /etc/rf-b/\n\
             multi_instance_directories = /etc/rf-m\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap();
        assert!(listed(Path::new("/etc/rf-a"), &main));
        assert!(listed(Path::new("/etc/rf-a/"), &main));
        assert!(listed(Path::new("/etc/rf-b"), &main));
        assert!(listed(Path::new("/etc/rf-m"), &main));
        assert!(!listed(Path::new("/etc/rf"), &main));
        assert!(!listed(Path::new("/etc/rf-a/sub"), &main));
        assert!(!listed(Path::new("etc/rf-a"), &main));
    }

    #[test]
    fn untrusted_caller_needs_the_list() {
        let def = default_dir("list", Some("alternate_config_directories = /srv/rf-ok\n"));
        assert_eq!(
            choose_config_dir(Some(Path::new("/srv/rf-ok")), None, false, &def).unwrap(),
            PathBuf::from("/srv/rf-ok")
        );
        let err =
            choose_config_dir(Some(Path::new("/srv/rf-other")), None, false, &def).unwrap_err();
        assert!(matches!(err, ConfigDirError::NotListed { .. }), "{err}");
        assert!(err.to_string().contains("alternate_config_directories"));
        // MAIL_CONFIG is held to the same rule; -c wins over it.
        assert!(choose_config_dir(None, Some(OsStr::new("/srv/rf-other")), false, &def).is_err());
        assert!(choose_config_dir(
            Some(Path::new("/srv/rf-ok")),
            Some(OsStr::new("/srv/rf-other")),
            false,
            &def
        )
        .is_ok());
        // The default itself, and no choice at all, need no list.
        assert_eq!(choose_config_dir(None, None, false, &def).unwrap(), def);
        assert_eq!(
            choose_config_dir(None, Some(OsStr::new("")), false, &def).unwrap(),
            def
        );
        assert_eq!(
            choose_config_dir(Some(&def), None, false, &def).unwrap(),
            def
        );
        std::fs::remove_dir_all(&def).unwrap();
    }

    #[test]
    fn trusted_caller_takes_any_directory() {
        let def = default_dir("trusted", None);
        assert_eq!(
            choose_config_dir(Some(Path::new("/nonexistent/x")), None, true, &def).unwrap(),
            PathBuf::from("/nonexistent/x")
        );
        std::fs::remove_dir_all(&def).unwrap();
    }

    #[test]
    fn missing_default_main_cf_refuses() {
        let def = default_dir("missing", None);
        let err = choose_config_dir(Some(Path::new("/srv/rf")), None, false, &def).unwrap_err();
        assert!(
            matches!(err, ConfigDirError::DefaultUnreadable { .. }),
            "{err}"
        );
        std::fs::remove_dir_all(&def).unwrap();
    }
}
