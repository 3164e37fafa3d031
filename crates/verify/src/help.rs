//! The manual page printed by `verify --help`.

use rostfix_service::manual::Manual;

/// The text of `verify --help`.
pub const HELP: Manual = Manual {
    name: "verify - the Rostfix address verification service",
    synopsis: "verify -n verify -t unix [-u] [-o name=value]...",
    description: "\
Started by master(8) (`verify unix - - n - 1 verify`, one process), listening
on private/verify. smtpd(8) asks it about an address for
reject_unverified_recipient and reject_unverified_sender; with no fresh answer
cached, verify queues a probe message (sender address_verify_sender) that qmgr
routes like mail and the delivery agent carries only as far as RCPT TO. qmgr
reports each probe's result back; answers are kept in address_verify_map
(a text file of Rostfix's own format; empty: memory only) for
address_verify_positive_expire_time / address_verify_negative_expire_time and
re-probed after the *_refresh_time. Expired entries are dropped every
address_verify_cache_cleanup_interval.",
    more_options: "",
    exit_status: "0 when master goes away, 1 on a fatal startup error.",
    see_also: "smtpd(8), qmgr(8), master(8)",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
