//! The --help manual page and the usage line.

/// Printed with a usage error (exit 64).
pub const USAGE: &str =
    "usage: rostqueue [-c config_dir] -p | -j | -f | -i queue_id | -s site\n       rostqueue --help";

/// The manual page.
pub const HELP: &str = "\
NAME
       rostqueue - Rostfix queue control (a postqueue work-alike)

SYNOPSIS
       rostqueue [-c config_dir] -p
       rostqueue [-c config_dir] -j
       rostqueue [-c config_dir] -f
       rostqueue [-c config_dir] -i queue_id
       rostqueue [-c config_dir] -s site

DESCRIPTION
       rostqueue lists the mail queue and asks the queue manager to deliver
       queued mail now. It reads queue_directory from main.cf.

       The listing covers the maildrop, active, incoming, deferred and hold
       queues. Root and mail_owner read them directly; any other user's
       rostqueue asks the showq service (master.cf: showq unix n - y - -
       showq) on public/showq, as postqueue does. public/ is open to the
       setgid_group group only, so rostqueue is installed set-group-id
       setgid_group (mode 2755), like rostdrop; run that way by a user other
       than root it honours -c and MAIL_CONFIG only for a directory that
       the default main.cf lists in alternate_config_directories or
       multi_instance_directories. Files that cannot be parsed are not listed; a
       warning names each one on standard error. Files in corrupt/ are not
       listed.

OPTIONS
       -c config_dir
              Read main.cf from config_dir instead of $MAIL_CONFIG or
              /etc/rostfix.

       -p     Print the traditional sendmail-style listing, as postqueue -p
              does: queue id (followed by * for a message in the active
              queue, ! for one on hold), size, arrival time, sender, then each
              recipient still to be delivered, with the reason of the last
              failed attempt in parentheses above it when known. A summary
              line ends the listing; an empty queue prints
              \"Mail queue is empty\".

       -j     Print one JSON object per message per line (JSON Lines), with
              postqueue's field names: queue_name, queue_id, arrival_time
              (seconds since the epoch), message_size, forced_expire, sender,
              and recipients, a list of objects with address and
              delay_reason (when known). forced_expire is true after
              rostsuper -e. Readers should ignore fields they do not know.

       -f     Flush the queue: ask qmgr (public/qmgr) to retry all deferred
              mail now, and wake pickup (public/pickup) for mail in maildrop.

       -i queue_id
              Ask qmgr to deliver the message with this queue id now.

       -s site
              Ask qmgr to deliver now the deferred mail with a recipient whose
              domain, or next hop host, is site, and to stop treating that
              destination as dead.

       -v     Accepted for compatibility; does nothing.

       --help Print this manual page.

EXIT STATUS
       0      Success.
       64     Bad command line (EX_USAGE).
       69     The mail system is down: qmgr or showq could not be reached
              (EX_UNAVAILABLE).
       75     The queue could not be read (EX_TEMPFAIL).
       77     Set-group-id and the configuration directory is not trusted
              (EX_NOPERM).
       78     main.cf could not be loaded (EX_CONFIG).

ENVIRONMENT
       MAIL_CONFIG
              The configuration directory when -c is not given.

SEE ALSO
       rostsuper(1) privileged queue operations, showq(8) the listing
       service, sendmail(1) (mailq), rostconf(1) configuration,
       qmgr(8) queue manager, postqueue(1) the Postfix command it imitates,
       docs/queue-format.md the queue file format.
";
