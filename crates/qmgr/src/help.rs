//! The manual page printed by `qmgr --help`.

use rostfix_service::manual::{Manual, RETIRING_EXIT_STATUS};

/// The text of `qmgr --help`.
pub const HELP: Manual = Manual {
    name: "qmgr - the Rostfix queue manager",
    synopsis: "qmgr -n qmgr -t unix [-u] [-o name=value]...",
    description: "\
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
maximal_backoff_time until maximal_queue_lifetime. For a transport whose
recipient limit is 1 (local) the destination is the recipient, as in Postfix:
local_destination_concurrency_limit counts deliveries to one mailbox, and such
destinations share the transport's agent streams. Group commit: a transport
run by the local command (master.cf) gets up to rostfix_local_batch_limit
queued messages (default 32; 1 = off) of at most rostfix_local_batch_size_limit
bytes together (at least one) for one recipient in one request, the backlog
spread over the recipient's free slots; after the agent's reply the delivering
thread records every delivered recipient's done mark with one syncfs before
the files are removed (docs/performance.md). Woken through public/qmgr by
smtpd, pickup, bounce, rostqueue -f/-s and master's timer. At start it moves
active/ back to incoming/, so a crash loses nothing.
With rostfix_shaping_rules, destinations of rostfix_shaping_transports are
also counted in the rules' buckets (matched by domain or by MX host, looked up
here), each with a concurrency, a rate per hour and an adaptive back-off on
throttling replies; the file is re-read when it changes
(docs/bulk-sending.md). With rostfix_shaping_redis_server (default
$rostfix_anvil_redis_server) each bucket's rate and back-off are shared with
the other machines using that Redis server (GCRA), or this machine's own while
Redis does not answer. With rostfix_delivery_log, each delivery attempt of
each recipient is appended there as a JSON line with its outcome class; with
rostfix_suppression_action, recipients that hard-bounced are kept on
suppress/list and later mail to them is bounced without a connection.
Partial: a message is read whole. canonical_maps
and masquerading are done before queueing by smtpd and pickup.",
    more_options: "",
    exit_status: RETIRING_EXIT_STATUS,
    see_also: "master(8), smtpd(8), local(8), smtp(8), bounce(8), rostqueue(1)",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
