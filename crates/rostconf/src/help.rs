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
       rostconf [-c config_dir] -M [service[/type]...]
       rostconf [-c config_dir] -M service/type='entry'...
       rostconf [-c config_dir] -MX service/type...

DESCRIPTION
       rostconf shows and edits main.cf and master.cf, which use Postfix's syntax
       and parameter names. Without options it prints every known parameter as
       \"name = value\", using main.cf's setting where there is one and the
       default otherwise. Given names, it prints only those; a name that is
       neither known nor set in main.cf gets a warning.

       Edits keep comments, blank lines and the order of the file: a setting is
       replaced where it is (continuation lines included), new settings are
       appended, and the file is written to a temporary file and renamed into
       place. An argument of the form name=value implies -e.

OPTIONS
       -c config_dir
              Use config_dir/main.cf and config_dir/master.cf instead of the
              MAIL_CONFIG environment variable or /etc/rostfix.
       -n     Show only the parameters set explicitly in main.cf, sorted by
              name. Unused parameters are reported on standard error.
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
       -MX    Delete the master.cf entries service/type.
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
