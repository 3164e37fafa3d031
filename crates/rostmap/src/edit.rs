//! Building FILE.rdb from FILE, and the source edits behind -d (delete keys) and -i
//! (append entries from standard input). The source file is the truth: edits rewrite
//! it atomically (temporary file + rename) and then rebuild the .rdb.

use rostfix_maps::hash::{read_source, SourceSyntax};
use rostfix_maps::rdb::{rdb_path, write_atomic_like};
use rostfix_maps::source::{parse_aliases, parse_postmap};
use rostfix_maps::MapError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether a table type is built into an .rdb file.
pub fn is_indexed(kind: &str) -> bool {
    matches!(kind, "hash" | "btree")
}

/// Build `source`.rdb from `source`, with the source's owner and permission bits.
pub fn build(source: &Path, syntax: SourceSyntax) -> Result<usize, MapError> {
    let entries = read_source(source, syntax)?;
    write_atomic_like(&rdb_path(source), &entries, Some(source))?;
    Ok(entries.len())
}

fn write_source_atomic(path: &Path, text: &str) -> Result<(), MapError> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".rostmap.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        // Created private, then given the source's owner and permission bits (it may
        // be readable only by root), so it is never more open than the old file.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Ok(md) = std::fs::metadata(path) {
            if nix::unistd::geteuid().is_root() {
                std::os::unix::fs::fchown(&f, Some(md.uid()), Some(md.gid()))?;
            }
            f.set_permissions(md.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        MapError::io(path, e)
    })
}

/// The folded key a logical entry starting with `line` has, if it is an entry.
fn key_of(line: &str, syntax: SourceSyntax) -> Option<String> {
    let parsed = match syntax {
        SourceSyntax::Postmap => parse_postmap(line.as_bytes(), true),
        SourceSyntax::Aliases => parse_aliases(line.as_bytes(), true),
    };
    parsed.into_iter().next().map(|e| e.key)
}

/// Remove from `text` every entry (with its continuation lines) whose key is in
/// `keys` (folded). Comments and blank lines are kept. Returns the new text and how
/// many entries went.
pub fn delete_keys(text: &str, keys: &[String], syntax: SourceSyntax) -> (String, usize) {
    let keys: Vec<String> = keys.iter().map(|k| k.to_lowercase()).collect();
    let mut out = String::with_capacity(text.len());
    let mut deleting = false;
    let mut removed = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim();
        let is_comment = bare.is_empty() || bare.starts_with('#');
        if line.starts_with([' ', '\t']) && !is_comment {
            // A continuation line goes with its entry.
            if !deleting {
                out.push_str(line);
            }
            continue;
        }
        if is_comment {
            // An empty line or a column-0 comment ends the entry (Postfix readllines);
            // an indented comment does not.
            if !line.starts_with([' ', '\t']) {
                deleting = false;
            }
            out.push_str(line);
            continue;
        }
        deleting = key_of(line, syntax).is_some_and(|k| keys.contains(&k));
        if deleting {
            removed += 1;
        } else {
            out.push_str(line);
        }
    }
    (out, removed)
}

/// `-d`: delete keys from `source` and rebuild the .rdb when `indexed`.
pub fn delete(
    source: &Path,
    keys: &[String],
    syntax: SourceSyntax,
    indexed: bool,
) -> Result<usize, MapError> {
    let bytes = std::fs::read(source).map_err(|e| MapError::io(source, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let (new_text, removed) = delete_keys(&text, keys, syntax);
    if removed > 0 {
        write_source_atomic(source, &new_text)?;
    }
    if indexed {
        build(source, syntax)?;
    }
    Ok(removed)
}

/// `-i`: append `input` (source lines) to `source` and rebuild.
pub fn append(
    source: &Path,
    input: &str,
    syntax: SourceSyntax,
    indexed: bool,
) -> Result<(), MapError> {
    let mut text = match std::fs::read(source) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(MapError::io(source, e)),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(input);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    write_source_atomic(source, &text)?;
    if indexed {
        build(source, syntax)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_takes_continuations_keeps_comments() {
        let src = "# head\nFoo a\n  b\nbar c\n# mid\nfoo2 d\n";
        let (out, n) = delete_keys(src, &["FOO".into()], SourceSyntax::Postmap);
        assert_eq!(n, 1);
        assert_eq!(out, "# head\nbar c\n# mid\nfoo2 d\n");
        let (out, n) = delete_keys(
            "root: a,\n  b\nx: y\n",
            &["root".into()],
            SourceSyntax::Aliases,
        );
        assert_eq!((out.as_str(), n), ("x: y\n", 1));
        let (_, n) = delete_keys(src, &["nope".into()], SourceSyntax::Postmap);
        assert_eq!(n, 0);
    }
}
