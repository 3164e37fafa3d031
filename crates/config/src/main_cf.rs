//! main.cf: parsing, `-o` overrides, `$name` expansion and typed access.

use crate::expand::{referenced_names, Expander};
use crate::lines::logical_lines;
use crate::params::{check_value, lookup_param, parse_bool, parse_int, parse_time, ParamKind};
use crate::ConfigError;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the configuration lives unless `-c DIR` or `MAIL_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/rostfix";

/// Postfix's DEF_MYDOMAIN: the domain of a host name without one.
const DEFAULT_DOMAIN: &str = "localdomain";

/// The configuration directory: the command-line `-c DIR` if given, else `MAIL_CONFIG`,
/// else [`DEFAULT_CONFIG_DIR`].
pub fn config_dir(cli: Option<&Path>) -> PathBuf {
    if let Some(dir) = cli {
        return dir.to_path_buf();
    }
    match std::env::var_os("MAIL_CONFIG") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_CONFIG_DIR),
    }
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
    /// The configuration directory (config_directory's value).
    dir: PathBuf,
    /// main.cf's settings in file order; a repeated name keeps only its last setting.
    settings: Vec<Setting>,
    /// `-o` overrides in the order given; they win over main.cf.
    overrides: Vec<Setting>,
    warnings: Vec<String>,
    /// The system host name, read once when loading (myhostname's default).
    system_hostname: String,
}

/// The system host name, or `localhost` when it cannot be read.
fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Splits `name = value` into trimmed parts; None when there is no `=` or no name, or
/// the name holds white space.
pub(crate) fn split_setting(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    Some((name, value.trim()))
}

impl MainCf {
    /// Loads `dir/main.cf`. A missing file is an error; unknown parameters become
    /// warnings (see [`MainCf::warnings`]); a known parameter with a bad value (after
    /// expansion) is [`ConfigError::BadValue`] naming file, line and parameter.
    pub fn load(dir: &Path) -> Result<MainCf, ConfigError> {
        let path = dir.join("main.cf");
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let mut config = MainCf::parse(&text, &path)?;
        config.dir = dir.to_path_buf();
        Ok(config)
    }

    /// Parses main.cf text; `file` is used in errors only.
    pub fn parse(text: &str, file: &Path) -> Result<MainCf, ConfigError> {
        let mut config = MainCf::defaults(file.parent().unwrap_or(Path::new(DEFAULT_CONFIG_DIR)));
        for logical in logical_lines(text, file)? {
            let Some((name, value)) = split_setting(&logical.text) else {
                return Err(ConfigError::Syntax {
                    file: file.to_path_buf(),
                    line: logical.first,
                    message: format!("missing '=' after parameter name: \"{}\"", logical.text),
                });
            };
            // Postfix lets the last setting win; keep only that one, in its place.
            config.settings.retain(|setting| setting.name != name);
            config.settings.push(Setting {
                name: name.to_string(),
                raw: value.to_string(),
                file: Some(file.to_path_buf()),
                line: logical.first,
            });
        }
        config.validate_all()?;
        config.warnings = config.unused_warnings();
        Ok(config)
    }

    /// A configuration with no explicit settings: every parameter has its default
    /// (postconf -d). `dir` is what config_directory reports.
    pub fn defaults(dir: &Path) -> MainCf {
        MainCf {
            dir: dir.to_path_buf(),
            system_hostname: system_hostname(),
            ..MainCf::default()
        }
    }

    /// The configuration directory this was loaded from (for `-c`, `MAIL_CONFIG`).
    pub fn config_dir(&self) -> &Path {
        &self.dir
    }

    /// Warnings found while loading, each already phrased for the log, e.g.
    /// `/etc/rostfix/main.cf: unused parameter: foo_bar=1` (postconf's wording), judged
    /// on main.cf alone: `unused::warnings` judges them against master.cf too, which is
    /// what master (at start and reload), `rostfix check` and rostconf report. The
    /// settings that have no effect in Rostfix are `ineffective::setting_warnings`.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Applies a `-o name=value` override (validated like a main.cf line).
    pub fn set_override(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let name = name.trim();
        let value = value.trim();
        let previous = self.overrides.clone();
        self.overrides.retain(|setting| setting.name != name);
        self.overrides.push(Setting {
            name: name.to_string(),
            raw: value.to_string(),
            file: None,
            line: 0,
        });
        let checked = match self.expanded(name) {
            Ok(expanded) => match lookup_param(name).map(|def| check_value(def.kind, &expanded)) {
                Some(Err(expected)) => Err(ConfigError::BadOverride {
                    param: name.to_string(),
                    value: value.to_string(),
                    expected,
                }),
                _ => Ok(()),
            },
            Err(error) => Err(error),
        };
        if checked.is_err() {
            self.overrides = previous;
        }
        checked
    }

    /// The explicit settings in file order, overrides last (postconf -n).
    pub fn explicit(&self) -> Vec<Setting> {
        self.settings
            .iter()
            .chain(self.overrides.iter())
            .cloned()
            .collect()
    }

    /// The explicit raw value, if set in main.cf or by override.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.overrides
            .iter()
            .chain(self.settings.iter())
            .find(|setting| setting.name == name)
            .map(|setting| setting.raw.as_str())
    }

    /// The unexpanded default of `name`: the table's, or the computed one for
    /// config_directory, myhostname and mydomain. None for an unknown parameter.
    pub fn default_raw(&self, name: &str) -> Option<String> {
        self.default_raw_guarded(name, false)
    }

    /// The default; `in_mydomain` is set while computing mydomain's default, so a
    /// myhostname that refers to `$mydomain` sees Postfix's fallback instead of looping.
    fn default_raw_guarded(&self, name: &str, in_mydomain: bool) -> Option<String> {
        let def = lookup_param(name)?;
        let value = match name {
            "config_directory" => self.dir.display().to_string(),
            "myhostname" => self.default_myhostname(),
            "mydomain" if in_mydomain => DEFAULT_DOMAIN.to_string(),
            "mydomain" => {
                let lookup = |n: &str| self.lookup_guarded(n, true);
                let hostname = Expander { lookup: &lookup }
                    .value_of("myhostname", 0)
                    .unwrap_or_default();
                domain_of(&hostname)
            }
            _ => def.default.to_string(),
        };
        Some(value)
    }

    /// Postfix's check_myhostname: the system name, with `.$mydomain` (if mydomain is
    /// set literally) or `.localdomain` appended when it has no dot.
    fn default_myhostname(&self) -> String {
        if self.system_hostname.contains('.') {
            return self.system_hostname.clone();
        }
        let domain = match self.raw("mydomain") {
            Some(domain) if !domain.is_empty() && !domain.contains('$') => domain,
            _ => DEFAULT_DOMAIN,
        };
        format!("{}.{}", self.system_hostname, domain)
    }

    fn lookup_guarded(&self, name: &str, in_mydomain: bool) -> Option<String> {
        match self.raw(name) {
            Some(raw) => Some(raw.to_string()),
            None => self.default_raw_guarded(name, in_mydomain),
        }
    }

    /// The expanded value, or the recursion error.
    pub fn expanded(&self, name: &str) -> Result<String, ConfigError> {
        let lookup = |n: &str| self.lookup_guarded(n, false);
        Expander { lookup: &lookup }.value_of(name, 0)
    }

    /// Expands `$name` references in any text against this configuration.
    pub fn expand_text(&self, text: &str) -> Result<String, ConfigError> {
        let lookup = |n: &str| self.lookup_guarded(n, false);
        Expander { lookup: &lookup }.expand(text, 0)
    }

    /// The expanded value: explicit if set, else the default; `$name`, `${name}`,
    /// `$(name)`, `${name?text}` and `${name:text}` expanded. Unknown and unset names
    /// expand to the empty string.
    pub fn get(&self, name: &str) -> String {
        self.expanded(name).unwrap_or_else(|error| {
            // Load and set_override reject loops, so only a name nobody validated
            // (unknown, never set) can get here; treat it as empty like Postfix.
            log::warn!("{error}");
            String::new()
        })
    }

    /// The expanded value parsed by `parse`, falling back to the parsed default (values
    /// are validated at load, so the fallback only serves misuse such as a wrong kind).
    fn typed<T>(&self, name: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        parse(&self.get(name)).or_else(|| {
            let default = self.default_raw(name)?;
            parse(&self.expand_text(&default).unwrap_or_default())
        })
    }

    /// yes/no parameter (validated at load, so this does not fail for known params).
    pub fn get_bool(&self, name: &str) -> bool {
        self.typed(name, parse_bool).unwrap_or(false)
    }

    /// Integer parameter.
    pub fn get_int(&self, name: &str) -> i64 {
        self.typed(name, parse_int).unwrap_or(0)
    }

    /// Time parameter (`100s`, `5d`, bare number in the parameter's default unit).
    pub fn get_time(&self, name: &str) -> Duration {
        let unit = match lookup_param(name).map(|def| def.kind) {
            Some(ParamKind::Time(unit)) => unit,
            _ => 's',
        };
        Duration::from_secs(
            self.typed(name, |value| parse_time(value, unit))
                .unwrap_or(0),
        )
    }

    /// Size or count parameter as u64 (bytes, recipients...): get_int, never negative.
    pub fn get_u64(&self, name: &str) -> u64 {
        u64::try_from(self.get_int(name)).unwrap_or(0)
    }

    /// Count parameter as u32, clamped: a limit too large for u32 means "no limit" in
    /// practice, as it does in Postfix's int-typed parameters.
    pub fn get_u32(&self, name: &str) -> u32 {
        u32::try_from(self.get_u64(name)).unwrap_or(u32::MAX)
    }

    /// The error for a value of `name` that has the right type but is still unusable
    /// (a reply code out of range, an unknown keyword): [`ConfigError::BadValue`] with
    /// the main.cf file and line that set it, [`ConfigError::BadOverride`] for `-o`,
    /// and the main.cf path with line 0 for a default.
    pub fn bad_value(&self, name: &str, expected: impl Into<String>) -> ConfigError {
        let value = self.get(name);
        let expected = expected.into();
        let setting = self
            .overrides
            .iter()
            .chain(self.settings.iter().rev())
            .find(|setting| setting.name == name);
        match setting {
            Some(Setting {
                file: None, raw, ..
            }) => ConfigError::BadOverride {
                param: name.to_string(),
                value: raw.clone(),
                expected,
            },
            Some(Setting {
                file: Some(file),
                line,
                ..
            }) => ConfigError::BadValue {
                file: file.clone(),
                line: *line,
                param: name.to_string(),
                value,
                expected,
            },
            None => ConfigError::BadValue {
                file: self.dir.join("main.cf"),
                line: 0,
                param: name.to_string(),
                value,
                expected,
            },
        }
    }

    /// List parameter: split on commas and white space outside `{ }`, empty items dropped.
    pub fn get_list(&self, name: &str) -> Vec<String> {
        crate::list::split_list(&self.get(name))
    }

    /// Expands every explicit setting (catching loops) and checks known typed ones.
    fn validate_all(&self) -> Result<(), ConfigError> {
        for setting in &self.settings {
            let expanded = self.expanded(&setting.name)?;
            let Some(def) = lookup_param(&setting.name) else {
                continue;
            };
            if let Err(expected) = check_value(def.kind, &expanded) {
                return Err(ConfigError::BadValue {
                    file: setting.file.clone().unwrap_or_default(),
                    line: setting.line,
                    param: setting.name.clone(),
                    value: expanded,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// `FILE: unused parameter: NAME=VALUE` (exactly postconf's warning) for each unknown
    /// name that no other setting refers to (a user-defined `$name` is in use, as in
    /// Postfix).
    fn unused_warnings(&self) -> Vec<String> {
        // A smtpd_restriction_classes name is a parameter smtpd reads, as in Postfix.
        let mut referenced: HashSet<String> = self
            .settings
            .iter()
            .flat_map(|setting| referenced_names(&setting.raw))
            .collect();
        referenced.extend(self.get_list("smtpd_restriction_classes"));
        self.settings
            .iter()
            .filter(|setting| {
                lookup_param(&setting.name).is_none()
                    && !referenced.contains(&setting.name)
                    // Judged against master.cf's services by per_transport::warnings.
                    && crate::per_transport::split(&setting.name).is_none()
            })
            .map(|setting| {
                format!(
                    "{}: unused parameter: {}={}",
                    setting
                        .file
                        .as_deref()
                        .unwrap_or(Path::new("main.cf"))
                        .display(),
                    setting.name,
                    setting.raw
                )
            })
            .collect()
    }
}

/// Postfix's check_mydomainname: what follows the first dot, or `localdomain` when the
/// name has no dot or is itself a domain (`example.com`).
fn domain_of(hostname: &str) -> String {
    match hostname.split_once('.') {
        Some((_, rest)) if rest.contains('.') => rest.to_string(),
        _ => DEFAULT_DOMAIN.to_string(),
    }
}
