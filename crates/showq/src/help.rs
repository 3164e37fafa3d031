//! The --help manual page.

/// The manual page.
pub const HELP: &str = "\
NAME
       showq - Rostfix queue listing service

SYNOPSIS
       showq [generic daemon options]   (started by master)

DESCRIPTION
       showq lists the mail queue for rostqueue -p and -j (and mailq) run by
       users who cannot read queue_directory themselves. master.cf:

           showq     unix  n       -       y       -       -       showq

       The socket is public/showq. Reaching it needs the setgid_group group,
       which rostqueue gets by being installed set-group-id, as Postfix's
       postqueue is. A client connects and sends nothing; showq sends one
       record per message in maildrop, active, incoming, deferred and hold
       (queue, id, arrival time, size, forced expiry, sender, and the pending
       recipients with their delay reasons), then an end record with any
       warnings, and closes (docs/ipc.md). Message content is never read.

OPTIONS
       The generic daemon options master passes: -n name, -t type, -c
       (chroot), -u (drop to mail_owner), -l, -z, -v, -o name=value.
       --help prints this page.

EXIT STATUS
       0 when it stops after max_idle or max_use, or when master goes away;
       1 when it cannot start.

SEE ALSO
       rostqueue(1), master(8), postqueue(1), showq(8) of Postfix
";
