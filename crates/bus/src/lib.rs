//! The bus intake: messages published to a message bus (Google Pub/Sub today) become
//! Rostfix mail, each exactly once. [`source::Bus`] is what a bus must offer (pull,
//! ack, extend, nack), [`pubsub`] is Pub/Sub's REST API over [`http`],
//! [`submission`] validates one bus message (attributes and data), [`stage`] writes it
//! durably and releases it into `maildrop/` for pickup (which applies the same content
//! inspection, milters, rewriting and DKIM signing as for sendmail), [`dedup`]
//! remembers the bus ids already queued, and [`intake`] runs the order that makes the
//! whole exactly-once (docs/bulk-sending.md).

#![forbid(unsafe_code)]

pub mod dedup;
pub mod http;
pub mod intake;
pub mod pubsub;
pub mod source;
pub mod stage;
pub mod submission;
