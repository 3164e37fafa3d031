//! rostfix's command line, usage line and `--help` manual page.

use std::path::PathBuf;

/// One-line usage, printed with exit 64 on a bad command line.
pub const USAGE: &str =
    "usage: rostfix [-c DIR] [-v] start|start-fg|stop|reload|status|check|flush\n       rostfix dkim-keygen [-a rsa|ed25519] [-b BITS] [-D DIR] DOMAIN SELECTOR\n       rostfix check-dns [-c DIR] [-i ADDRESS] DOMAIN";

/// The manual page.
pub const HELP: &str = "\
NAME
    rostfix - Rostfix control program

SYNOPSIS
    rostfix [-c DIR] [-v] COMMAND

DESCRIPTION
    rostfix starts, stops and inspects the Rostfix mail system, like
    postfix(1). Messages go to standard error prefixed with
    syslog_name/rostfix and, where logging can be set up, to the mail log.

COMMANDS
    check     Load main.cf and master.cf (errors name the file, line and
              parameter). As root, check that mail_owner and setgid_group
              exist. Create missing queue directories with their owners and
              modes, fix wrong ones (with a warning), and warn about programs
              master.cf names that daemon_directory lacks, queue files not
              owned by mail_owner or open to group/other, rostdrop and
              rostqueue in command_directory without group setgid_group and
              mode 2755, main.cf/master.cf not owned by root or writable by
              group/other, and hash:/btree: tables whose .rdb is older than
              the source (\"database X.rdb is older than source file X\").
              A table main.cf names that cannot be read is an error: check
              exits 1 (start only warns).
    start     Run check, then start master (daemon_directory/master), which
              detaches once its sockets are open. Fails when the mail system
              is already running.
    start-fg  Like start, but master stays in the foreground (exec master -d),
              for systemd Type=simple and containers.
    stop      Send master SIGTERM and wait (up to 30 seconds) until it has
              stopped every service and released queue_directory/pid/master.pid.
    reload    Send master SIGHUP: it re-reads main.cf and master.cf; running
              services finish their clients and are replaced.
    status    Say whether master runs (and its process ID).
    flush     Ask qmgr (public/qmgr) to retry deferred mail now.
    dkim-keygen [-a rsa|ed25519] [-b BITS] [-D DIR] DOMAIN SELECTOR
              Make a DKIM signing key and print the TXT record to publish
              (rostfix dkim-keygen --help; docs/dkim.md).
    check-dns [-c DIR] [-i ADDRESS] DOMAIN
              Check DOMAIN's MX, SPF, DKIM, DMARC and PTR records against this
              server's main.cf and print each wrong one as it should be
              published (rostfix check-dns --help; docs/mail-auth.md).

OPTIONS
    -c DIR    Configuration directory (default: MAIL_CONFIG, else /etc/rostfix).
    -v        Verbose logging (passed on to master).
    --help    Show this text.

EXIT STATUS
    0 success (status: running); 1 failure (status: not running); 64 usage
    error.

SEE ALSO
    master(8), rostconf(1), rostqueue(1), main.cf: queue_directory,
    daemon_directory, mail_owner, setgid_group
";

/// The commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Start,
    StartForeground,
    Stop,
    Reload,
    Status,
    Check,
    Flush,
}

/// What the command line asked for; `command` is None for `--help`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_dir: Option<PathBuf>,
    pub verbose: bool,
    pub command: Option<Command>,
}

/// Parses the arguments after the program name; `Err` holds the message for stderr.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
    let mut options = Options {
        config_dir: None,
        verbose: false,
        command: None,
    };
    let mut help = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" => help = true,
            "-c" => match args.next() {
                Some(dir) if !dir.is_empty() => options.config_dir = Some(PathBuf::from(dir)),
                _ => return Err("option -c requires a directory".to_string()),
            },
            "-v" => options.verbose = true,
            word if !word.starts_with('-') => {
                if options.command.is_some() {
                    return Err(format!("unexpected argument: {word}"));
                }
                options.command = Some(match word {
                    "start" => Command::Start,
                    "start-fg" => Command::StartForeground,
                    "stop" => Command::Stop,
                    "reload" => Command::Reload,
                    "status" => Command::Status,
                    "check" => Command::Check,
                    "flush" => Command::Flush,
                    other => return Err(format!("unknown command: {other}")),
                });
            }
            other => return Err(format!("unknown option: {other}")),
        }
    }
    if help {
        options.command = None;
        return Ok(options);
    }
    if options.command.is_none() {
        return Err("no command given".to_string());
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn commands_and_options() {
        let o = parse(&["-c", "/etc/x", "-v", "start"]).unwrap();
        assert_eq!(o.command, Some(Command::Start));
        assert_eq!(o.config_dir, Some(PathBuf::from("/etc/x")));
        assert!(o.verbose);
        assert_eq!(
            parse(&["start-fg"]).unwrap().command,
            Some(Command::StartForeground)
        );
        assert_eq!(
            parse(&["status", "-c", "/d"]).unwrap().command,
            Some(Command::Status)
        );
        assert_eq!(parse(&["--help"]).unwrap().command, None);
    }

    #[test]
    fn bad_command_lines() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["restart"]).is_err());
        assert!(parse(&["start", "stop"]).is_err());
        assert!(parse(&["-x", "start"]).is_err());
        assert!(parse(&["-c"]).is_err());
    }
}
