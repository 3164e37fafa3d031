//! Writing a new queue file durably.

use crate::{Envelope, QueueError, QueueId, QueueName};
use std::path::Path;

/// A queue file being written under a temporary name.
#[derive(Debug)]
pub struct QueueWriter {
    _private: (),
}

impl QueueWriter {
    /// Creates a temporary file (mode 0600, O_EXCL) in `root/queue/` and writes the
    /// envelope records. Addresses and attributes containing NUL, CR or LF are refused
    /// with [`QueueError::Invalid`].
    pub fn create(root: &Path, queue: QueueName, envelope: &Envelope) -> Result<QueueWriter, QueueError> {
        let _ = (root, queue, envelope);
        todo!()
    }

    /// The queue id this file will have once committed (known at creation: it is
    /// derived from the creation time and the temporary file's inode), so smtpd can put
    /// it in the Received: header and log it before the message is acknowledged.
    pub fn queue_id(&self) -> &str {
        todo!()
    }

    /// Appends message content (any bytes; line endings stored as given: callers store LF).
    pub fn write_content(&mut self, data: &[u8]) -> Result<(), QueueError> {
        let _ = data;
        todo!()
    }

    /// Content bytes written so far (for message_size_limit checks).
    pub fn content_len(&self) -> u64 {
        todo!()
    }

    /// Writes the end record, fsyncs the file, names it by its queue id (link + unlink,
    /// never replacing), fsyncs the directory. Only after this returns Ok may mail be
    /// acknowledged.
    pub fn commit(self) -> Result<QueueId, QueueError> {
        todo!()
    }

    /// Removes the temporary file (client went away, size limit, ...).
    pub fn abort(self) {
        todo!()
    }
}
