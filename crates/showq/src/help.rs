//! The manual page printed by `showq --help`.

use rostfix_service::manual::Manual;

/// The text of `showq --help`.
pub const HELP: Manual = Manual {
    name: "showq - Rostfix queue listing service",
    synopsis: "showq -n showq -t unix [-c] [-u] [-o name=value]...",
    description: "\
showq lists the mail queue for rostqueue -p and -j (and mailq) run by
users who cannot read queue_directory themselves. master.cf:

    showq     unix  n       -       y       -       -       showq

The socket is public/showq. Reaching it needs the setgid_group group,
which rostqueue gets by being installed set-group-id, as Postfix's
postqueue is. A client connects and sends nothing; showq sends one
record per message in maildrop, active, incoming, deferred and hold
(queue, id, arrival time, size, forced expiry, sender, and the pending
recipients with their delay reasons), then an end record with any
warnings, and closes (docs/ipc.md). Message content is never read.

With -o rostfix_showq_protocol=postfix the listing is in Postfix 3's
showq format instead (protocol announcement, then name/value attribute
groups per message), for tools written against Postfix's showq socket
such as prometheus-postfix-exporter. Run it as a second service:

    postfix-showq unix n    -       y       -       -       showq
      -o rostfix_showq_protocol=postfix",
    more_options: "",
    exit_status: "\
0 when it stops after max_idle or max_use, or when master goes away;
1 when it cannot start.",
    see_also: "rostqueue(1), master(8), postqueue(1), showq(8) of Postfix",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
