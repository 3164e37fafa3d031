//! -F and -P: master.cf entries by field (`service/type/field`) and by `-o` parameter
//! (`service/type/name`), shown as postconf shows them (`smtp/inet/chroot = y`,
//! `submission/inet/syslog_name = postfix/submission`) and edited in place.
//!
//! Field names are postconf's: service, type, private, unprivileged, chroot, wakeup,
//! process_limit, command (the command with its arguments).

use crate::Fatal;
use rostfix_config::{edit_master_cf_entry, parse_master_cf_raw, RawServiceEntry};
use std::io::Write;
use std::path::Path;

/// postconf's master.cf field names, in column order (command is columns 8..).
pub const FIELDS: [&str; 8] = [
    "service",
    "type",
    "private",
    "unprivileged",
    "chroot",
    "wakeup",
    "process_limit",
    "command",
];

fn read_entries(dir: &Path) -> Result<Vec<RawServiceEntry>, Fatal> {
    let path = dir.join("master.cf");
    let text =
        std::fs::read_to_string(&path).map_err(|source| rostfix_config::ConfigError::Io {
            path: path.clone(),
            source,
        })?;
    Ok(parse_master_cf_raw(&text, &path)?)
}

/// The value of field `index` of an entry.
fn field_value(entry: &RawServiceEntry, index: usize) -> String {
    if index == 7 {
        return entry.words.get(7..).unwrap_or_default().join(" ");
    }
    entry
        .words
        .get(index)
        .cloned()
        .unwrap_or_else(|| "-".into())
}

/// The `-o name=value` parameters of an entry's command arguments, in order.
pub fn entry_params(entry: &RawServiceEntry) -> Vec<(String, String)> {
    let args = entry.words.get(8..).unwrap_or_default();
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let setting = if args[i] == "-o" {
            i += 1;
            args.get(i).map(String::as_str)
        } else {
            args[i].strip_prefix("-o")
        };
        if let Some((name, value)) = setting.and_then(|s| s.split_once('=')) {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
        i += 1;
    }
    out
}

/// `service/type[/last]` selector parts; a missing part matches everything.
fn split_selector(sel: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    fn non_empty(x: Option<&str>) -> Option<&str> {
        x.filter(|s| !s.is_empty())
    }
    let mut parts = sel.splitn(3, '/');
    (
        non_empty(parts.next()),
        non_empty(parts.next()),
        non_empty(parts.next()),
    )
}

fn entry_matches(e: &RawServiceEntry, service: Option<&str>, stype: Option<&str>) -> bool {
    service.is_none_or(|s| e.name() == s) && stype.is_none_or(|t| e.service_type() == t)
}

/// Prints `service/type/field = value` for the fields selected (all when none).
pub fn show_fields(dir: &Path, selectors: &[String], out: &mut impl Write) -> Result<(), Fatal> {
    let entries = read_entries(dir)?;
    let all = [String::new()];
    let selectors = if selectors.is_empty() {
        &all[..]
    } else {
        selectors
    };
    for sel in selectors {
        let (service, stype, field) = split_selector(sel);
        if let Some(f) = field {
            if !FIELDS.contains(&f) {
                eprintln!("rostconf: warning: {sel}: unknown master.cf field: {f}");
                continue;
            }
        }
        for e in entries.iter().filter(|e| entry_matches(e, service, stype)) {
            for (i, name) in FIELDS.iter().enumerate() {
                if field.is_none_or(|f| f == *name) {
                    writeln!(
                        out,
                        "{}/{}/{name} = {}",
                        e.name(),
                        e.service_type(),
                        field_value(e, i)
                    )
                    .map_err(Fatal::Output)?;
                }
            }
        }
    }
    Ok(())
}

/// Prints `service/type/name = value` for the -o parameters selected.
pub fn show_params(dir: &Path, selectors: &[String], out: &mut impl Write) -> Result<(), Fatal> {
    let entries = read_entries(dir)?;
    let all = [String::new()];
    let selectors = if selectors.is_empty() {
        &all[..]
    } else {
        selectors
    };
    for sel in selectors {
        let (service, stype, param) = split_selector(sel);
        for e in entries.iter().filter(|e| entry_matches(e, service, stype)) {
            for (name, value) in entry_params(e) {
                if param.is_none_or(|p| p == name) {
                    writeln!(out, "{}/{}/{name} = {value}", e.name(), e.service_type())
                        .map_err(Fatal::Output)?;
                }
            }
        }
    }
    Ok(())
}

/// `service/type/last=value` -> its parts; all three parts are required.
fn parse_setting(setting: &str) -> Result<(String, String, String, Option<String>), Fatal> {
    let (key, value) = match setting.split_once('=') {
        Some((k, v)) => (k, Some(v.trim().to_string())),
        None => (setting, None),
    };
    match split_selector(key.trim()) {
        (Some(s), Some(t), Some(l)) => Ok((s.into(), t.into(), l.into(), value)),
        _ => Err(Fatal::Usage(format!(
            "expected service/type/name, got \"{setting}\""
        ))),
    }
}

