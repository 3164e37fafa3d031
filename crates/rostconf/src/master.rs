//! -M: showing (-Mf folded), replacing (-M / -Me), deleting (-MX) and commenting out
//! (-M#) master.cf entries.

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

/// postconf -Mf's fold: the eight columns on the first line, then each `-o name=value`
/// on a line of its own indented by 4, other arguments joined while they fit in 80.
pub fn fold(entry: &RawServiceEntry) -> String {
    let head = RawServiceEntry {
        words: entry.words.iter().take(8).cloned().collect(),
        line: entry.line,
        last_line: entry.last_line,
    }
    .normalized();
    let mut lines = vec![head];
    let args = entry.words.get(8..).unwrap_or_default();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "-o" && i + 1 < args.len() {
            lines.push(format!("    -o {}", args[i + 1]));
            i += 2;
            continue;
        }
        let last = lines.len() - 1;
        let fits = lines[last].len() + 1 + args[i].len() <= 80;
        if fits && !lines[last].starts_with("    -o ") {
            lines[last].push(' ');
            lines[last].push_str(&args[i]);
        } else {
            lines.push(format!("    {}", args[i]));
        }
        i += 1;
    }
    lines.join("\n")
}

/// -M#: comments out every physical line of each `service/type` entry.
pub fn comment_out(dir: &Path, keys: &[String]) -> Result<(), Fatal> {
    let path = dir.join("master.cf");
    for key in keys {
        let (name, service_type) = service_key(key)?;
        let entries = read_entries(&path)?;
        let Some(entry) = entries
            .iter()
            .find(|e| e.name() == name && e.service_type() == service_type)
        else {
            eprintln!("rostconf: warning: {name}/{service_type}: no such master.cf entry");
            continue;
        };
        let text =
            std::fs::read_to_string(&path).map_err(|source| rostfix_config::ConfigError::Io {
                path: path.clone(),
                source,
            })?;
        let new: String = text
            .split_inclusive('\n')
            .enumerate()
            .map(|(i, l)| {
                if (entry.line..=entry.last_line).contains(&(i + 1)) {
                    format!("#{l}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        write_atomically(&path, &new)?;
    }
    Ok(())
}

/// Writes `text` to a temporary file beside `path` and renames it into place, keeping
/// the old file's mode.
fn write_atomically(path: &Path, text: &str) -> Result<(), Fatal> {
    let io = |source| rostfix_config::ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let perms = std::fs::metadata(path).map_err(io)?.permissions();
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::set_permissions(&tmp, perms).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

/// Prints the entries selected by `selectors` (all when empty), one per line, or
/// folded (`fold`).
pub fn show_folded(
    dir: &Path,
    selectors: &[String],
    folded: bool,
    out: &mut impl Write,
) -> Result<(), Fatal> {
    if !folded {
        return show(dir, selectors, out);
    }
    let entries = read_entries(&dir.join("master.cf"))?;
    for entry in &entries {
        if selectors.is_empty() || selectors.iter().any(|selector| matches(entry, selector)) {
            writeln!(out, "{}", fold(entry)).map_err(Fatal::Output)?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_puts_each_o_on_its_own_line() {
        let e = parse_master_cf_raw(
            "submission inet n - n - - smtpd -o syslog_name=rostfix/submission -o smtpd_tls_security_level=encrypt -v\n",
            Path::new("master.cf"),
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            fold(&e),
            "submission inet  n       -       n       -       -       smtpd\n    -o syslog_name=rostfix/submission\n    -o smtpd_tls_security_level=encrypt\n    -v"
        );
    }
}
