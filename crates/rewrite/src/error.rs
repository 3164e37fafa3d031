//! The rewriting errors: a bad parameter (found at start) or a table that failed a
//! lookup (the message is not accepted now, as Postfix's cleanup defers it).

use rostfix_maps::MapError;

#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// A table of `param` could not be opened.
    #[error("{param}: {source}")]
    Open {
        param: &'static str,
        #[source]
        source: MapError,
    },
    /// A word of a class or client list that Postfix does not define.
    #[error("{param}: unknown {what}: {word}")]
    Unknown {
        param: &'static str,
        what: &'static str,
        word: String,
    },
    /// A lookup failed: the message must be deferred, never passed unrewritten.
    #[error("{spec}: table lookup problem: {source}")]
    Lookup {
        spec: String,
        #[source]
        source: MapError,
    },
}
