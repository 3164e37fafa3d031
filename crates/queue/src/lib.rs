//! The durable mail queue: queue directories, queue ids, and the versioned queue file
//! format (docs/queue-format.md).
//!
//! A queue file is created under a temporary name (or taken from `recycle/`, see
//! [`Recycler`]), written, fsync'ed, given its queue id by a rename that never replaces
//! an existing file, and its directory fsync'ed: only then may the caller acknowledge
//! the message. Done recipients are marked in place by
//! overwriting one byte and fdatasync'ing, so a crash never re-delivers them (the
//! discard transport's marks are not synced: discarding again changes nothing; the
//! marks of a group commit of local deliveries share one sync, [`mark_done_group`]).

#![forbid(unsafe_code)]

mod content;
mod error;
mod file;
mod filter;
#[cfg(test)]
mod format_tests;
mod group_marks;
mod id;
mod layout;
mod lock;
mod logs;
mod parse;
mod record;
mod recycle;
mod requested;
mod rewrite;
mod stream;
mod suppress;
#[cfg(test)]
mod tempdir;
mod verp;
mod writer;

pub use content::{ContentReader, MessageContent};
pub use error::QueueError;
pub use file::{Envelope, QueueFile, Recipient};
pub use filter::{ContentFilter, FilterError, FILTER_ATTR};
pub use group_marks::{mark_done_group, GroupMarks};
pub use id::is_valid_queue_id;
pub use layout::{
    list_queue, move_file, queue_path, rename_file, set_retry_time, sync_queue_dirs, QueueName,
    ALL_QUEUES,
};
pub use lock::{LockAttempt, QueueLock};
pub use logs::{
    append_defer_reason, delay_warned, mark_delay_warned, read_defer_reasons, remove_message_logs,
};
pub use recycle::{Recycler, RECYCLE_DIR, RECYCLE_LIMIT, RECYCLE_MAX_SIZE};
pub use requested::{
    open_requested, open_requested_recipients, open_requested_stream, NamesQueueFile,
    RequestedError, RequestedMessage, RequestedStream,
};
pub use rewrite::{rewrite_envelope, rewrite_envelope_locked};
pub use rostfix_proto::QueueId;
pub use stream::{RecordStream, StreamRecord};
pub use suppress::{
    normalize_address, Entry as SuppressionEntry, Loaded as SuppressionLoaded, SuppressError,
    SuppressionAction, SuppressionCache, SuppressionStore, SUPPRESS_DIR,
};
pub use verp::{verify_delimiters, verp_sender, VerpError, VERP_ATTR};

/// The queue file attribute naming the campaign a message belongs to (set by the bus
/// intake; read by qmgr's delivery log and pickup's hygiene checks).
pub const CAMPAIGN_ID_ATTR: &str = "campaign_id";
pub use writer::QueueWriter;
pub mod space;
