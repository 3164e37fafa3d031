//! main.cf: parsing, `-o` overrides, `$name` expansion and typed access.

use crate::ConfigError;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the configuration lives unless `-c DIR` or `MAIL_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/rostfix";

/// The configuration directory: the command-line `-c DIR` if given, else `MAIL_CONFIG`,
/// else [`DEFAULT_CONFIG_DIR`].
pub fn config_dir(cli: Option<&Path>) -> PathBuf {
    let _ = cli;
    todo!()
}

/// One explicit setting, where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    /// The value as written (continuation lines joined with one space), unexpanded.
    pub raw: String,
    /// main.cf's path, or None for a `-o` override.
    pub file: Option<PathBuf>,
    pub line: usize,
}

/// main.cf as loaded, plus overrides.
#[derive(Debug, Clone, Default)]
pub struct MainCf {
    _private: (),
}

impl MainCf {
    /// Loads `dir/main.cf`. A missing file is an error; unknown parameters become
    /// warnings (see [`MainCf::warnings`]); a known parameter with a bad value (after
    /// expansion) is [`ConfigError::BadValue`] naming file, line and parameter.
    pub fn load(dir: &Path) -> Result<MainCf, ConfigError> {
        let _ = dir;
        todo!()
    }

    /// Parses main.cf text; `file` is used in errors only.
    pub fn parse(text: &str, file: &Path) -> Result<MainCf, ConfigError> {
        let _ = (text, file);
        todo!()
    }

    /// The configuration directory this was loaded from (for `-c`, `MAIL_CONFIG`).
    pub fn config_dir(&self) -> &Path {
        todo!()
    }

    /// Warnings found while loading, each already phrased for the log, e.g.
    /// `/etc/rostfix/main.cf, line 12: unused parameter: foo_bar=1`.
    pub fn warnings(&self) -> &[String] {
        todo!()
    }

    /// Applies a `-o name=value` override (validated like a main.cf line).
    pub fn set_override(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let _ = (name, value);
        todo!()
    }

    /// The explicit settings in file order, overrides last (postconf -n).
    pub fn explicit(&self) -> Vec<Setting> {
        todo!()
    }

    /// The explicit raw value, if set in main.cf or by override.
    pub fn raw(&self, name: &str) -> Option<&str> {
        let _ = name;
        todo!()
    }

    /// The expanded value: explicit if set, else the default; `$name`, `${name}`,
    /// `$(name)`, `${name?text}` and `${name:text}` expanded. Unknown and unset names
    /// expand to the empty string.
    pub fn get(&self, name: &str) -> String {
        let _ = name;
        todo!()
    }

    /// yes/no parameter (validated at load, so this does not fail for known params).
    pub fn get_bool(&self, name: &str) -> bool {
        let _ = name;
        todo!()
    }

    /// Integer parameter.
    pub fn get_int(&self, name: &str) -> i64 {
        let _ = name;
        todo!()
    }

    /// Time parameter (`100s`, `5d`, bare number in the parameter's default unit).
    pub fn get_time(&self, name: &str) -> Duration {
        let _ = name;
        todo!()
    }

    /// List parameter: split on commas and white space, empty items dropped.
    pub fn get_list(&self, name: &str) -> Vec<String> {
        let _ = name;
        todo!()
    }
}
