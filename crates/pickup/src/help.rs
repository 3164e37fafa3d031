//! The manual page printed by `pickup --help`.

/// The text of `pickup --help`.
pub const HELP: &str = r#"NAME
    pickup - the Rostfix local mail pickup service

SYNOPSIS
    pickup -n pickup -t unix [-c] [-u] [-o name=value]...

DESCRIPTION
    Started by master(8) (`pickup unix n - y 60 1 pickup`). Takes the files
    rostdrop(1) left in maildrop/, trusting the file owner's uid rather than
    anything in the file, copies only the sender, recipients and the attributes
    a local submitter may set (body_type, dsn_ret, dsn_envid; others are ignored
    with a warning), qualifies bare addresses with @$myorigin, adds a Received:
    header, streams the content into incoming/ (a message over
    message_size_limit is removed, not queued), removes the maildrop file and
    wakes qmgr. Unparseable files go to corrupt/; entries that are not regular
    files are removed, or logged once and skipped if they cannot be.

OPTIONS
    Set by master(8), never typed by hand: -n NAME (service), -t TYPE, -c (chroot
    into queue_directory), -u (run as mail_owner), -l, -z, -v, -o name=value
    (main.cf override for this service only). --help prints this text.

EXIT STATUS
    0 when it retires normally (master gone, max_use, max_idle), 1 on a fatal
    startup error.

SEE ALSO
    sendmail(1), rostdrop(1), qmgr(8)
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
