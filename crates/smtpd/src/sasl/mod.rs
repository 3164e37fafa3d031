//! SASL back ends for the SMTP AUTH command (RFC 4954).
//!
//! Two types, chosen by `smtpd_sasl_type`:
//! - `dovecot`: a client of Dovecot's auth server over the UNIX socket
//!   `smtpd_sasl_path` (relative to queue_directory, so it is reachable inside the
//!   chroot, e.g. `private/auth`); the mechanisms are the ones Dovecot advertises.
//! - `rostfix`: built in, for hosts without Dovecot; PLAIN and LOGIN checked against a
//!   passwd-file (`smtpd_sasl_path`, an absolute path read before chroot), see
//!   [`passwd`].
//!
//! A back end is used through [`SaslServer`]: the session opens one per client
//! connection ([`SaslConfig::open`]), asks it for the mechanisms to advertise, then
//! drives one exchange at a time with `start` / `respond`. Responses and challenges
//! are base64 text, already checked to be strict base64 by the caller
//! (crate::auth), which is what Dovecot wants on the wire anyway.

pub mod dovecot;
pub mod dovecot_codec;
pub mod passwd;

use std::net::IpAddr;
use std::sync::Arc;

/// One step of an authentication exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send `334 <challenge>` (base64, possibly empty) and wait for a response.
    Challenge(String),
    /// Authenticated as this user name.
    Success(String),
    /// Refused; the reason is safe to show (no secrets) and is logged.
    Failure { reason: String, temporary: bool },
}

/// The back end could not be asked at all (socket down, protocol error).
#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    #[error("cannot connect to the auth server at {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("auth server I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("auth server protocol error: {0}")]
    Protocol(String),
    #[error("cannot read {path}: {source}")]
    Passwd {
        path: String,
        source: std::io::Error,
    },
}

/// What the back end may want to know about the connection.
#[derive(Debug, Clone, Default)]
pub struct ConnInfo {
    pub local_ip: Option<IpAddr>,
    pub remote_ip: Option<IpAddr>,
    pub secured: bool,
}

/// One client's view of a SASL back end.
pub trait SaslServer {
    /// Mechanism names to advertise after `AUTH` in EHLO (upper case).
    fn mechanisms(&mut self) -> Result<Vec<String>, SaslError>;
    /// Starts an exchange; `initial` is the initial response ("" for `=`).
    fn start(
        &mut self,
        mech: &str,
        initial: Option<&str>,
        conn: &ConnInfo,
    ) -> Result<Step, SaslError>;
    /// Continues it with the client's (base64) response.
    fn respond(&mut self, response: &str) -> Result<Step, SaslError>;
}

/// `smtpd_sasl_type` and what it needs, read before confinement.
#[derive(Clone)]
pub enum SaslConfig {
    /// Socket path relative to queue_directory (or absolute outside a chroot).
    Dovecot {
        path: String,
        service: String,
    },
    Rostfix(Arc<passwd::PasswdDb>),
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslConfig::Dovecot { path, .. } => write!(f, "Dovecot({path})"),
            SaslConfig::Rostfix(db) => write!(f, "Rostfix({})", db.path()),
        }
    }
}

impl SaslConfig {
    /// A per-connection server. Dovecot connects lazily, on the first question.
    pub fn open(&self, timeout: std::time::Duration) -> Box<dyn SaslServer> {
        match self {
            SaslConfig::Dovecot { path, service } => Box::new(dovecot::DovecotClient::new(
                path.clone(),
                service.clone(),
                timeout,
            )),
            SaslConfig::Rostfix(db) => Box::new(passwd::BuiltinServer::new(Arc::clone(db))),
        }
    }
}
