//! Queue ids in Postfix's short format: 5 hex digits of microseconds then the inode
//! number in hex, upper case (e.g. `3F2A81C0D4E`). Unique while the file exists because
//! the inode is.

// The check itself lives in rostfix_proto (re-exported here), so the queue files and
// the requests that name them agree on what an id is.
pub use rostfix_proto::is_valid_queue_id;

/// The id of a file created at `micros` (since the epoch) with inode `inode`.
pub(crate) fn make_queue_id(micros: u128, inode: u64) -> String {
    format!("{:05X}{:X}", micros % 1_000_000, inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_ids_are_valid() {
        assert_eq!(make_queue_id(1_700_000_123_456, 0x1c0d4e), "1E2401C0D4E");
        assert_eq!(make_queue_id(5, 1), "000051");
        assert!(is_valid_queue_id(&make_queue_id(u128::MAX, u64::MAX)));
        assert!(is_valid_queue_id(&make_queue_id(0, 0)));
    }
}
