//! The mtasts service's protocol (`private/mtasts`, docs/ipc.md): the smtp client
//! asks for the policy of one next-hop domain; one request frame, one reply frame per
//! connection.

use crate::policy::Policy;
use rostfix_proto::{connect_unix, read_message, write_message, FrameError, TriggerError};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// The service's socket, relative to queue_directory.
pub const MTASTS_SOCKET: &str = "private/mtasts";
/// Domain names are at most 253 characters.
pub const MAX_DOMAIN: usize = 255;

/// smtp -> mtasts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtaStsRequest {
    pub domain: String,
}

/// mtasts -> smtp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MtaStsReply {
    /// The domain's policy (fresh from its host or from the cache).
    Policy { policy: Policy, id: String },
    /// No policy applies: deliver as without MTA-STS; `why` is for the log.
    NoPolicy { why: String },
}

#[derive(Debug, thiserror::Error)]
pub enum MtaStsCallError {
    #[error("{0}")]
    Connect(#[from] TriggerError),
    #[error("mtasts service: {0}")]
    Frame(#[from] FrameError),
}

/// One exchange with the service under `root`, bounded by `timeout` per step (the
/// service itself bounds a fetch by rostfix_mta_sts_fetch_timeout, so callers pass
/// more than that).
pub fn policy_call(
    root: &Path,
    domain: &str,
    timeout: Duration,
) -> Result<MtaStsReply, MtaStsCallError> {
    let mut stream = connect_unix(&root.join(MTASTS_SOCKET), timeout)?;
    write_message(
        &mut stream,
        &MtaStsRequest {
            domain: domain.to_string(),
        },
    )?;
    let mut capped = (&mut stream).take(256 * 1024);
    Ok(read_message(&mut capped)?)
}
