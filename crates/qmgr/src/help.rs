//! The manual page printed by `qmgr --help`.

/// The text of `qmgr --help`.
pub const HELP: &str = r#"NAME
    qmgr - the Rostfix queue manager

SYNOPSIS
    qmgr -n qmgr -t unix [-u] [-o name=value]...

DESCRIPTION
    Started by master(8) from master.cf (`qmgr unix n - n 300 1 qmgr`). Moves
    mail from incoming/ to active/ (one directory fsync pair per scan), expands
    virtual aliases once, resolves each recipient with Postfix's address classes
    (local, virtual alias, virtual mailbox, relay, default; transport_maps,
    relayhost; error:, discard: and retry: handled here), sends delivery requests
    to private/TRANSPORT with per-destination concurrency (slow start, feedback,
    dead destinations, rate delay) through one worker per parallel delivery, which
    keeps the agent's stream open when the agent offers and queues the
    destination's next request behind the running one, asks private/bounce for
    failure, delay and success notices, and moves what failed temporarily to
    deferred/ with a retry time between minimal_backoff_time and
    maximal_backoff_time until maximal_queue_lifetime. Woken through public/qmgr by
    smtpd, pickup, bounce, rostqueue -f/-s and master's timer. At start it moves
    active/ back to incoming/, so a crash loses nothing.
    Partial: a message is read whole; no sender-dependent routing, canonical_maps
    or masquerading.

OPTIONS
    Set by master(8), never typed by hand: -n NAME (service), -t TYPE, -c (chroot
    into queue_directory), -u (run as mail_owner), -l, -z, -v, -o name=value
    (main.cf override for this service only). --help prints this text.

EXIT STATUS
    0 when it retires normally (master gone, max_use, max_idle), 1 on a fatal
    startup error.

SEE ALSO
    master(8), smtpd(8), local(8), smtp(8), bounce(8), rostqueue(1)
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
