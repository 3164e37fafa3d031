//! Queue ids in Postfix's short format: 5 hex digits of microseconds then the inode
//! number in hex, upper case (e.g. `3F2A81C0D4E`). Unique while the file exists because
//! the inode is.

/// A validated queue id.
pub type QueueId = String;

/// True for ids we could have made: 6 to 32 characters of `[0-9A-F]`.
/// Temporary names (`tmp.PID.N`) and anything else fail, so they are never taken for
/// queue files and an id can never be a path like `../x`.
pub fn is_valid_queue_id(s: &str) -> bool {
    (6..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// The id of a file created at `micros` (since the epoch) with inode `inode`.
pub(crate) fn make_queue_id(micros: u128, inode: u64) -> QueueId {
    format!("{:05X}{:X}", micros % 1_000_000, inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids() {
        assert!(is_valid_queue_id("3F2A81C0D4E"));
        assert!(is_valid_queue_id("000001"));
        assert!(is_valid_queue_id(&"F".repeat(32)));
    }

    #[test]
    fn invalid_ids() {
        for s in [
            "",
            "ABCDE",
            "3f2a81c0d4e",
            "tmp.123.4",
            "../ABCDEF",
            "ABCDEFG",
            &"F".repeat(33),
        ] {
            assert!(!is_valid_queue_id(s), "{s}");
        }
    }

    #[test]
    fn made_ids_are_valid() {
        assert_eq!(make_queue_id(1_700_000_123_456, 0x1c0d4e), "1E2401C0D4E");
        assert_eq!(make_queue_id(5, 1), "000051");
        assert!(is_valid_queue_id(&make_queue_id(u128::MAX, u64::MAX)));
        assert!(is_valid_queue_id(&make_queue_id(0, 0)));
    }
}
