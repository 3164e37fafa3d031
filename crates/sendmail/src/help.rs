//! The `--help` text (man-page style) and the short usage line for bad arguments.

/// One-line usage, printed with exit 64 on a bad command line.
pub const USAGE: &str =
    "usage: sendmail [-C DIR] [-t] [-i] [-f sender] [-F fullname] [-oX...] [--] [recipient...]";

/// The manual page.
pub const HELP: &str = "\
NAME
    sendmail - Rostfix to Sendmail compatibility interface

SYNOPSIS
    sendmail [-C DIR] [-t] [-i] [-oi] [-f sender] [-F fullname] [-odi] [-oX...]
             [--] [recipient...]

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

    Command-line recipients may be address lists (\"a@x, B <b@y>\").

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
    -odi, -odb, -oem, -om, -G, -U, -n, -m, -x, -c, -B type, -h n, -p x
                  Accepted for compatibility and ignored.
    -oX...        Other -o settings are ignored with a warning.
    --            End of options.
    --help        Show this text.

    Not supported yet: -bs, -bp, -bi, -bd, -bv, -q, -I, and DSN options
    (-N, -R, -V are ignored with a warning).

ENVIRONMENT
    MAIL_CONFIG   Configuration directory (overridden by -C).
    NAME          Full name when -F is not given.

EXIT STATUS
    0 on success, else rostdrop's status or a sysexits code: 64 usage error or
    no recipients, 65 message too big, 67 unknown user, 69 rostdrop could not
    be run, 74 input error, 75 temporary failure, 78 configuration error.

SEE ALSO
    rostdrop(1), pickup(8), rostqueue(1), main.cf: command_directory,
    message_size_limit, myhostname, myorigin
";
