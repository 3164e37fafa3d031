//! Why an address could not be resolved or expanded. Every variant is a temporary
//! condition or a configuration problem: callers defer the recipient, never bounce it,
//! because Postfix turns table lookup errors into temporary failures.

/// A resolver failure.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A lookup table could not be opened (bad spec, missing file, stale index).
    #[error("{param}: cannot open table: {source}")]
    Open {
        /// The main.cf parameter naming the table.
        param: String,
        /// The table's error.
        #[source]
        source: rostfix_maps::MapError,
    },
    /// A lookup failed (not "not found": an error): try again later.
    #[error("{param} lookup error: {source}")]
    Lookup {
        /// The main.cf parameter naming the table.
        param: String,
        /// The table's error.
        #[source]
        source: rostfix_maps::MapError,
    },
    /// A transport name that cannot be a master.cf service (it would leave private/).
    #[error("bad transport name in configuration: \"{0}\"")]
    BadTransport(String),
}
