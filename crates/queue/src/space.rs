//! Free space in the queue file system and when it is too little to take more mail,
//! as Postfix's smtpd judges it: refuse while the space left is at most queue_minfree,
//! or less than 1.5 times message_size_limit (so one more message of the largest size
//! still fits with room to spare). Shared by every intake (smtpd refuses MAIL with
//! 452 4.3.1; the bus intake stops pulling and lets the bus keep the messages).

use std::path::Path;

/// Postfix's margin: free space must exceed this many times message_size_limit.
const SPACE_FACTOR: f64 = 1.5;

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

/// Bytes an unprivileged writer may still use in the file system of `dir` (blocks
/// reserved for root do not count).
// fsblkcnt_t and c_ulong are u64 here but narrower on some targets.
#[allow(clippy::useless_conversion)]
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir)?;
    Ok(u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size())))
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
    fn the_current_directory_has_some_space() {
        assert!(free_bytes(Path::new(".")).is_ok());
        assert!(free_bytes(Path::new("/nonexistent/x")).is_err());
    }
}
