//! The error type of every lookup table: open failures and lookup failures, kept apart
//! from "not found" (which is `Ok(None)`), because Postfix turns a lookup error into a
//! temporary failure and never into a fall-through.

use std::path::PathBuf;

/// Everything that can go wrong opening or querying a table.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The `type:name` text has no known type.
    #[error("unsupported dictionary type: {0}")]
    UnknownType(String),
    /// The `type:name` text is malformed (e.g. an unbalanced `inline:{`).
    #[error("{spec}: {reason}")]
    BadSpec {
        /// The table as written.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read.
    #[error("open {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// A syntax error in a table's source file.
    #[error("{path}, line {line}: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number (of the first line of a continued entry).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The indexed file is missing or older than its source: run rostmap.
    #[error("database {db} is {state} source file {source_file}: run rostmap {source_file}")]
    Stale {
        /// The .rdb file.
        db: PathBuf,
        /// "missing for" or "older than".
        state: &'static str,
        /// The source text file.
        source_file: PathBuf,
    },
    /// The indexed file is damaged.
    #[error("corrupt database {path}: {reason}")]
    Corrupt {
        /// The .rdb file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// A lookup failed for a reason other than "not found" (system error etc).
    #[error("{table}: lookup error: {reason}")]
    Lookup {
        /// The table as `type:name`.
        table: String,
        /// What failed.
        reason: String,
    },
    /// An update or delete on a table that cannot be written (a type with no write
    /// support, or a proxy: table whose service refuses it).
    #[error("{table}: {reason}")]
    NotWritable {
        /// The table as `type:name`.
        table: String,
        /// Why not.
        reason: String,
    },
}

impl MapError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> MapError {
        MapError::Io {
            path: path.into(),
            source,
        }
    }
}
