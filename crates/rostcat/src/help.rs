//! The --help manual page and the usage line.

/// Printed with a usage error (exit 64).
pub const USAGE: &str =
    "usage: rostcat [-behqv] [-c config_dir] file...|queue_id...\n       rostcat --help";

/// The manual page.
pub const HELP: &str = "\
NAME
       rostcat - show Rostfix queue files (a postcat work-alike)

SYNOPSIS
       rostcat [-behqv] [-c config_dir] file...
       rostcat -q [-behv] [-c config_dir] queue_id...

DESCRIPTION
       rostcat prints the contents of Rostfix queue files in human-readable
       form: the envelope (arrival time, sender, attributes, recipients), the
       message header and the message body. With none of -e, -h and -b it
       prints all three, each section introduced by a line such as
       \"*** ENVELOPE RECORDS deferred/3F2A81C0D4E ***\", as postcat does; with
       some of them it prints only those sections, without the marker lines
       (so `rostcat -bh -q ID` is the message as it would be delivered).

       Envelope lines: message_arrival_time (UTC), sender (empty for the null
       sender), named_attribute NAME=VALUE for each attribute, and for each
       recipient original_recipient (when it differs), dsn_notify_flags (when
       given) and recipient, or done_recipient for one already delivered.

       The files are read directly; queue files belong to mail_owner, so
       rostcat is normally run by root.

OPTIONS
       -b     Show the message body (after the first empty line).

       -c config_dir
              Read main.cf from config_dir instead of $MAIL_CONFIG or
              /etc/rostfix (for queue_directory, with -q).

       -e     Show the envelope records.

       -h     Show the message header (up to the first empty line).

       -q     The operands are queue ids: each is looked for in the incoming,
              active, deferred, hold, maildrop and corrupt queues of
              queue_directory.

       -v     Accepted for postcat compatibility; no effect.

       --help This text.

EXIT STATUS
       0 every file was shown; 1 a file was not found or is not a valid
       queue file (the others are still shown); 64 usage error; 78 main.cf
       does not load.

SEE ALSO
       rostqueue(8), rostsuper(8), docs/queue-format.md
";
