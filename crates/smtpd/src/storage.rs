//! Free space in the queue file system, checked before MAIL is accepted, as Postfix's
//! smtpd does: refuse with 452 4.3.1 while the space left is too little by the rule
//! every intake shares (`rostfix_queue::space`: queue_minfree, 1.5 times
//! message_size_limit). A write that fails for lack of space answers the
//! same way rather than with a generic write error: the client retries later either way,
//! but the reason is right.

use crate::reply::Reply;
use crate::sink::SinkError;

/// Why the free space is not enough (shared with the other intakes).
pub use rostfix_queue::space::shortage;

/// The refusal for lack of queue space.
pub fn insufficient_storage() -> Reply {
    Reply::new(452, "4.3.1", "Insufficient system storage")
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
