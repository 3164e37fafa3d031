//! rostqueue: the postqueue work-alike. Lists the queue in postqueue's text (-p) or JSON
//! Lines (-j) format, and sends flush triggers to qmgr (-f, -i ID). Root and mail_owner
//! read the queue directories directly; anyone else asks the showq service on
//! public/showq, which rostqueue reaches by being installed set-group-id setgid_group
//! (as Postfix's postqueue is set-group-id postdrop). Run that way by anyone but root,
//! it honours `-c` and MAIL_CONFIG only for a directory the default main.cf lists in
//! alternate_config_directories, and it starts like rostdrop (standard descriptors,
//! environment per import_environment, umask): rostfix_privilege, shared by both.

#![deny(unsafe_code)]

mod args;
mod help;
mod json;
mod listing;
mod localtime;

use args::{Mode, Options};
use rostfix_config::getopt::options_or_exit;
use rostfix_config::{MainCf, DEFAULT_CONFIG_DIR};
use rostfix_privilege::config_dir::{choose_config_dir, running_set_id, ConfigDirError};
use rostfix_privilege::hygiene::{harden, SavedEnvironment};
use rostfix_proto::{Trigger, PICKUP_SOCKET, QMGR_SOCKET, SHOWQ_SOCKET};
use rostfix_showq::scan;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::exit;

/// sysexits.h codes.
const EX_UNAVAILABLE: i32 = 69;
const EX_TEMPFAIL: i32 = 75;
const EX_NOPERM: i32 = 77;
const EX_CONFIG: i32 = 78;

/// How long the showq service may take per read.
const SHOWQ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Why rostqueue stops.
#[derive(Debug, thiserror::Error)]
enum Fatal {
    #[error("{0}")]
    Config(#[from] rostfix_config::ConfigError),
    #[error("{0}")]
    Scan(#[from] scan::ScanError),
    #[error("Cannot flush mail queue - mail system is down ({0})")]
    Trigger(#[from] rostfix_proto::TriggerError),
    #[error("Queue report unavailable - mail system is down ({0})")]
    Showq(#[from] rostfix_showq::ShowqError),
    #[error("{0}")]
    ConfigDir(#[from] ConfigDirError),
    #[error("write to standard output: {0}")]
    Output(std::io::Error),
}

impl Fatal {
    fn exit_code(&self) -> i32 {
        match self {
            Fatal::Config(_) => EX_CONFIG,
            Fatal::Scan(_) | Fatal::Output(_) => EX_TEMPFAIL,
            Fatal::Trigger(_) | Fatal::Showq(_) => EX_UNAVAILABLE,
            Fatal::ConfigDir(_) => EX_NOPERM,
        }
    }
}

fn main() {
    let saved_env = match harden(0o022) {
        Ok(saved) => saved,
        Err(e) => {
            eprintln!("rostqueue: fatal: {e}");
            exit(EX_TEMPFAIL);
        }
    };
    let options = options_or_exit(
        args::parse_args(std::env::args().skip(1)),
        "rostqueue",
        help::HELP,
        help::USAGE,
    );
    match run(&options, &saved_env) {
        Ok(()) => exit(0),
        // A closed pipe (`rostqueue -p | head`) is not worth a message.
        Err(Fatal::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => exit(0),
        Err(error) => {
            eprintln!("rostqueue: fatal: {error}");
            exit(error.exit_code());
        }
    }
}

/// The configuration directory: any for root or a rostqueue not installed set-id (its
/// caller could read the queue itself), else the default or a listed one.
fn choose_config(options: &Options, saved_env: &SavedEnvironment) -> Result<PathBuf, Fatal> {
    let trusted = nix::unistd::getuid().is_root() || !running_set_id();
    Ok(choose_config_dir(
        options.config_dir.as_deref(),
        saved_env.get("MAIL_CONFIG").map(|v| v.as_os_str()),
        trusted,
        Path::new(DEFAULT_CONFIG_DIR),
    )?)
}

/// Root and mail_owner read the queue themselves.
fn may_read_queue(cf: &MainCf) -> bool {
    let uid = nix::unistd::getuid();
    uid.is_root()
        || nix::unistd::User::from_name(&cf.get("mail_owner"))
            .ok()
            .flatten()
            .is_some_and(|u| u.uid == uid)
}

/// The listing: read directly when allowed and possible, else from showq.
fn listing(cf: &MainCf, root: &Path) -> Result<Vec<scan::Listed>, Fatal> {
    if may_read_queue(cf) {
        let empty_sender = cf.get("empty_address_recipient");
        let mut warn = |w: String| eprintln!("rostqueue: warning: {w}");
        match scan::scan(root, &empty_sender, &mut warn) {
            Ok(m) => return Ok(m),
            // E.g. root squashed on a network file system: the service can still read.
            Err(scan::ScanError::PermissionDenied(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (messages, warnings) = rostfix_showq::fetch(&root.join(SHOWQ_SOCKET), SHOWQ_TIMEOUT)?;
    for w in warnings {
        eprintln!("rostqueue: warning: {w}");
    }
    Ok(messages)
}

fn run(options: &Options, saved_env: &SavedEnvironment) -> Result<(), Fatal> {
    let cf = MainCf::load(&choose_config(options, saved_env)?)?;
    saved_env.import(&cf.get_list("import_environment"));
    let root = PathBuf::from(cf.get("queue_directory"));
    let timeout = cf.get_time("trigger_timeout");
    match &options.mode {
        Mode::List | Mode::Json => {
            let messages = listing(&cf, &root)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if options.mode == Mode::List {
                listing::write_listing(&mut out, &messages, &localtime::asctime)
                    .map_err(Fatal::Output)?;
            } else {
                json::write_json(&mut out, &messages).map_err(Fatal::Output)?;
            }
            out.flush().map_err(Fatal::Output)
        }
        Mode::Flush => {
            rostfix_proto::send_trigger(&root.join(QMGR_SOCKET), &Trigger::Flush, timeout)?;
            wake_pickup(&root, timeout);
            Ok(())
        }
        Mode::FlushId(id) => {
            rostfix_proto::send_trigger(
                &root.join(QMGR_SOCKET),
                &Trigger::FlushId(id.clone()),
                timeout,
            )?;
            Ok(())
        }
        Mode::FlushSite(site) => {
            rostfix_proto::send_trigger(
                &root.join(QMGR_SOCKET),
                &Trigger::FlushSite(site.clone()),
                timeout,
            )?;
            Ok(())
        }
    }
}

/// Mail waiting in maildrop/ is part of "the queue" too; pickup being unreachable when
/// qmgr answered is odd but not fatal to the flush.
fn wake_pickup(root: &Path, timeout: std::time::Duration) {
    if let Err(e) =
        rostfix_proto::send_trigger(&root.join(PICKUP_SOCKET), &Trigger::Wakeup, timeout)
    {
        eprintln!("rostqueue: warning: {e}");
    }
}
