//! What becomes of a locally submitted message after content inspection, as Postfix's
//! cleanup decides for non-SMTP mail: queued (into hold/ for HOLD, with the envelope
//! REDIRECT/FILTER/BCC made), dropped for DISCARD, or, for a REJECT, returned to the
//! sender in a non-delivery notice (there is no client to refuse). A temporary
//! rejection (DEFER, a 4.x.x REJECT) leaves the file in maildrop/ for a later scan.

use crate::process::PickupError;
use rostfix_inspect::{Outcome, Verdict};
use rostfix_queue::{queue_path, Envelope, QueueName, QueueWriter};
use std::path::Path;

/// Where the message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Queued,
    Held,
    Discarded,
    /// Rejected and returned to its sender (or dropped, for the null sender).
    Bounced,
}

/// Commits, holds, drops or bounces the message `writer` holds; `edited`: milters
/// changed `envelope` since the writer was created with it.
pub fn apply(
    root: &Path,
    writer: QueueWriter,
    envelope: &Envelope,
    edited: bool,
    outcome: &Outcome,
) -> Result<(String, Fate), PickupError> {
    let retry = |e: rostfix_queue::QueueError| PickupError::Retry(e.to_string());
    let id = writer.queue_id().to_string();
    match outcome.verdict() {
        Verdict::Queue { hold } => {
            let new_env = outcome
                .rewrite_envelope(envelope)
                .or_else(|| edited.then(|| envelope.clone()));
            let id = writer
                .commit_to(hold.then_some(QueueName::Hold), new_env.as_ref())
                .map_err(retry)?;
            Ok((id, if hold { Fate::Held } else { Fate::Queued }))
        }
        Verdict::Discard => {
            writer.abort();
            Ok((id, Fate::Discarded))
        }
        Verdict::Reject { dsn, text, .. } if dsn.starts_with('4') => {
            writer.abort();
            Err(PickupError::Retry(format!(
                "{id}: content inspection: {dsn} {text}"
            )))
        }
        Verdict::Reject { dsn, text, .. } => {
            // hold/ keeps the copy the bounce service reads away from qmgr.
            let id = writer
                .commit_to(Some(QueueName::Hold), None)
                .map_err(retry)?;
            let result = crate::bounce::request(root, &id, envelope, &dsn, &text);
            let held = queue_path(root, QueueName::Hold, &id);
            if let Err(e) = std::fs::remove_file(&held) {
                log::warn!("{id}: remove {}: {e}", held.display());
            }
            match result {
                Ok(_) => Ok((id, Fate::Bounced)),
                Err(e) => Err(PickupError::Retry(format!(
                    "{id}: cannot return the rejected message to its sender: {e}"
                ))),
            }
        }
    }
}
