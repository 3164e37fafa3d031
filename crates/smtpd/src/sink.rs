//! Where accepted messages go: a trait so that the session can be tested with an
//! in-memory queue, and the real implementation ([`crate::queue_sink`]) writes queue
//! files through `rostfix_queue::QueueWriter`.

use rostfix_queue::Envelope;

/// Why a message could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Queue(#[from] rostfix_queue::QueueError),
    /// Failures of test doubles.
    #[cfg(test)]
    #[error("{0}")]
    Other(String),
}

/// Creates queue files.
pub trait QueueSink {
    type Message: QueuedMessage;

    /// Starts a new message with this envelope (called when DATA begins).
    fn create(&mut self, envelope: &Envelope) -> Result<Self::Message, SinkError>;

    /// Called after a successful commit: wake the queue manager. Failures are the
    /// implementation's to log; the message is safe already.
    fn committed(&mut self, queue_id: &str);

    /// ETRN: asks the queue manager to deliver the deferred mail for `site` now.
    fn flush_site(&mut self, site: &str) -> Result<(), String> {
        Err(format!("no queue manager to flush {site}"))
    }

    /// Bytes free for queue files; None when unknown (then MAIL is not refused).
    fn free_space(&self) -> Option<u64> {
        None
    }
}

/// One message being written.
pub trait QueuedMessage {
    /// The id the message will have (known before commit, for Received: and logs).
    fn queue_id(&self) -> &str;
    /// Appends content (LF line endings).
    fn write(&mut self, data: &[u8]) -> Result<(), SinkError>;
    /// Makes the message durable; only after Ok may the client be told 250. Into the
    /// hold queue when `hold`, and with `envelope` in place of the one given at
    /// creation (content inspection's HOLD, REDIRECT, FILTER, BCC).
    fn commit_as(self, hold: bool, envelope: Option<&Envelope>) -> Result<String, SinkError>;
    /// Throws the message away.
    fn abort(self);
}
