//! The manual page printed by `bounce --help`.

/// The text of `bounce --help`.
pub const HELP: &str = r#"NAME
    bounce - the Rostfix delivery status notification service

SYNOPSIS
    bounce -n bounce -t unix [-c] [-u] [-o name=value]...

DESCRIPTION
    Started by master(8) (`bounce unix - - y - 0 bounce`). For each request from
    qmgr it queues an RFC 3464 notice (multipart/report with a text part,
    message/delivery-status and the returned message or its headers per RET and
    bounce_size_limit) to the sender, or to the alias owner qmgr names: failure,
    delay warning or success, each only for recipients whose NOTIFY asks for it;
    then it wakes qmgr. A notice to the null sender is not sent: a bounce that
    bounces becomes one double bounce to 2bounce_notice_recipient when
    notify_classes lists 2bounce, else it is dropped (never a loop).
    Partial: no postmaster copies for the other notify_classes, no
    bounce_template_file.

OPTIONS
    Set by master(8), never typed by hand: -n NAME (service), -t TYPE, -c (chroot
    into queue_directory), -u (run as mail_owner), -l, -z, -v, -o name=value
    (main.cf override for this service only). --help prints this text.

EXIT STATUS
    0 when it retires normally (master gone, max_use, max_idle), 1 on a fatal
    startup error.

SEE ALSO
    qmgr(8), master(8)
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
