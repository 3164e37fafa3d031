//! Edits of main.cf and master.cf that keep comments and order (postconf -e, -X, -#, -M).
//!
//! Both files are edited as text: an entry is a line that is neither blank, a comment
//! nor a continuation, plus the continuation lines after it. Only the entries being
//! edited change; every other line, comments and blank lines included, is copied
//! byte for byte. The result goes to a temporary file beside the original, is synced,
//! and renamed over it, so a crash leaves either the old or the new file.

use crate::lines::{is_continuation, is_ignored};
use crate::main_cf::split_setting;
use crate::master_cf::MasterCf;
use crate::ConfigError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What to do with one main.cf parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MainCfEdit {
    /// Set to this value (replacing the first setting in place, dropping later
    /// duplicates, or appending).
    Set(String),
    /// Delete every setting of the parameter.
    Remove,
    /// Comment out every setting of the parameter (`#` before each of its lines).
    CommentOut,
}

/// One entry of the file: its first line and the continuation lines that follow
/// (indices into the line list), with comment lines between them left out.
struct Entry {
    first: usize,
    continuations: Vec<usize>,
}

/// Splits text into lines that keep their line ends, and groups them into entries.
fn entries_of(lines: &[&str]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if is_ignored(line) {
            continue;
        }
        if is_continuation(line) {
            if let Some(entry) = entries.last_mut() {
                entry.continuations.push(index);
            }
            continue;
        }
        entries.push(Entry {
            first: index,
            continuations: Vec::new(),
        });
    }
    entries
}

fn edit_error(path: &Path, message: String) -> ConfigError {
    ConfigError::Edit {
        path: path.to_path_buf(),
        message,
    }
}

/// Reads the file; a missing file is empty when `create` allows it.
fn read_text(path: &Path, create: bool) -> Result<String, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(error) if create && error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `text` to a temporary file in the same directory (keeping the original's
/// permissions), syncs it, and renames it over `path`.
fn replace_file(path: &Path, text: &str) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp: PathBuf = path.with_file_name(format!("{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        // Best effort: the temporary file is ours and useless now.
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(io)
}

fn check_name(path: &Path, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(edit_error(path, format!("bad parameter name: \"{name}\"")));
    }
    Ok(())
}

/// Appends `line` (plus a newline) to `out`, first ending an unterminated last line.
fn push_line(out: &mut String, line: &str) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
}

/// Applies `edits` (parameter name, what to do) to main.cf at `path`. A missing file
/// is created when something is set.
pub fn edit_main_cf_with(path: &Path, edits: &[(String, MainCfEdit)]) -> Result<(), ConfigError> {
    let creates = edits
        .iter()
        .any(|(_, edit)| matches!(edit, MainCfEdit::Set(_)));
    let text = read_text(path, creates)?;
    let out = edit_main_cf_text(path, &text, edits)?;
    replace_file(path, &out)
}

