//! Edits of main.cf and master.cf that keep comments and order (postconf -e, -X, -M).

use crate::ConfigError;
use std::path::Path;

/// Sets `sets` (replacing an existing line, continuation lines included, in place, or
/// appending) and removes `removes`, writing through a temporary file and rename.
pub fn edit_main_cf(path: &Path, sets: &[(String, String)], removes: &[String]) -> Result<(), ConfigError> {
    let _ = (path, sets, removes);
    todo!()
}

/// Replaces (Some) or removes (None) the master.cf entry `name/type`, or appends it.
pub fn edit_master_cf_entry(path: &Path, name: &str, service_type: &str, entry: Option<&str>) -> Result<(), ConfigError> {
    let _ = (path, name, service_type, entry);
    todo!()
}
