//! Reading queue files and marking recipients done.

use crate::{QueueError, QueueName};
use std::path::{Path, PathBuf};

/// The envelope of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// Envelope sender, "" for `<>`.
    pub sender: String,
    /// Arrival time, microseconds since the epoch.
    pub arrival_us: i64,
    /// Free-form attributes (`client_name`, `client_address`, `helo`, `protocol`,
    /// `uid` for local submissions, `sasl_username`, `rewrite_context`, ...).
    pub attrs: Vec<(String, String)>,
    pub recipients: Vec<Recipient>,
}

impl Envelope {
    /// The first attribute with this name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipient {
    pub address: String,
    /// As originally received (RFC 3461 ORCPT or the address before rewriting).
    pub orig_address: String,
    /// DSN NOTIFY value as received, "" if none.
    pub notify: String,
    /// Already delivered or bounced (marked in place).
    pub done: bool,
    /// Byte offset of the recipient record in the file; set when read, ignored on write.
    pub offset: u64,
}

/// A parsed queue file.
#[derive(Debug, Clone)]
pub struct QueueFile {
    pub id: String,
    pub queue: QueueName,
    pub path: PathBuf,
    pub envelope: Envelope,
    /// Size of the message content in bytes.
    pub content_len: u64,
    content_offset: u64,
}

impl QueueFile {
    /// Opens and parses `root/queue/id`. Content is not read. Returns
    /// [`QueueError::Corrupt`] for anything that does not parse (the caller moves the file
    /// to corrupt/), [`QueueError::NotFound`] if it is gone.
    pub fn open(root: &Path, queue: QueueName, id: &str) -> Result<QueueFile, QueueError> {
        let _ = (root, queue, id);
        todo!()
    }

    /// Parses a file at any path (maildrop files have no queue id names).
    pub fn open_path(path: &Path, queue: QueueName) -> Result<QueueFile, QueueError> {
        let _ = (path, queue);
        todo!()
    }

    /// The whole message content (headers and body, CRLF or LF as stored: LF).
    pub fn read_content(&self) -> Result<Vec<u8>, QueueError> {
        let _ = self.content_offset;
        todo!()
    }

    /// Marks the recipient whose record starts at `offset` as done and fsyncs. Idempotent.
    /// Refuses offsets that do not point at a recipient record.
    pub fn mark_done(path: &Path, offset: u64) -> Result<(), QueueError> {
        let _ = (path, offset);
        todo!()
    }

    /// Recipients not yet done.
    pub fn pending(&self) -> impl Iterator<Item = &Recipient> {
        self.envelope.recipients.iter().filter(|r| !r.done)
    }
}
