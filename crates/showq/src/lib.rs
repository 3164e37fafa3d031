//! The showq service's library half: the queue scan (scan.rs), shared with a privileged
//! rostqueue that reads the queue itself, and the wire format between showq and
//! rostqueue (wire.rs, documented in docs/ipc.md), and Postfix 3's showq format for
//! tools written against Postfix (postfix_wire.rs).

#![forbid(unsafe_code)]

pub mod postfix_wire;
pub mod scan;
pub mod wire;

pub use postfix_wire::send_postfix_listing;
pub use rostfix_proto::{ShowqMessage, ShowqRecipient, ShowqRecord};
pub use scan::{scan, Listed, ListedRecipient, ScanError, LISTED_QUEUES};
pub use wire::{fetch, send_listing, ShowqError};
