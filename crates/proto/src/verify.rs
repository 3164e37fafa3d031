//! The address verification service's protocol (`private/verify`, Postfix's
//! verify(8) and verify_clnt): smtpd asks for an address's status (and so starts a
//! probe when there is none), qmgr reports a probe's outcome. One request frame, one
//! reply frame per connection (docs/ipc.md, "VerifyRequest / VerifyReply").

use crate::client::{connect_unix, TriggerError};
use crate::frame::{read_message, write_message, FrameError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The verification service's socket, relative to queue_directory.
pub const VERIFY_SOCKET: &str = "private/verify";

/// The longest address a request may carry (RFC 5321's path limit is 256; local
/// addresses after rewriting can be somewhat longer, but never kilobytes).
pub const MAX_VERIFY_ADDRESS: usize = 1024;

/// The longest reason text kept per address.
pub const MAX_VERIFY_TEXT: usize = 1024;

/// What is known about an address (Postfix's DEL_RCPT_STAT_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyStatus {
    /// A probe reached the final RCPT and it was accepted.
    Deliverable,
    /// A probe was refused permanently.
    Undeliverable,
    /// A probe failed temporarily (the next hop could not be reached, 4xx).
    Deferred,
    /// Nothing known yet: a probe is under way (Postfix's DEL_RCPT_STAT_TODO).
    Unknown,
}

impl VerifyStatus {
    /// The word used in the cache file and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyStatus::Deliverable => "deliverable",
            VerifyStatus::Undeliverable => "undeliverable",
            VerifyStatus::Deferred => "deferred",
            VerifyStatus::Unknown => "unknown",
        }
    }

    /// The inverse of [`VerifyStatus::as_str`].
    pub fn parse(word: &str) -> Option<VerifyStatus> {
        Some(match word {
            "deliverable" => VerifyStatus::Deliverable,
            "undeliverable" => VerifyStatus::Undeliverable,
            "deferred" => VerifyStatus::Deferred,
            "unknown" => VerifyStatus::Unknown,
            _ => return None,
        })
    }
}

/// smtpd or qmgr -> verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyRequest {
    /// The status of `address`; verify starts a probe when it has no fresh answer.
    Query { address: String },
    /// A probe's outcome for `address` (qmgr, from the delivery agent's result).
    Update {
        address: String,
        status: VerifyStatus,
        text: String,
    },
}

/// verify -> client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyReply {
    /// The answer to `Query`: the cached status and its reason text.
    Status { status: VerifyStatus, text: String },
    /// `Update` recorded.
    Updated,
    /// The request could not be served (bad address, cache failure).
    Failed(String),
}

/// Why a verify exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyCallError {
    #[error("{0}")]
    Connect(#[from] TriggerError),
    #[error("verify service: {0}")]
    Frame(#[from] FrameError),
}

/// One exchange with the verify service under `root` (queue_directory, "." after
/// the chdir), bounded by `timeout` for connect, write and read; the reply is
/// read through a 64 KiB cap, far above any legitimate reply.
pub fn verify_call(
    root: &Path,
    request: &VerifyRequest,
    timeout: Duration,
) -> Result<VerifyReply, VerifyCallError> {
    use std::io::Read;
    let mut stream = connect_unix(&root.join(VERIFY_SOCKET), timeout)?;
    write_message(&mut stream, request)?;
    let mut capped = (&mut stream).take(64 * 1024);
    Ok(read_message(&mut capped)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip_in_their_documented_shape() {
        let q = VerifyRequest::Query {
            address: "a@example.org".into(),
        };
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(json, r#"{"Query":{"address":"a@example.org"}}"#);
        let u = VerifyRequest::Update {
            address: "b@example.org".into(),
            status: VerifyStatus::Undeliverable,
            text: "550 no".into(),
        };
        let back: VerifyRequest =
            serde_json::from_str(&serde_json::to_string(&u).unwrap()).unwrap();
        assert_eq!(back, u);
        let r: VerifyReply =
            serde_json::from_str(r#"{"Status":{"status":"Unknown","text":""}}"#).unwrap();
        assert_eq!(
            r,
            VerifyReply::Status {
                status: VerifyStatus::Unknown,
                text: String::new()
            }
        );
    }

    #[test]
    fn status_words_parse_back() {
        for s in [
            VerifyStatus::Deliverable,
            VerifyStatus::Undeliverable,
            VerifyStatus::Deferred,
            VerifyStatus::Unknown,
        ] {
            assert_eq!(VerifyStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(VerifyStatus::parse("ok"), None);
    }
}
