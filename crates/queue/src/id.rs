//! Queue ids in Postfix's short format: 5 hex digits of microseconds then the inode
//! number in hex, upper case (e.g. `3F2A81C0D4E`). Unique while the file exists because
//! the inode is.

/// A validated queue id.
pub type QueueId = String;

/// True for ids we could have made: 6 to 32 characters of `[0-9A-F]`.
pub fn is_valid_queue_id(s: &str) -> bool {
    let _ = s;
    todo!()
}
