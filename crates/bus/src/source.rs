//! The small interface the intake loop needs from a message bus, so that NATS
//! JetStream, AMQP or Kafka is a second implementation of [`Bus`] rather than a new
//! service: pull a bounded batch, acknowledge what is safely queued, give back (or
//! keep longer) what is not. Delivery is at least once on every such bus; the intake
//! makes it exactly once in the queue with its own deduplication (crate::dedup).

use crate::submission::BusMessage;
use std::time::Duration;

/// Why a bus operation failed. Every failure is temporary from the intake's point of
/// view: it waits and tries again, and the bus redelivers whatever was not acked.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("{0}")]
    Transport(#[from] crate::http::HttpError),
    #[error("HTTP status {status}: {body}")]
    Status { status: u16, body: String },
    #[error("malformed answer: {0}")]
    Answer(String),
    #[error("cannot read token file {path}: {source}")]
    Token {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A message bus subscription.
pub trait Bus {
    /// Up to `max` messages, waiting at most about the bus's own poll time when none is
    /// there (an empty batch is normal). Messages whose encoding is broken are returned
    /// too, so the caller can refuse (and acknowledge) them by id.
    fn pull(&mut self, max: usize) -> Result<Vec<BusMessage>, BusError>;
    /// Tells the bus these deliveries are done: they are not redelivered.
    fn ack(&mut self, handles: &[String]) -> Result<(), BusError>;
    /// Keeps these deliveries ours for `extra` more (processing takes a while).
    fn extend(&mut self, handles: &[String], extra: Duration) -> Result<(), BusError>;
    /// Gives these deliveries back for redelivery now (we could not queue them).
    fn nack(&mut self, handles: &[String]) -> Result<(), BusError>;
    /// A short name for log lines (`pubsub`).
    fn kind(&self) -> &'static str;
}
