//! master's error type: every way startup, reload or a service setup can fail.

use std::path::PathBuf;

/// Why master could not start, or why one service could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error(transparent)]
    Config(#[from] rostfix_config::ConfigError),
    #[error(transparent)]
    Log(#[from] rostfix_maillog::LogError),
    /// A master.cf entry master cannot turn into listening sockets.
    #[error("{}, line {line}: service {service}: {message}", file.display())]
    Plan {
        file: PathBuf,
        line: usize,
        service: String,
        message: String,
    },
    #[error("the Rostfix mail system is already running")]
    AlreadyRunning,
    /// A main.cf setting master cannot use (inet_protocols, inet_interfaces, ...).
    #[error("{0}")]
    Setting(String),
    #[error("unknown mail_owner user {0}")]
    UnknownUser(String),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl MasterError {
    /// A failed system call on `what` (a path, a socket address, a call name).
    pub fn sys(what: impl Into<String>, source: impl Into<std::io::Error>) -> MasterError {
        MasterError::Sys {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// Converts a nix errno into an io::Error (for [`MasterError::sys`]).
pub fn io(errno: nix::Error) -> std::io::Error {
    std::io::Error::from(errno)
}
