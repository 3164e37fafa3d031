//! The `--help` text (man-page style) and the usage line.

/// One-line usage, printed with exit 64 on a bad command line.
pub const USAGE: &str =
    "usage: rostdrop [-c DIR] [-N NOTIFY] [-R RET] [-V ENVID] [-B BODY] -f SENDER -- RCPT...";

/// The manual page.
pub const HELP: &str = "\
NAME
    rostdrop - Rostfix mail posting utility

SYNOPSIS
    rostdrop [-c DIR] [-N NOTIFY] [-R RET] [-V ENVID] [-B BODY] -f SENDER
             -- RECIPIENT...

DESCRIPTION
    rostdrop is run by sendmail(1), set-group-id to setgid_group, to write a
    locally submitted message into the maildrop queue. The message content is
    read from standard input as sendmail normalized it. The file records the
    envelope, the real user ID of the caller (uid) and rewrite_context=local;
    rostdrop then wakes the pickup service (public/pickup), which also scans
    maildrop every 60 seconds.

    rostdrop treats its caller as hostile: it keeps only the environment
    import_environment names, refuses a configuration directory the default
    main.cf does not list in alternate_config_directories, checks every address (no control
    characters, at most 320 bytes, at most 10000 recipients) and enforces
    message_size_limit, removing a partial file on any failure. It does not
    commit a message when interrupted by a signal.

OPTIONS
    -c DIR        Configuration directory. Honoured (as is MAIL_CONFIG) only
                  for root, or when DIR, each directory above it and its
                  main.cf are owned by root and not writable by group or other
                  (a directory above DIR may be a root-owned sticky one, /tmp).
    -f SENDER     Envelope sender; empty for the null sender.
    -N NOTIFY     DSN NOTIFY stored with every recipient: NEVER, or SUCCESS,
                  FAILURE, DELAY joined by commas in that order.
    -R RET        DSN RET (FULL or HDRS), stored as attribute dsn_ret.
    -V ENVID      DSN ENVID (printable ASCII), stored as attribute dsn_envid.
    -B BODY       7BIT or 8BITMIME, stored as attribute body_type.
    -X DELIMS     VERP: two characters from verp_delimiter_filter, stored as
                  attribute verp_delimiters (sendmail -XV); needs a non-null
                  sender.
    --            End of options; recipients follow.
    --help        Show this text.

EXIT STATUS
    0 queued; 64 usage error; 65 bad address, DSN value or message file too
    big; 73 cannot create the queue file; 74 error reading input; 75
    temporary failure (write error, queue file system full, interrupted);
    77 unauthorized configuration directory; 78 configuration error.

SEE ALSO
    sendmail(1), pickup(8), main.cf: queue_directory, message_size_limit,
    setgid_group
";
