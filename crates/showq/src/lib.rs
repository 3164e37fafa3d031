//! The showq service's library half: the queue scan (scan.rs), shared with a privileged
//! rostqueue that reads the queue itself, and the wire format between showq and
//! rostqueue (wire.rs, documented in docs/ipc.md).

#![forbid(unsafe_code)]

pub mod scan;
pub mod wire;

pub use rostfix_proto::{ShowqMessage, ShowqRecipient, ShowqRecord};
pub use scan::{scan, Listed, ListedRecipient, ScanError, LISTED_QUEUES};
pub use wire::{fetch, send_listing, ShowqError};
