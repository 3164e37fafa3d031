//! master's command line, the usage line and the `--help` manual page.

use std::path::PathBuf;

/// One-line usage, printed with exit 64 on a bad command line.
pub const USAGE: &str = "usage: master [-c DIR] [-d] [-t] [-v]";

/// The manual page.
pub const HELP: &str = "\
NAME
    master - Rostfix master process

SYNOPSIS
    master [-c DIR] [-d] [-t] [-v]

DESCRIPTION
    master supervises the Rostfix mail system. It reads main.cf and master.cf,
    opens every service's listening sockets (inet services on inet_interfaces,
    unix services as queue_directory/private/NAME or public/NAME) and starts a
    service process when a connection waits and no process of that service is
    idle, up to the service's process limit. Each child is executed as
    daemon_directory/COMMAND -n NAME -t TYPE [-c] [-u] [-l] [-z] ARGS... with
    the status pipe on file descriptor 3 and the listening sockets from 4.
    Children report busy and idle on the status pipe; a child that dies before
    it served anyone throttles its service for service_throttle_time. Services
    with a wakeup time are sent a wake-up trigger at start and every N seconds.

    Only the services Rostfix ships (smtpd, qmgr, local, smtp, lmtp, pickup,
    bounce, virtual, anvil, showq, postscreen) run, as inet, unix or pass (a
    unix socket whose connections carry a client socket, for smtpd behind
    postscreen) services; other master.cf entries are logged once and skipped
    (dnsblog and tlsproxy as not needed: postscreen does their work).

    master locks queue_directory/pid/master.pid while it runs. SIGHUP makes it
    re-read main.cf and master.cf; SIGTERM stops every child and exits.

    Normally started by rostfix(1) start, which checks the installation first.

OPTIONS
    -c DIR    Configuration directory (default: MAIL_CONFIG, else /etc/rostfix).
    -d        Stay in the foreground (for tests and systemd Type=simple).
              Without -d, master detaches and exits 0 once its sockets are
              open, or 1 with the reason on standard error.
    -t        Test whether master is running: exit 0 when it is NOT running,
              1 when it is (as Postfix's master -t).
    -v        Verbose logging.
    --help    Show this text.

EXIT STATUS
    0 stopped cleanly (or, without -d, started; with -t: not running);
    1 fatal error (or, with -t: running); 64 usage error.

SEE ALSO
    rostfix(1), main.cf: queue_directory, daemon_directory, inet_interfaces,
    inet_protocols, service_throttle_time, default_process_limit
";

/// What the command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub config_dir: Option<PathBuf>,
    pub foreground: bool,
    pub test_running: bool,
    pub verbose: bool,
    pub help: bool,
}

/// Parses the arguments after the program name; `Err` holds the message for stderr.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" => options.help = true,
            "-c" => match args.next() {
                Some(dir) if !dir.is_empty() => options.config_dir = Some(PathBuf::from(dir)),
                _ => return Err("option -c requires a directory".to_string()),
            },
            "-d" => options.foreground = true,
            "-t" => options.test_running = true,
            "-v" => options.verbose = true,
            other if other.starts_with("-c") && other.len() > 2 => {
                options.config_dir = Some(PathBuf::from(&other[2..]));
            }
            other => return Err(format!("unexpected argument: {other}")),
        }
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
    fn flags_and_dir() {
        let o = parse(&["-c", "/etc/x", "-d", "-v"]).unwrap();
        assert_eq!(o.config_dir, Some(PathBuf::from("/etc/x")));
        assert!(o.foreground && o.verbose && !o.test_running);
        assert!(parse(&["-t"]).unwrap().test_running);
        assert_eq!(
            parse(&["-c/etc/y"]).unwrap().config_dir,
            Some(PathBuf::from("/etc/y"))
        );
        assert!(parse(&["--help"]).unwrap().help);
        assert_eq!(parse(&[]).unwrap(), Options::default());
    }

    #[test]
    fn bad_arguments() {
        assert!(parse(&["-c"]).is_err());
        assert!(parse(&["-x"]).is_err());
        assert!(parse(&["start"]).is_err());
    }
}
