//! Copying the files that live beside Postfix's main.cf (table sources, SASL
//! configuration, certificates) into the Rostfix configuration directory, keeping
//! owner and mode (secret tables stay secret), and rebuilding table indexes with
//! rostmap/rostalias, since Postfix's .db/.lmdb files are not Rostfix's format.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Names in Postfix's configuration directory that are not carried: the two files
/// translated separately, Postfix's own installation lists and scripts, and indexes
/// (rebuilt from their sources instead).
fn skipped(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "main.cf",
        "master.cf",
        "postfix-files",
        "postfix-files.d",
        "dynamicmaps.cf",
        "dynamicmaps.cf.d",
        "makedefs.out",
        "post-install",
        "postfix-script",
        "postmulti-script",
    ];
    const INDEX_SUFFIXES: &[&str] = &[".db", ".lmdb", ".cdb", ".dir", ".pag", ".proto", ".rdb"];
    NAMES.contains(&name) || INDEX_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// Copies what [`skipped`] lets through from `source` to `target` (recursively);
/// returns the relative paths copied. Symbolic links are recreated, not followed.
pub fn copy_tree(source: &Path, target: &Path) -> io::Result<Vec<PathBuf>> {
    let mut copied = Vec::new();
    copy_dir(source, target, Path::new(""), &mut copied)?;
    Ok(copied)
}

fn copy_dir(source: &Path, target: &Path, rel: &Path, copied: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(source.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name();
        if skipped(&name.to_string_lossy()) {
            continue;
        }
        let rel = rel.join(&name);
        let (from, to) = (source.join(&rel), target.join(&rel));
        let meta = fs::symlink_metadata(&from)?;
        if meta.file_type().is_symlink() {
            let link = fs::read_link(&from)?;
            let _ = fs::remove_file(&to);
            std::os::unix::fs::symlink(link, &to)?;
        } else if meta.is_dir() {
            fs::create_dir_all(&to)?;
            copy_dir(source, target, &rel, copied)?;
        } else if meta.is_file() {
            fs::copy(&from, &to)?;
        } else {
            continue;
        }
        if !meta.file_type().is_symlink() {
            std::os::unix::fs::chown(&to, Some(meta.uid()), Some(meta.gid()))?;
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        copied.push(rel);
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file and a rename, with `mode`.
pub fn write_atomic(path: &Path, text: &str, mode: u32) -> io::Result<()> {
    let tmp = path.with_extension("import-tmp");
    fs::write(&tmp, text)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path)
}

/// Finds a sibling command of this program (installed together), else on PATH.
fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Builds the index of `spec` (`hash:/path`) with rostalias (alias tables) or rostmap,
/// reading `config` for defaults. Err carries what the tool said.
pub fn rebuild(spec: &str, alias: bool, config: &Path) -> Result<(), String> {
    let (_, path) = spec.split_once(':').unwrap_or(("", spec));
    if !Path::new(path).exists() {
        return Err(format!("{path}: no such source file"));
    }
    // rostalias is rostmap under another name; -a asks for the same behaviour, so
    // only rostmap must exist beside this program (a build tree has no rostalias).
    let tool = if alias { "rostmap -a" } else { "rostmap" };
    let output = Command::new(sibling("rostmap"))
        .args(alias.then_some("-a"))
        .arg("-c")
        .arg(config)
        .arg(spec)
        .output()
        .map_err(|e| format!("run {tool}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} {spec}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_sources_and_skips_indexes_keeping_modes() {
        let base =
            std::env::temp_dir().join(format!("rostconf-import-files-{}", std::process::id()));
        let (source, target) = (base.join("postfix"), base.join("rostfix"));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(source.join("sasl")).expect("mkdir");
        fs::create_dir_all(&target).expect("mkdir");
        fs::write(source.join("main.cf"), "x = 1\n").expect("write");
        fs::write(source.join("virtual"), "a b\n").expect("write");
        fs::write(source.join("virtual.db"), "index").expect("write");
        fs::write(source.join("sasl/passwd"), "secret\n").expect("write");
        fs::set_permissions(
            source.join("sasl/passwd"),
            fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        std::os::unix::fs::symlink("virtual", source.join("link")).expect("symlink");

        let mut copied = copy_tree(&source, &target).expect("copy");
        copied.sort();
        let names: Vec<String> = copied.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, vec!["link", "sasl", "sasl/passwd", "virtual"]);
        assert!(!target.join("main.cf").exists() && !target.join("virtual.db").exists());
        let mode = fs::metadata(target.join("sasl/passwd"))
            .expect("stat")
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            fs::read_link(target.join("link")).expect("link"),
            Path::new("virtual")
        );
        let _ = fs::remove_dir_all(&base);
    }
}