/// Finds `service/type` or says there is no such entry.
fn find<'a>(
    entries: &'a [RawServiceEntry],
    s: &str,
    t: &str,
) -> Result<&'a RawServiceEntry, Fatal> {
    entries
        .iter()
        .find(|e| e.name() == s && e.service_type() == t)
        .ok_or_else(|| Fatal::BadSetting(format!("{s}/{t}: no such master.cf entry")))
}

/// Writes `words` as the entry `old_service/old_type` (removing and appending when the
/// service or type itself changes).
fn write_entry(dir: &Path, old: (&str, &str), words: &[String]) -> Result<(), Fatal> {
    let path = dir.join("master.cf");
    let line = words.join(" ");
    let (name, stype) = (&words[0], &words[1]);
    if name != old.0 || stype != old.1 {
        edit_master_cf_entry(&path, old.0, old.1, None)?;
    }
    Ok(edit_master_cf_entry(&path, name, stype, Some(&line))?)
}

/// -F service/type/field=value.
pub fn edit_fields(dir: &Path, settings: &[String]) -> Result<(), Fatal> {
    for setting in settings {
        let (s, t, field, value) = parse_setting(setting)?;
        let value = value.unwrap_or_default();
        let Some(index) = FIELDS.iter().position(|f| *f == field) else {
            return Err(Fatal::Usage(format!("unknown master.cf field: {field}")));
        };
        let entries = read_entries(dir)?;
        let mut words = find(&entries, &s, &t)?.words.clone();
        if index == 7 {
            words.truncate(7);
            words.extend(value.split_whitespace().map(String::from));
            if words.len() < 8 {
                return Err(Fatal::BadSetting("command field cannot be empty".into()));
            }
        } else {
            if value.is_empty() || value.contains(char::is_whitespace) {
                return Err(Fatal::BadSetting(format!(
                    "bad value for field {field}: \"{value}\""
                )));
            }
            words[index] = value;
        }
        write_entry(dir, (&s, &t), &words)?;
    }
    Ok(())
}

/// -P service/type/name=value (set) or, with `remove`, -PX service/type/name.
pub fn edit_params(dir: &Path, settings: &[String], remove: bool) -> Result<(), Fatal> {
    for setting in settings {
        let (s, t, name, value) = parse_setting(setting)?;
        if !remove
            && value
                .as_deref()
                .is_none_or(|v| v.contains(char::is_whitespace))
        {
            return Err(Fatal::BadSetting(format!(
                "-P needs service/type/name=value without white space in the value, got \"{setting}\""
            )));
        }
        let entries = read_entries(dir)?;
        let entry = find(&entries, &s, &t)?;
        // Rebuild the arguments: other words kept, our name's -o pairs dropped.
        let mut words: Vec<String> = entry.words[..8.min(entry.words.len())].to_vec();
        let args = entry.words.get(8..).unwrap_or_default();
        let mut i = 0;
        let mut found = false;
        while i < args.len() {
            // (found doubles as "already replaced": a repeated -o keeps one value)
            let (setting_word, width) = if args[i] == "-o" {
                (args.get(i + 1).map(String::as_str), 2)
            } else {
                (args[i].strip_prefix("-o").filter(|x| !x.is_empty()), 1)
            };
            let is_ours = setting_word
                .and_then(|w| w.split_once('='))
                .is_some_and(|(n, _)| n.trim() == name);
            if is_ours {
                if !remove && !found {
                    // Replace in place, keeping the parameter's position.
                    words.push("-o".into());
                    words.push(format!("{name}={}", value.clone().unwrap_or_default()));
                }
                found = true;
            } else {
                words.extend(args[i..(i + width).min(args.len())].iter().cloned());
            }
            i += width;
        }
        if !found {
            if remove {
                eprintln!("rostconf: warning: {s}/{t}: no -o {name} setting");
                continue;
            }
            words.push("-o".into());
            words.push(format!("{name}={}", value.unwrap_or_default()));
        }
        write_entry(dir, (&s, &t), &words)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> RawServiceEntry {
        parse_master_cf_raw(text, Path::new("master.cf"))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn params_in_both_spellings() {
        let e = entry("sub inet n - n - - smtpd -o a=1 -ob=2 -v\n  -o c = 3\n");
        assert_eq!(
            entry_params(&e),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string()),
            ]
        );
        assert_eq!(field_value(&e, 7), "smtpd -o a=1 -ob=2 -v -o c = 3");
        assert_eq!(field_value(&e, 4), "n");
    }

    #[test]
    fn selectors() {
        assert_eq!(split_selector("a/b/c"), (Some("a"), Some("b"), Some("c")));
        assert_eq!(split_selector("a"), (Some("a"), None, None));
        assert_eq!(split_selector(""), (None, None, None));
        assert!(parse_setting("a/b=c").is_err());
        assert_eq!(
            parse_setting("a/b/c = d").unwrap(),
            ("a".into(), "b".into(), "c".into(), Some("d".into()))
        );
    }
}
