//! The manual page printed by `metrics --help`.

use rostfix_service::manual::Manual;

/// The text of `metrics --help`.
pub const HELP: Manual = Manual {
    name: "metrics - Rostfix native Prometheus endpoint",
    synopsis: "metrics -n metrics -t unix [-c] [-u] [-o name=value]...",
    description: "\
metrics adds up the counts Rostfix daemons report and serves them, with
the queue sizes, to Prometheus. master.cf:

    metrics   unix  -       -       y       -       1       metrics

Daemons report to private/metrics every few seconds (qmgr: recipients
sent, bounced and deferred per transport, delivery delays, messages
activated; smtpd: connections, rejects by stage, restriction and code,
AUTH results, TLS handshakes and failures, accepted messages and their
sizes; smtp: outbound TLS handshakes and failures; qmgr also per-destination
concurrency and dead destinations; postscreen: verdicts; any daemon: milter
and table errors). GET /metrics on rostfix_metrics_listen (default
127.0.0.1:9155) answers in Prometheus's text format, adding the number
of messages and the oldest message's age per queue, read from the queue
directories at each scrape. Counts are kept in memory: a restart starts
them from zero, which Prometheus treats as a counter reset. With
rostfix_metrics_password_file (user:password lines, read as root at start)
the endpoint asks for HTTP basic authentication (401 without it);
otherwise it has none: keep it on loopback (docs/operations.md).",
    more_options: "",
    exit_status: "\
0 when master goes away; 1 when it cannot start (the listen address
cannot be bound, the password file cannot be read).",
    see_also: "master(8), qmgr(8), docs/operations.md",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
