//! Queue errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file cannot be parsed: truncated, unknown record, missing end record, bad
    /// version. The caller moves it to corrupt/ and logs this text.
    #[error("{path}: corrupt queue file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A queue file did not exist (already delivered, deleted by rostsuper, ...).
    #[error("{0}: no such queue file")]
    NotFound(PathBuf),
    /// Bad argument from a caller (invalid id, address with NUL/CR/LF, ...).
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: String },
}
