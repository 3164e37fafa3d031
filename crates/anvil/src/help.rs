//! The manual page printed by `anvil --help`.

use rostfix_service::manual::Manual;

/// The text of `anvil --help`.
pub const HELP: Manual = Manual {
    name: "anvil - the Rostfix connection count and rate service",
    synopsis: "anvil -n anvil -t unix [-c] [-u] [-o name=value]...",
    description: "\
Started by master(8) (`anvil unix - - y - 1 anvil`, one process). smtpd(8)
connects to private/anvil once per SMTP session and reports the connection
and each MAIL, RCPT and AUTH; anvil answers with the client's simultaneous
connection count and the number of such events in the current
anvil_rate_time_unit, which smtpd compares with
smtpd_client_connection_count_limit, smtpd_client_connection_rate_limit,
smtpd_client_message_rate_limit, smtpd_client_recipient_rate_limit and
smtpd_client_auth_rate_limit. A session's connection is counted down when its
stream closes. Every anvil_status_update_time the largest numbers seen are
logged as \"statistics:\" lines. If anvil is not running smtpd works without
these limits and logs a warning.

With rostfix_anvil_redis_server = host:port (an IP address: anvil runs
chrooted) the rates are counted in that Redis server too, shared by every
machine using the same rostfix_anvil_redis_prefix (sliding window counter,
one round trip per event), and each open connection holds a lease there
(renewed every third of rostfix_anvil_connection_lease, so a crashed machine's
connections stop counting one lease later): the connection count is that of
every machine. When Redis
cannot answer anvil uses its own counts, logs the switch, and tries Redis
again every 5 seconds.",
    more_options: "",
    exit_status: "0 when master goes away, 1 on a fatal startup error.",
    see_also: "smtpd(8), master(8)",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
