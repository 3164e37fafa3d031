//! The manual page printed by `anvil --help`.

/// The text of `anvil --help`.
pub const HELP: &str = r#"NAME
    anvil - the Rostfix connection count and rate service

SYNOPSIS
    anvil -n anvil -t unix [-c] [-u] [-o name=value]...

DESCRIPTION
    Started by master(8) (`anvil unix - - y - 1 anvil`, one process). smtpd(8)
    connects to private/anvil once per SMTP session and reports the connection
    and each MAIL, RCPT and AUTH; anvil answers with the client's simultaneous
    connection count and the number of such events in the current
    anvil_rate_time_unit, which smtpd compares with
    smtpd_client_connection_count_limit, smtpd_client_connection_rate_limit,
    smtpd_client_message_rate_limit, smtpd_client_recipient_rate_limit and
    smtpd_client_auth_rate_limit. A session's connection is counted down when its
    stream closes. Every anvil_status_update_time the largest numbers seen are
    logged as "statistics:" lines. If anvil is not running smtpd works without
    these limits and logs a warning.

OPTIONS
    Set by master(8), never typed by hand: -n NAME (service), -t TYPE, -c (chroot
    into queue_directory), -u (run as mail_owner), -l, -z, -v, -o name=value
    (main.cf override for this service only). --help prints this text.

EXIT STATUS
    0 when master goes away, 1 on a fatal startup error.

SEE ALSO
    smtpd(8), master(8)
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXIT STATUS",
            "SEE ALSO",
        ] {
            assert!(
                super::HELP.contains(&format!("\n{section}\n")) || super::HELP.starts_with(section)
            );
        }
    }
}
