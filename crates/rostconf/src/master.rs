//! -M: showing, replacing and deleting master.cf entries.

use crate::Fatal;
use rostfix_config::{edit_master_cf_entry, parse_master_cf_raw, MasterCf, RawServiceEntry};
use std::io::Write;
use std::path::Path;

/// Reads master.cf, checks it with the real parser, and returns its entries as written.
fn read_entries(path: &Path) -> Result<Vec<RawServiceEntry>, Fatal> {
    let text = std::fs::read_to_string(path).map_err(|source| rostfix_config::ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    MasterCf::parse(&text, path, 100)?;
    Ok(parse_master_cf_raw(&text, path)?)
}

/// True when `entry` matches a selector `service` or `service/type`.
fn matches(entry: &RawServiceEntry, selector: &str) -> bool {
    match selector.split_once('/') {
        Some((name, service_type)) => entry.name() == name && entry.service_type() == service_type,
        None => entry.name() == selector,
    }
}

/// Splits `service/type` into its parts; both must be non-empty.
fn service_key(key: &str) -> Result<(&str, &str), Fatal> {
    match key.trim().split_once('/') {
        Some((name, service_type))
            if !name.is_empty() && !service_type.is_empty() && !service_type.contains('/') =>
        {
            Ok((name, service_type))
        }
        _ => Err(Fatal::Usage(format!(
            "expected service/type, got \"{key}\""
        ))),
    }
}

/// Prints the entries selected by `selectors` (all when empty), one per line.
pub fn show(dir: &Path, selectors: &[String], out: &mut impl Write) -> Result<(), Fatal> {
    let entries = read_entries(&dir.join("master.cf"))?;
    for selector in selectors {
        if !entries.iter().any(|entry| matches(entry, selector)) {
            eprintln!("rostconf: warning: {selector}: no such master.cf entry");
        }
    }
    for entry in &entries {
        if selectors.is_empty() || selectors.iter().any(|selector| matches(entry, selector)) {
            writeln!(out, "{}", entry.normalized()).map_err(Fatal::Output)?;
        }
    }
    Ok(())
}

/// Replaces or appends each `service/type=entry`.
pub fn edit(dir: &Path, settings: &[String]) -> Result<(), Fatal> {
    let path = dir.join("master.cf");
    for setting in settings {
        let Some((key, entry)) = setting.split_once('=') else {
            return Err(Fatal::Usage(format!(
                "expected service/type=entry, got \"{setting}\""
            )));
        };
        let (name, service_type) = service_key(key)?;
        edit_master_cf_entry(&path, name, service_type, Some(entry))?;
    }
    Ok(())
}

/// Deletes each `service/type`, warning about entries that are not there.
pub fn remove(dir: &Path, keys: &[String]) -> Result<(), Fatal> {
    let path = dir.join("master.cf");
    for key in keys {
        let (name, service_type) = service_key(key)?;
        // A file with a syntax error elsewhere can still lose an entry; only the
        // "not there" warning needs a clean parse.
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Ok(entries) = parse_master_cf_raw(&text, &path) {
            if !entries
                .iter()
                .any(|entry| entry.name() == name && entry.service_type() == service_type)
            {
                eprintln!("rostconf: warning: {name}/{service_type}: no such master.cf entry");
                continue;
            }
        }
        edit_master_cf_entry(&path, name, service_type, None)?;
    }
    Ok(())
}
