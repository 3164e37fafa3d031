//! The `--help` text (man-page style) and the short usage line for bad arguments.

/// One-line usage, printed with exit 64 on a bad command line.
pub const USAGE: &str = "usage: sendmail [-C DIR] [-t] [-i] [-f sender] [-F fullname] [-N dsn] [-R ret] [-V envid] [-B type] [-XV[xy]] [-oX...] [--] [recipient...]
       sendmail -bs | -bp | -bi | -q | -qRsite    (also: mailq, newaliases)";

/// The manual page.
pub const HELP: &str = "\
NAME
    sendmail - Rostfix to Sendmail compatibility interface

SYNOPSIS
    sendmail [-C DIR] [-t] [-i] [-oi] [-f sender] [-F fullname] [-N dsn]
             [-R ret] [-V envid] [-B type] [-odi] [-oX...] [--] [recipient...]
    sendmail [-C DIR] -bs          (SMTP on standard input and output)
    sendmail [-C DIR] -bp          (also: mailq)
    sendmail [-C DIR] -bi          (also: -I, newaliases)
    sendmail [-C DIR] -q | -qRsite

DESCRIPTION
    sendmail reads a message from standard input and submits it for delivery
    to the recipients named on the command line (and, with -t, in the message
    headers). It runs as the invoking user: it normalizes the message (CRLF
    becomes LF; From:, Date: and Message-Id: headers are added when missing)
    and hands it to the set-group-id rostdrop command, which writes it into the
    maildrop queue for the pickup service.

    Without -i, a line consisting of a single dot ends the message. A leading
    mbox-style \"From \" line is removed. The message may not exceed
    message_size_limit bytes.

    Command-line recipients may be address lists (\"a@x, B <b@y>\"). Every
    envelope address is checked for syntax first; a bad one ends sendmail with
    exit status 65 and nothing is queued.

    With -bs, sendmail speaks SMTP (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
    DSN and ENHANCEDSTATUSCODES) on standard input and output. Each message
    accepted there takes the same path as above (rostdrop, maildrop, pickup),
    so it is queued as the invoking user; the 250 reply to the end of DATA
    comes only after rostdrop has committed the file. A client silent for
    smtpd_timeout gets 421 and the session ends.

    Called as mailq, sendmail lists the queue (rostqueue -p); called as
    newaliases it rebuilds every hash: or btree: table of alias_database
    with rostalias.

OPTIONS
    -C DIR        Use the configuration in DIR instead of MAIL_CONFIG or
                  /etc/rostfix (rostdrop accepts only a trusted directory).
    -f sender     Envelope sender (also -fsender, -r sender). \"<>\" is the
                  null sender. Default: the login name of the real user ID.
    -F fullname   Full name for a From: header added by sendmail.
    -i, -oi       A line with a single dot does not end the message.
    -t            Also take recipients from To:, Cc: and Bcc: headers (or
                  their Resent- versions when present); Bcc: headers are
                  removed.
    -v            Verbose.
    -bm           Read mail from standard input (the default).
    -bs           SMTP session on standard input and output.
    -bp           List the queue (runs rostqueue -p).
    -bi, -I       Rebuild the alias databases (runs rostalias).
    -q            Flush the queue (runs rostqueue -f). -qINTERVAL is
                  ignored with a warning: qmgr runs the queue itself.
    -qRsite, -qSsite
                  Flush mail for one site (runs rostqueue -s site).
    -N dsn        DSN NOTIFY for every recipient: never, or a comma list of
                  success, failure, delay. Stored with each recipient.
    -R ret        DSN RET: full or hdrs.
    -V envid      DSN ENVID (1 to 100 printable ASCII characters).
    -B type       Body type: 7BIT or 8BITMIME.
    -XV, -XVxy    VERP: each recipient user@domain gets the envelope sender
                  owner+user=domain@origin; + and = are default_verp_delimiters
                  or x and y, both from verp_delimiter_filter. Needs a
                  non-null sender.
    -odi, -odb, -oem, -om, -G, -U, -n, -m, -x, -c, -h n, -p x
                  Accepted for compatibility and ignored.
    -oX...        Other -o settings are ignored with a warning.
    --            End of options.
    --help        Show this text.

    Not supported: -bd, -bv, -bl, -bh (exit 64), as in Postfix.

ENVIRONMENT
    MAIL_CONFIG   Configuration directory (overridden by -C).
    NAME          Full name when -F is not given.

EXIT STATUS
    0 on success, else rostdrop's status or a sysexits code: 64 usage error or
    no recipients, 65 bad address syntax or message too big, 67 unknown user,
    69 rostdrop could not be run, 73 cannot create the queue file, 74 input
    error, 75 temporary failure (among others the queue file system is full),
    78 configuration error. -bp, -q and -bi return rostqueue's or rostalias's
    status.

SEE ALSO
    rostdrop(1), pickup(8), rostqueue(1), rostmap(1) (rostalias), main.cf:
    command_directory, message_size_limit, myhostname, myorigin,
    alias_database, smtpd_banner, smtpd_timeout
";
