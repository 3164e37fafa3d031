//! The manual page printed by `bus --help`.

use rostfix_service::manual::{Manual, RETIRING_EXIT_STATUS};

/// The text of `bus --help`.
pub const HELP: Manual = Manual {
    name: "bus - the Rostfix message bus intake service",
    synopsis: "bus -n bus -t unix [-c] [-u] [-o name=value]...",
    description: "\
Started by master(8) (`bus unix - - y 10 1 bus`: chroot, unprivileged, one
process, woken every 10 s so it is restarted soon after it dies). Pulls
messages from the Google Pub/Sub subscription rostfix_pubsub_subscription
(REST API at rostfix_pubsub_endpoint; a bearer token from
rostfix_pubsub_token_file, re-read for every request). Each message's data is
an RFC 5322 message; its attributes give the envelope: sender, recipients (a
comma-separated or JSON list), optional dsn_notify, dsn_ret, dsn_envid and
campaign_id. A valid message is written as a complete queue file into the
staging directory bus/, its bus message id recorded in bus/ids, the file
moved into maildrop/ for pickup(8) (content inspection, non_smtpd_milters,
rewriting and DKIM signing as for sendmail), and only then acknowledged. A
redelivered message id is acknowledged without a second copy; an invalid
message is acknowledged and logged as refused. At most
rostfix_bus_max_outstanding messages are pulled and not yet picked up; while
the queue file system is short of space (queue_minfree, 1.5 times
message_size_limit) nothing is pulled and the bus keeps the messages. With no
subscription configured the service idles. See docs/bulk-sending.md.",
    more_options: "\
Parameters used: rostfix_bus_type, rostfix_pubsub_endpoint,
rostfix_pubsub_subscription, rostfix_pubsub_token_file,
rostfix_bus_max_outstanding, rostfix_bus_dedup_time, rostfix_bus_poll_interval,
rostfix_bus_timeout, queue_minfree, message_size_limit.",
    exit_status: RETIRING_EXIT_STATUS,
    see_also: "pickup(8), master(8), docs/bulk-sending.md",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
