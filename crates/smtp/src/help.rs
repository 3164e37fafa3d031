//! The manual page printed by `smtp --help` (and `lmtp --help`).

use rostfix_service::manual::{Manual, RETIRING_EXIT_STATUS};

/// The text of `smtp --help`.
pub const HELP: Manual = Manual {
    name: "smtp, lmtp - the Rostfix SMTP and LMTP client delivery agent",
    synopsis: "\
smtp -n smtp -t unix [-c] [-u] [-o name=value]...
lmtp -n lmtp -t unix [-c] [-u] [-o name=value]...",
    description: "\
Started by master(8) for `smtp`/`relay` unix services. Answers qmgr's delivery
requests: a next hop [host]:port is used as is, a domain gets an MX lookup
(rostfix_dns_servers, else /etc/resolv.conf, read before the chroot), with
A/AAAA fallback, null MX and NXDOMAIN bounced, other DNS failures deferred.
Speaks EHLO (HELO fallback), MAIL with SIZE, BODY=8BITMIME, SMTPUTF8 and DSN
RET/ENVID, RCPT with NOTIFY/ORCPT (when offered), pipelined RCPTs, DATA; marks
each accepted recipient done in the queue file before answering qmgr.
STARTTLS per smtp_tls_security_level (none, may, encrypt, verify, secure) and
smtp_tls_policy_maps; CAs from smtp_tls_CAfile, smtp_tls_CApath or the system
store. Client SASL (PLAIN, LOGIN) with smtp_sasl_password_maps when
smtp_sasl_auth_enable = yes; with smtp_sender_dependent_authentication = yes
the envelope sender is looked up first and no session is cached. Serves requests on one qmgr stream until qmgr
closes it; the session to the destination is kept between them
(smtp_connection_cache_time_limit) and reused after RSET, the delivery line
then shows conn_use=N; a session that carried smtp_connection_reuse_count_limit
transactions (for shaped mail: its qmgr bucket's messages_per_connection) is
closed instead, and a process serving shaped mail keeps one session at most
(docs/bulk-sending.md); closing the stream closes the session. 8-bit mail to a
server without 8BITMIME is converted to quoted-printable unless
disable_mime_output_conversion = yes.
master.cf flags=DORX (Postfix 3.0): D prepends Delivered-To:, O
X-Original-To:, R Return-Path: (D and O need
TRANSPORT_destination_recipient_limit = 1).
LMTP mode (command or service name lmtp): next hops unix:PATH (relative to
queue_directory), inet:host:port, host:port; LHLO; one reply per recipient;
lmtp_* parameters.
Partial: no dot-nexthop certificate matching, no DANE.",
    more_options: "",
    exit_status: RETIRING_EXIT_STATUS,
    see_also: "master(8), qmgr(8), rostconf(1)",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
