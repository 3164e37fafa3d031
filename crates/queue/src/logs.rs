//! Per-message delay logs in `defer/ID`: why each deferred recipient was deferred, for
//! rostqueue's listing and for the notice sent when the message expires. Text blocks of
//! `recipient=ADDR` / `reason=TEXT` lines separated by a blank line; the newest reason
//! for a recipient wins.

use crate::QueueError;
use std::path::Path;

/// Appends a reason for `recipient` to `root/defer/id` (created 0600), fsync'ed.
/// CR/LF in the reason are replaced by spaces so a block cannot be forged.
pub fn append_defer_reason(root: &Path, id: &str, recipient: &str, reason: &str) -> Result<(), QueueError> {
    let _ = (root, id, recipient, reason);
    todo!()
}

/// The latest reason per recipient, in first-seen order; empty if there is no log.
pub fn read_defer_reasons(root: &Path, id: &str) -> Result<Vec<(String, String)>, QueueError> {
    let _ = (root, id);
    todo!()
}

/// Removes `defer/id` and `bounce/id` if present (when the message is removed).
pub fn remove_message_logs(root: &Path, id: &str) -> Result<(), QueueError> {
    let _ = (root, id);
    todo!()
}
