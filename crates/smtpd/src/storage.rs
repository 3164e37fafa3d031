//! Free space in the queue file system, checked before MAIL is accepted, as Postfix's
//! smtpd does: refuse with 452 4.3.1 while the space left is at most queue_minfree, or
//! less than 1.5 times message_size_limit (so one more message of the largest size
//! still fits with room to spare). A write that fails for lack of space answers the
//! same way rather than with a generic write error: the client retries later either way,
//! but the reason is right.

use crate::reply::Reply;
use crate::sink::SinkError;

/// Postfix's margin: free space must exceed this many times message_size_limit.
const SPACE_FACTOR: f64 = 1.5;

/// The refusal for lack of queue space.
pub fn insufficient_storage() -> Reply {
    Reply::new(452, "4.3.1", "Insufficient system storage")
}

/// Why `free` bytes are not enough, phrased for the warning log line; None if enough.
/// `size_limit` 0 means no message_size_limit.
pub fn shortage(free: u64, minfree: u64, size_limit: u64) -> Option<String> {
    if free <= minfree {
        return Some(format!(
            "not enough free space in mail queue: {free} bytes <= queue_minfree {minfree}"
        ));
    }
    if size_limit > 0 && (free as f64) < SPACE_FACTOR * size_limit as f64 {
        return Some(format!(
            "not enough free space in mail queue: {free} bytes < {SPACE_FACTOR}*message size limit"
        ));
    }
    None
}

/// True when a sink error is the file system being full (or a quota reached).
pub fn is_out_of_space(e: &SinkError) -> bool {
    match e {
        SinkError::Queue(rostfix_queue::QueueError::Io { source, .. }) => {
            source.kind() == std::io::ErrorKind::StorageFull
                || source.kind() == std::io::ErrorKind::QuotaExceeded
                || matches!(
                    source.raw_os_error(),
                    Some(libc::ENOSPC) | Some(libc::EDQUOT)
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minfree_and_one_and_a_half_message_sizes_are_required() {
        assert!(shortage(1_000_000, 0, 0).is_none());
        assert!(
            shortage(1_000_000, 1_000_000, 0).is_some(),
            "at queue_minfree"
        );
        assert!(shortage(1_000_001, 1_000_000, 0).is_none());
        assert!(shortage(1_499_999, 0, 1_000_000).is_some());
        assert!(shortage(1_500_000, 0, 1_000_000).is_none());
        let why = shortage(10, 0, 100).unwrap_or_default();
        assert!(why.contains("1.5*message size limit"), "{why}");
    }

    #[test]
    fn only_a_full_disk_counts_as_out_of_space() {
        let full = SinkError::Queue(rostfix_queue::QueueError::Io {
            path: "incoming/x".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        });
        assert!(is_out_of_space(&full));
        let other = SinkError::Queue(rostfix_queue::QueueError::Io {
            path: "incoming/x".into(),
            source: std::io::Error::from_raw_os_error(libc::EIO),
        });
        assert!(!is_out_of_space(&other));
        assert_eq!(
            insufficient_storage().log_text(),
            "452 4.3.1 Insufficient system storage"
        );
    }
}
