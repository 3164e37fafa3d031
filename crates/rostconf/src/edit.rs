//! -e, -X, -#: editing main.cf without loading (so a broken main.cf can be repaired).

use crate::Fatal;
use rostfix_config::{check_value, comment_out_main_cf, edit_main_cf, lookup_param};
use std::path::Path;

/// Sets each `name=value`. A literal value that is wrong for a known parameter's kind
/// is refused before anything is written (values with `$` are checked at load).
pub fn set(dir: &Path, settings: &[String]) -> Result<(), Fatal> {
    let mut sets = Vec::new();
    for setting in settings {
        let Some((name, value)) = setting.split_once('=') else {
            return Err(Fatal::Usage(format!(
                "expected name=value, got \"{setting}\""
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        if let Some(def) = lookup_param(name) {
            if !value.contains('$') {
                if let Err(expected) = check_value(def.kind, value) {
                    return Err(Fatal::BadSetting(format!(
                        "bad value for parameter {name}: \"{value}\": {expected}"
                    )));
                }
            }
        }
        sets.push((name.to_string(), value.to_string()));
    }
    Ok(edit_main_cf(&dir.join("main.cf"), &sets, &[])?)
}

/// Removes the named parameters (-X).
pub fn remove(dir: &Path, names: &[String]) -> Result<(), Fatal> {
    Ok(edit_main_cf(&dir.join("main.cf"), &[], names)?)
}

/// Comments out the named parameters (-#).
pub fn comment_out(dir: &Path, names: &[String]) -> Result<(), Fatal> {
    Ok(comment_out_main_cf(&dir.join("main.cf"), names)?)
}
