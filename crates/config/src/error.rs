//! Configuration errors: each names the file, and where it applies the line and parameter.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not `name = value`, a continuation with nothing before it, ...
    #[error("{file}, line {line}: {message}")]
    Syntax {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// A known parameter with a value of the wrong kind, e.g. `max_use = lots`.
    #[error("{file}, line {line}: bad value for parameter {param}: \"{value}\": {expected}")]
    BadValue {
        file: PathBuf,
        line: usize,
        param: String,
        value: String,
        expected: String,
    },
    /// `-o name=value` override with a bad value (no file line).
    #[error("override -o {param}={value}: {expected}")]
    BadOverride {
        param: String,
        value: String,
        expected: String,
    },
    /// `$name` recursion deeper than any sane configuration.
    #[error("parameter {param}: recursive expansion")]
    Recursion { param: String },
    /// An edit (postconf -e, -X, -M) that cannot be made, e.g. a bad parameter name.
    #[error("{path}: {message}")]
    Edit { path: PathBuf, message: String },
}
