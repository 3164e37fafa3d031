//! The --help manual page and the usage line.

/// Printed with a usage error (exit 64).
pub const USAGE: &str = "usage: rostconf [-c config_dir] [-n | -d] [-h] [-x] [name...]\n\
       rostconf [-c config_dir] [-e] name=value...\n\
       rostconf [-c config_dir] -X name...\n\
       rostconf [-c config_dir] -# name...\n\
       rostconf [-c config_dir] -M [service[/type]...]\n\
       rostconf [-c config_dir] -M service/type='entry'...\n\
       rostconf [-c config_dir] -MX service/type...\n\
       rostconf --help";

/// The manual page.
pub const HELP: &str = "\
NAME
       rostconf - Rostfix configuration utility (a postconf work-alike)

SYNOPSIS
       rostconf [-c config_dir] [-n | -d] [-h] [-x] [name...]
       rostconf [-c config_dir] [-e] name=value...
       rostconf [-c config_dir] -X name...
       rostconf [-c config_dir] -# name...
       rostconf [-c config_dir] -M[f] [service[/type]...]
       rostconf [-c config_dir] -M[e] service/type='entry'...
       rostconf [-c config_dir] -MX service/type...
       rostconf [-c config_dir] -M# service/type...
       rostconf [-c config_dir] -F [service/type/field...]
       rostconf [-c config_dir] -F[e] service/type/field=value...
       rostconf [-c config_dir] -P [service/type/name...]
       rostconf [-c config_dir] -P[e] service/type/name=value...
       rostconf [-c config_dir] -PX service/type/name...
       rostconf -l | -m | -a | -A
       rostconf import [-n] [source [target]]

DESCRIPTION
       rostconf shows and edits main.cf and master.cf, which use Postfix's syntax
       and parameter names. Without options it prints every known parameter as
       \"name = value\", using main.cf's setting where there is one and the
       default otherwise. Given names, it prints only those; a name that is
       neither known nor set in main.cf gets a warning.

       rostconf import carries a Postfix configuration (default /etc/postfix)
       into a Rostfix one (default /etc/rostfix) and writes IMPORT-REPORT there;
       \"rostconf import --help\" describes it.

       Edits keep comments, blank lines and the order of the file: a setting is
       replaced where it is (continuation lines included), new settings are
       appended, and the file is written to a temporary file and renamed into
       place. An argument of the form name=value implies -e.

OPTIONS
       -c config_dir
              Use config_dir/main.cf and config_dir/master.cf instead of the
              MAIL_CONFIG environment variable or /etc/rostfix.
       -n     Show only the parameters set explicitly in main.cf, sorted by
              name. Unused parameters are reported on standard error as
              postconf does (\"rostconf: warning: /etc/rostfix/main.cf:
              unused parameter: name=value\"): a name no service knows, that
              no other setting or master.cf -o value refers to as $name and
              that smtpd_restriction_classes does not list. Unknown master.cf
              -o names are reported against master.cf the same way.
       -d     Show default values instead of main.cf's values.
       -h     Show values only, without \"name = \".
       -x     Expand $name, ${name}, $(name), ${name?text} and ${name:text} in
              the values shown.
       -e     Edit main.cf: set each name=value.
       -X     Edit main.cf: remove the named parameters.
       -#     Edit main.cf: comment out the named parameters.
       -M     Show master.cf entries, one per line in normalized columns, all of
              them or those matching service or service/type. With
              service/type='entry', replace that entry (or append it when there
              is none); the entry is a complete master.cf line.
       -Me    Same as -M with service/type='entry'.
       -Mf    With -M: fold long entries, each -o name=value on a line of its
              own, as postconf -Mf does.
       -MX    Delete the master.cf entries service/type.
       -M#    Comment out the master.cf entries service/type (every line of
              the entry gets a leading #).
       -F     Show master.cf fields as service/type/field = value; field is
              one of service, type, private, unprivileged, chroot, wakeup,
              process_limit, command (the command with its arguments). Any
              part of service/type/field may be left out to match all. With
              service/type/field=value (or -Fe), change that field.
       -P     Show the -o parameters of master.cf entries as
              service/type/name = value. With service/type/name=value (or
              -Pe), set the parameter (replacing an existing -o name=..., or
              appending -o name=value); with -PX, remove it.
       -l     List the mailbox lock methods local supports (fcntl, dotlock).
       -m     List the lookup table types (those of the maps library).
       -a     List the SASL server types smtpd supports (dovecot, rostfix).
       -A     List the SASL client types smtp supports (rostfix, built in).
       --help Show this manual page.

EXIT STATUS
       0      Success (warnings may have been printed).
       1      A configuration file could not be read, parsed or written; the
              message names the file, line and parameter.
       64     Bad command-line usage.

ENVIRONMENT
       MAIL_CONFIG
              The configuration directory when -c is not given.

SEE ALSO
       postconf(1), postconf(5), master(5), rostfix(1)
";
