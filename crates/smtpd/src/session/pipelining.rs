//! Improper command pipelining (RFC 2920 3.1), a child module of session/mod.rs.
//!
//! Some commands end a pipelined group: the client must read their reply before it
//! sends anything else ([`crate::command::Command::ends_group`]), and nothing may come
//! before the greeting. Input that is already waiting when such a command is read
//! (or when the greeting is due) is logged once per session as Postfix does:
//! `improper command pipelining after DATA from host[addr]: <first 100 bytes>`.
//!
//! With smtpd_forbid_unauth_pipelining = yes (Postfix 3.9's default) an unauthenticated
//! network client is then answered `554 5.5.0 Error: improper command pipelining` and
//! disconnected, and the command is not run. That is what stops the smuggling trick of
//! a refused DATA followed, in the same write, by message text that would otherwise be
//! read as commands: MAIL/RCPT/DATA of a hidden second message. The refused command
//! counts as failed in the disconnect line (`data=0/1`); input before the greeting
//! counts as `unknown=0/1`, there being no command to blame.

use super::{Session, SessionEnd};
use crate::io::SmtpIo;
use crate::reply::Reply;
use crate::sink::QueueSink;
use crate::tls::Transport;

/// How much of the waiting input the log line shows.
const PREVIEW: usize = 100;

impl<S: QueueSink> Session<'_, S> {
    /// The check after a command that ends a group (`name` in lower case); Some(end)
    /// when the session is over.
    pub(super) fn pipelining_after<T: Transport>(
        &mut self,
        name: &str,
        io: &mut SmtpIo<T>,
    ) -> Option<SessionEnd> {
        self.improper_pipelining(&name.to_ascii_uppercase(), name, io)
    }

    /// The check before the greeting. Not in wrapper mode: there the client speaks
    /// first (the TLS handshake), and the gate's pre-greeting pause, when set, has
    /// already dealt with clients that talk too early.
    pub(super) fn pipelining_before_greeting<T: Transport>(
        &mut self,
        io: &mut SmtpIo<T>,
        wrapper: bool,
    ) -> Option<SessionEnd> {
        if wrapper {
            return None;
        }
        self.improper_pipelining("CONNECT", "unknown", io)
    }

    fn improper_pipelining<T: Transport>(
        &mut self,
        after: &str,
        stat_name: &str,
        io: &mut SmtpIo<T>,
    ) -> Option<SessionEnd> {
        let enforce = self
            .cfg
            .proto
            .forbids_pipelining(self.client.ip, self.auth.username.is_some());
        // Once logged, only enforcement needs another look (it ends the session, so
        // after a logged-only event there is nothing left to do).
        if self.ill_pipelining && !enforce {
            return None;
        }
        if !io.input_pending() {
            return None;
        }
        self.ill_pipelining = true;
        log::info!(
            "improper command pipelining after {after} from {}: {}",
            self.client.log_name(),
            escape(io.buffered_preview(PREVIEW))
        );
        if !enforce {
            return None;
        }
        self.stats.record(stat_name, false);
        io.send(&Reply::new(
            554,
            "5.5.0",
            "Error: improper command pipelining",
        ));
        Some(SessionEnd::ImproperPipelining)
    }
}

/// Client bytes as printable text for a log line (shared with the PROXY header
/// warnings, hence in rostfix_proto).
pub(crate) use rostfix_proto::log_escape as escape;
