//! The manual page printed by `smtp --help`.

/// The text of `smtp --help`.
pub const HELP: &str = r#"NAME
    smtp - the Rostfix SMTP client delivery agent

SYNOPSIS
    smtp -n smtp -t unix [-c] [-u] [-o name=value]...

DESCRIPTION
    Started by master(8) for `smtp`/`relay` unix services. Answers qmgr's delivery
    requests: a next hop [host]:port is used as is, a domain gets an MX lookup
    (rostfix_dns_servers, else /etc/resolv.conf, read before the chroot), with
    A/AAAA fallback, null MX and NXDOMAIN bounced, other DNS failures deferred.
    Speaks EHLO (HELO fallback), MAIL with SIZE, pipelined RCPTs, DATA; marks each
    accepted recipient done in the queue file before answering qmgr.
    Partial: no STARTTLS, client SASL, connection reuse or LMTP yet.

OPTIONS
    Set by master(8), never typed by hand: -n NAME (service), -t TYPE, -c (chroot
    into queue_directory), -u (run as mail_owner), -l, -z, -v, -o name=value
    (main.cf override for this service only). --help prints this text.

EXIT STATUS
    0 when it retires normally (master gone, max_use, max_idle), 1 on a fatal
    startup error.

SEE ALSO
    master(8), qmgr(8), rostconf(1)
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
                super::HELP.contains(&format!("\n{section}\n")) || super::HELP.starts_with(section),
                "{section}"
            );
        }
    }
}
