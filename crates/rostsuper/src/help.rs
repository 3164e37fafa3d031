//! The --help manual page and the usage line.

/// Printed with a usage error (exit 64).
pub const USAGE: &str = "usage: rostsuper [-c config_dir] [-d queue_id] [-h queue_id] [-H queue_id] [-r queue_id] [-e queue_id] [-f queue_id] [-s] [-p] [queue...]\n       rostsuper [-c config_dir] -S list|add|remove [address...]\n       rostsuper --help";

/// The manual page.
pub const HELP: &str = "\
NAME
       rostsuper - Rostfix queue maintenance (a postsuper work-alike)

SYNOPSIS
       rostsuper [-c config_dir] [-d queue_id] [-h queue_id] [-H queue_id]
                 [-r queue_id] [-e queue_id] [-f queue_id] [-s] [-p] [queue...]
       rostsuper [-c config_dir] -S list
       rostsuper [-c config_dir] -S add|remove address...

DESCRIPTION
       rostsuper deletes messages from the mail queue, puts them on hold and
       releases them, requeues and expires them, repairs queue file names,
       owners and modes, and removes stale temporary files. Without any
       option it does -s and -p, as postsuper does. Every change is one
       rename(2) or chmod(2), so it is safe while the mail system runs; qmgr is
       woken afterwards so it acts at once. It works directly on queue_directory (from main.cf) and
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

       -r queue_id
              Requeue the message(s): move them to incoming/ from the named
              queues, by default hold, incoming, active and deferred. qmgr
              resolves every pending recipient again (transport, relay and
              rewriting settings changed since are applied); done recipients
              stay done. A message being delivered when requeued may see a
              recipient delivered twice, as with postsuper.

       -e queue_id
              Expire the message(s): set the owner-execute bit of the queue
              file (see docs/queue-format.md). When qmgr next attempts the
              message it returns it to the sender with reason \"message is
              administratively expired\". Held mail is not attempted until
              released.

       -f queue_id
              Like -e, then ask qmgr to attempt the message now (rostqueue -i).

       -s     Structure repair, for incoming, active, deferred, hold and
              corrupt (or the named queues): rename a file whose name does not
              end in its inode number (after a restore from backup) together
              with its defer and bounce logs, give files back to mail_owner
              (as root) and set their mode to 0600, keeping the expire bit.

       -p     Remove temporary files (tmp.PID.N) left by writers that crashed:
              only when the writer process is gone and the file is a minute
              old, or when it is a day old.

       -S list
              Print the suppression list (recipients whose mail hard-bounced,
              see rostfix_suppression_action): one line per address that has
              not expired, with its expiry time, the time it was added and the
              reason (class, status code and reply).

       -S add address...
              Put the addresses on the suppression list for
              rostfix_suppression_expiry (a later add extends the expiry).

       -S remove address...
              Take the addresses off the suppression list: mail to them is
              tried again. Each is reported as removed or as not listed.

              -S takes no other operation; its operands are addresses, not
              queue names. Changes lock the list as qmgr does, so entries
              qmgr adds meanwhile are kept. See docs/bulk-sending.md.

       -v     Accepted for compatibility; does nothing.

       --help Print this manual page.

       queue...
              Limit the operations to these queue directories: maildrop,
              incoming, active, deferred, hold, corrupt.

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
