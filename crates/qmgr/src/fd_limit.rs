//! Open files for the active queue. qmgr keeps every active message's queue file
//! open, for its lock (manager.rs), so qmgr_message_active_limit messages need as
//! many descriptors, besides the agent streams and sockets. A flush of 100 000
//! deferred messages under a 20 000-file limit ran out of descriptors ("Too many open
//! files") and set thousands of messages aside as unreadable. At start qmgr raises
//! its soft RLIMIT_NOFILE towards the hard limit as far as the active limit needs,
//! and when even the hard limit is too low, lowers the active limit to fit, and says
//! so in the log (at info level).

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept for everything but active messages: at least this many...
const RESERVE_MIN: u64 = 256;
/// ...or this share of the limit, whichever is more (one stream per delivery in
/// flight, the trigger and metrics sockets, the tables).
const RESERVE_SHARE: u64 = 10;

fn reserve(files: u64) -> u64 {
    (files / RESERVE_SHARE).max(RESERVE_MIN)
}

/// The active limit `files` descriptors allow: the configured one when it fits.
pub fn allowed_active(active_limit: usize, files: u64) -> usize {
    let room = files.saturating_sub(reserve(files)).max(files / 2).max(1);
    active_limit.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// What the soft limit should be for `active_limit` messages.
fn wanted(active_limit: usize) -> u64 {
    let active = u64::try_from(active_limit).unwrap_or(u64::MAX);
    let total = active.saturating_add(reserve(active));
    // allowed_active keeps a tenth of the limit back: ask for enough that the rest fits.
    total.max(active.saturating_mul(RESERVE_SHARE) / (RESERVE_SHARE - 1) + 1)
}

/// Raises the soft open-file limit as far as `active_limit` needs (never above the
/// hard limit) and returns the active limit the descriptors then allow.
pub fn fit_active_limit(active_limit: usize) -> usize {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return active_limit;
    };
    let mut files = soft;
    let want = wanted(active_limit);
    if soft < want {
        let target = want.min(hard);
        match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
            Ok(()) => files = target,
            Err(e) => log::warn!("cannot raise the open file limit from {soft} to {target}: {e}"),
        }
    }
    let allowed = allowed_active(active_limit, files);
    if allowed < active_limit {
        // Info, not a warning: a hard limit of 20 000 (common in containers) would
        // otherwise warn at every start of a default configuration, and the lower
        // limit only bounds how many messages are in memory at once.
        log::info!(
            "qmgr_message_active_limit {active_limit} lowered to {allowed}: the open file limit is {files} (hard limit {hard}) and each active message holds its queue file open; raise the limit (LimitNOFILE= in the service unit, or ulimit -n) to use the configured value"
        );
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_limit_fits_the_descriptors() {
        assert_eq!(allowed_active(20000, 20000), 18000);
        assert_eq!(allowed_active(20000, 1024), 768);
        assert_eq!(allowed_active(100, 1024), 100);
        assert_eq!(allowed_active(20000, 1_048_576), 20000);
        assert_eq!(allowed_active(20000, u64::MAX), 20000);
        // A tiny limit still leaves half for messages, and never zero.
        assert_eq!(allowed_active(20000, 300), 150);
        assert_eq!(allowed_active(20000, 1), 1);
    }

    #[test]
    fn the_wanted_limit_lets_the_whole_active_limit_fit() {
        for active in [1, 100, 2000, 20000, 100_000] {
            assert_eq!(allowed_active(active, wanted(active)), active, "{active}");
        }
    }
}