/// Applies `edits` to main.cf text not yet written (`rostconf import` edits its
/// translation before writing it); `path` names the file in errors.
pub fn edit_main_cf_text(
    path: &Path,
    text: &str,
    edits: &[(String, MainCfEdit)],
) -> Result<String, ConfigError> {
    for (name, edit) in edits {
        check_name(path, name)?;
        if let MainCfEdit::Set(value) = edit {
            if value.contains(['\n', '\r']) {
                return Err(edit_error(
                    path,
                    format!("value of {name} holds a line break"),
                ));
            }
        }
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // What happens to each line: None keeps it, Some(replacement) swaps it ("" drops).
    let mut replaced: Vec<Option<String>> = vec![None; lines.len()];
    let mut done = vec![false; edits.len()];
    for entry in entries_of(&lines) {
        let Some((name, _)) = split_setting(lines[entry.first]) else {
            continue;
        };
        let Some(which) = edits.iter().position(|(edit_name, _)| edit_name == name) else {
            continue;
        };
        let own_lines = std::iter::once(entry.first).chain(entry.continuations.iter().copied());
        match &edits[which].1 {
            MainCfEdit::Set(value) => {
                for index in own_lines {
                    replaced[index] = Some(String::new());
                }
                if !done[which] {
                    replaced[entry.first] = Some(format!("{name} = {value}\n"));
                    done[which] = true;
                }
            }
            MainCfEdit::Remove => {
                for index in own_lines {
                    replaced[index] = Some(String::new());
                }
            }
            MainCfEdit::CommentOut => {
                for index in own_lines {
                    replaced[index] = Some(format!("#{}", lines[index]));
                }
            }
        }
    }
    let mut out = String::with_capacity(text.len() + 64);
    for (line, replacement) in lines.iter().zip(&replaced) {
        match replacement {
            None => out.push_str(line),
            Some(new) => {
                if !new.is_empty() && !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(new);
            }
        }
    }
    for ((name, edit), done) in edits.iter().zip(&done) {
        if let (MainCfEdit::Set(value), false) = (edit, done) {
            push_line(&mut out, &format!("{name} = {value}"));
        }
    }
    Ok(out)
}

/// Sets `sets` (replacing an existing line, continuation lines included, in place, or
/// appending) and removes `removes`, writing through a temporary file and rename.
pub fn edit_main_cf(
    path: &Path,
    sets: &[(String, String)],
    removes: &[String],
) -> Result<(), ConfigError> {
    let edits: Vec<(String, MainCfEdit)> = sets
        .iter()
        .map(|(name, value)| (name.clone(), MainCfEdit::Set(value.clone())))
        .chain(
            removes
                .iter()
                .map(|name| (name.clone(), MainCfEdit::Remove)),
        )
        .collect();
    edit_main_cf_with(path, &edits)
}

/// Comments out the settings of `names` in main.cf (postconf -#).
pub fn comment_out_main_cf(path: &Path, names: &[String]) -> Result<(), ConfigError> {
    let edits: Vec<(String, MainCfEdit)> = names
        .iter()
        .map(|name| (name.clone(), MainCfEdit::CommentOut))
        .collect();
    edit_main_cf_with(path, &edits)
}

/// Replaces (Some) or removes (None) the master.cf entry `name/type`, or appends it.
/// The new entry is the full master.cf text (`name type private ... command args`),
/// checked with the master.cf parser; its service and type must be `name`/`type`.
/// Removing an entry that is not there changes nothing.
pub fn edit_master_cf_entry(
    path: &Path,
    name: &str,
    service_type: &str,
    entry: Option<&str>,
) -> Result<(), ConfigError> {
    let new_text = match entry {
        Some(entry) => {
            let entry = entry.trim();
            let parsed = MasterCf::parse(entry, path, 100)
                .map_err(|error| edit_error(path, format!("bad entry: {error}")))?;
            match parsed.services.as_slice() {
                [only] if only.name == name && only.service_type.as_str() == service_type => {}
                [only] => {
                    return Err(edit_error(
                        path,
                        format!(
                            "entry is for {}/{}, not {name}/{service_type}",
                            only.name, only.service_type
                        ),
                    ))
                }
                _ => {
                    return Err(edit_error(
                        path,
                        "expected exactly one master.cf entry".to_string(),
                    ))
                }
            }
            Some(entry.to_string())
        }
        None => None,
    };
    let text = read_text(path, new_text.is_some())?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut dropped = vec![false; lines.len()];
    let mut insert_at: Option<usize> = None;
    for entry in entries_of(&lines) {
        let mut words = lines[entry.first].split_whitespace();
        if words.next() != Some(name) || words.next() != Some(service_type) {
            continue;
        }
        insert_at.get_or_insert(entry.first);
        dropped[entry.first] = true;
        for index in entry.continuations {
            dropped[index] = true;
        }
    }
    let mut out = String::with_capacity(text.len() + 128);
    for (index, line) in lines.iter().enumerate() {
        if insert_at == Some(index) {
            if let Some(new) = &new_text {
                push_line(&mut out, new);
            }
        }
        if !dropped[index] {
            out.push_str(line);
        }
    }
    if let (None, Some(new)) = (insert_at, &new_text) {
        push_line(&mut out, new);
    }
    replace_file(path, &out)
}
