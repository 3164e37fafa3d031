//! `local`: the local delivery agent daemon, started by master (master.cf:
//! `local unix - n n - - local`). Runs as root, without chroot, so that it can deliver
//! with each recipient's identity; see the library (src/lib.rs) for what it delivers.

use rostfix_local::deliver::Settings;
use rostfix_local::server::{serve_stream, IO_TIMEOUT};
use rostfix_service::{Connection, Service, ServiceError};
use std::path::Path;
use std::time::Duration;

/// Per mailbox lock (dotlock, then fcntl): how long to wait before deferring.
const LOCK_WAIT: Duration = Duration::from_secs(20);

const HELP: &str = "\
NAME
    local - Rostfix local mail delivery

SYNOPSIS
    local -n NAME -t TYPE [-c] [-u] [-v] [-o name=value]...

DESCRIPTION
    The local delivery agent. master starts it with a listening socket (fd 4) and a
    status pipe (fd 3); qmgr connects to private/local and sends one delivery request
    per connection. For each recipient local finds the user (the address's local part,
    lowercased, without the recipient_delimiter extension), adds Return-Path: and
    Delivered-To: headers and appends the message, with the user's identity, to
    $HOME/$home_mailbox (Maildir when it ends in /, else mbox) or, when home_mailbox is
    empty, to $mail_spool_directory/USER. mbox files are locked with a dotlock and an
    fcntl lock. Delivered recipients are marked done in the queue file before the
    reply. Aliases and .forward files are not supported yet.

    Parameters: myhostname, home_mailbox, mail_spool_directory, recipient_delimiter,
    mailbox_size_limit, queue_directory.

OPTIONS
    -n NAME, -t TYPE    service name and type (from master.cf)
    -c, -u, -l, -z      chroot, unprivileged, maxproc flags set by master
    -v                  verbose logging
    -o name=value       override a main.cf parameter
    --help              print this text

EXIT STATUS
    0 after serving its clients, 64 on bad arguments, 75 when it cannot start.

SEE ALSO
    master(8), qmgr(8), rostfix(1)
";

fn main() {
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return;
    }
    let mut service = match Service::init("local") {
        Ok(s) => s,
        Err(ServiceError::Usage(u)) => {
            eprintln!("local: usage: {u}\nTry 'local --help'.");
            std::process::exit(64);
        }
        Err(e) => {
            eprintln!("local: fatal: {e}");
            std::process::exit(75);
        }
    };
    let listeners = service.take_listeners();
    let settings = settings(&service);
    if let Err(e) = service.confine() {
        log::error!("fatal: {e}");
        std::process::exit(75);
    }
    service.serve(listeners, move |_svc, conn| {
        serve_connection(&settings, conn)
    })
}

fn settings(service: &Service) -> Settings {
    let cfg = &service.config;
    Settings {
        hostname: cfg.get("myhostname"),
        home_mailbox: cfg.get("home_mailbox"),
        mail_spool_directory: cfg.get("mail_spool_directory"),
        recipient_delimiter: cfg.get("recipient_delimiter"),
        mailbox_size_limit: u64::try_from(cfg.get_int("mailbox_size_limit")).unwrap_or(0),
        lock_wait: LOCK_WAIT,
    }
}

fn serve_connection(settings: &Settings, conn: Connection) {
    // After confine() the working directory is queue_directory.
    let root = Path::new(".");
    let timeouts = |r: std::io::Result<()>, w: std::io::Result<()>| {
        if let Err(e) = r.and(w) {
            log::warn!("cannot set socket timeouts: {e}");
            return false;
        }
        true
    };
    match conn {
        Connection::Unix(mut s) => {
            if timeouts(
                s.set_read_timeout(Some(IO_TIMEOUT)),
                s.set_write_timeout(Some(IO_TIMEOUT)),
            ) {
                serve_stream(settings, &mut s, root);
            }
        }
        Connection::Tcp(mut s) => {
            if timeouts(
                s.set_read_timeout(Some(IO_TIMEOUT)),
                s.set_write_timeout(Some(IO_TIMEOUT)),
            ) {
                serve_stream(settings, &mut s, root);
            }
        }
    }
}
