//! The manual page printed by `bounce --help`.

use rostfix_service::manual::{Manual, RETIRING_EXIT_STATUS};

/// The text of `bounce --help`.
pub const HELP: Manual = Manual {
    name: "bounce - the Rostfix delivery status notification service",
    synopsis: "bounce -n bounce -t unix [-c] [-u] [-o name=value]...",
    description: "\
Started by master(8) (`bounce unix - - y - 0 bounce`). For each request from
qmgr it queues an RFC 3464 notice (multipart/report with a text part,
message/delivery-status and the returned message or its headers per RET and
bounce_size_limit) to the sender, or to the alias owner qmgr names: failure,
delay warning or success, each only for recipients whose NOTIFY asks for it;
then it wakes qmgr. A notice to the null sender is not sent: a bounce that
bounces becomes one double bounce to 2bounce_notice_recipient when
notify_classes lists 2bounce, else it is dropped (never a loop).
Partial: no postmaster copies for the other notify_classes, no
bounce_template_file.",
    more_options: "",
    exit_status: RETIRING_EXIT_STATUS,
    see_also: "qmgr(8), master(8)",
};

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
