//! The --help manual page and the usage line.

/// Printed with a usage error (exit 64).
pub const USAGE: &str = "usage: rostsuper [-c config_dir] [-d queue_id] [-h queue_id] [-H queue_id] [queue...]\n       rostsuper --help";

/// The manual page.
pub const HELP: &str = "\
NAME
       rostsuper - Rostfix queue maintenance (a postsuper work-alike)

SYNOPSIS
       rostsuper [-c config_dir] [-d queue_id] [-h queue_id] [-H queue_id]
                 [queue...]

DESCRIPTION
       rostsuper deletes messages from the mail queue, puts them on hold and
       releases them. It works directly on queue_directory (from main.cf) and
       may be run only by root or by mail_owner.

       A queue_id argument is a queue id, ALL for every message in the queues
       concerned, or - to read queue ids from standard input, one per line.
       Options may be repeated and run in command-line order. Invalid queue
       ids are reported and skipped; ids that are not in the queue are
       skipped silently.

       Each message acted on is reported on standard error and in the mail
       log (e.g. \"rostsuper: 3F2A81C0D4E: removed\"), then a summary such as
       \"rostsuper: Deleted: 2 messages\".

OPTIONS
       -c config_dir
              Read main.cf from config_dir instead of $MAIL_CONFIG or
              /etc/rostfix.

       -d queue_id
              Delete the message(s), with their defer and bounce logs, from
              the named queues, by default hold, incoming, active and
              deferred. Name maildrop or corrupt explicitly to delete there.

       -h queue_id
              Put the message(s) on hold: move them to hold/ from the named
              queues, by default incoming, active and deferred. Held mail is
              not delivered until released.

       -H queue_id
              Release the message(s) from hold: move them to deferred/ with
              a retry time of now, so the next queue scan delivers them.

       -v     Accepted for compatibility; does nothing.

       --help Print this manual page.

       queue...
              Limit the operations to these queue directories: maildrop,
              incoming, active, deferred, hold, corrupt.

       The -r (requeue), -e/-f (expire), -s (repair) and -p (purge) options of
       postsuper are not implemented yet.

EXIT STATUS
       0      Success (including ids that were not found).
       64     Bad command line (EX_USAGE).
       75     A queue file or directory could not be changed (EX_TEMPFAIL).
       77     Not run by root or mail_owner (EX_NOPERM).
       78     main.cf could not be loaded (EX_CONFIG).

ENVIRONMENT
       MAIL_CONFIG
              The configuration directory when -c is not given.

SEE ALSO
       rostqueue(1) list and flush the queue, postsuper(1) the Postfix command
       it imitates, docs/queue-format.md the queue file format.
";
