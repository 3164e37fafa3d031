//! A Redis server several machines share, used while it answers and given up on for
//! a while when it does not: the one policy anvil's shared limits and qmgr's shared
//! shaping rates follow. A failed call (connect, timeout, an error or a reply the
//! caller cannot read) drops the connection and makes the caller fall back to this
//! machine's own state; no call is made for [`RETRY_EVERY`] after a failure, so a
//! dead server does not slow every event; the switch and the return are logged once
//! each, naming what stops and starts being shared.

use crate::{Connection, RespError};
use std::time::{Duration, Instant};

/// Connect, read and write timeout of every call: state shared across machines is
/// worth little if it makes local work wait longer than this.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long after a failure before Redis is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);

/// One shared server and whether it is usable.
#[derive(Debug)]
pub struct Shared {
    address: String,
    /// Put before the log lines (e.g. `shaping: `).
    log_prefix: &'static str,
    /// What is shared through it, for the log lines (e.g. `bucket rates`).
    subject: &'static str,
    conn: Option<Connection>,
    /// Set while Redis is failing: when it was last tried.
    down_since: Option<Instant>,
}

impl Shared {
    pub fn new(address: &str, log_prefix: &'static str, subject: &'static str) -> Shared {
        Shared {
            address: address.to_string(),
            log_prefix,
            subject,
            conn: None,
            down_since: None,
        }
    }

    /// When the last failed attempt was, while the server is taken for down.
    pub fn down_since(&self) -> Option<Instant> {
        self.down_since
    }

    /// Runs `f` on the (re)opened connection, unless a call failed within
    /// [`RETRY_EVERY`]; None when it was not run or failed (the caller then uses its
    /// own state).
    pub fn call<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> Result<T, RespError>,
    ) -> Option<T> {
        if self.down_since.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
            return None;
        }
        let result = match self.connection() {
            Ok(conn) => f(conn),
            Err(e) => Err(e),
        };
        match result {
            Ok(value) => {
                if self.down_since.take().is_some() {
                    log::info!(
                        "{}redis server {} reachable again: {} are shared",
                        self.log_prefix,
                        self.address,
                        self.subject
                    );
                }
                Some(value)
            }
            Err(e) => {
                self.conn = None;
                if self.down_since.is_none() {
                    log::warn!(
                        "{}redis server {}: {e}; using this machine's own {}",
                        self.log_prefix,
                        self.address,
                        self.subject
                    );
                }
                self.down_since = Some(Instant::now());
                None
            }
        }
    }

    fn connection(&mut self) -> Result<&mut Connection, RespError> {
        if self.conn.is_none() {
            self.conn = Some(Connection::open(&self.address, REDIS_TIMEOUT)?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| RespError::Protocol("no connection".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_failure_is_not_retried_within_the_interval() {
        // A port nothing listens on (bound, then closed).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut s = Shared::new(&format!("127.0.0.1:{port}"), "", "things");
        let mut calls = 0;
        assert_eq!(
            s.call(|c| {
                calls += 1;
                c.pipeline(&[]).map(|_| ())
            }),
            None
        );
        let tried = s.down_since();
        assert!(tried.is_some());
        assert_eq!(s.call(|_| Ok(1)), None, "not tried again so soon");
        assert_eq!(s.down_since(), tried);
        assert_eq!(calls, 0, "the connect failed before the call");
    }
}
