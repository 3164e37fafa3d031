//! rostqueue: the postqueue work-alike. Lists the queue in postqueue's text (-p) or JSON
//! Lines (-j) format by reading the queue directories directly, and sends flush
//! triggers to qmgr (-f, -i ID).

mod args;
mod help;
mod json;
mod listing;
mod localtime;
mod scan;

use args::{ArgsError, Command, Mode, Options};
use rostfix_config::{config_dir, MainCf};
use rostfix_proto::Trigger;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::exit;

/// sysexits.h codes.
const EX_USAGE: i32 = 64;
const EX_UNAVAILABLE: i32 = 69;
const EX_TEMPFAIL: i32 = 75;
const EX_CONFIG: i32 = 78;

/// Why rostqueue stops.
#[derive(Debug, thiserror::Error)]
enum Fatal {
    #[error("{0}")]
    Config(#[from] rostfix_config::ConfigError),
    #[error("{0}")]
    Scan(#[from] scan::ScanError),
    #[error("Cannot flush mail queue - mail system is down ({0})")]
    Trigger(#[from] rostfix_proto::TriggerError),
    #[error("write to standard output: {0}")]
    Output(std::io::Error),
}

impl Fatal {
    fn exit_code(&self) -> i32 {
        match self {
            Fatal::Config(_) => EX_CONFIG,
            Fatal::Scan(_) | Fatal::Output(_) => EX_TEMPFAIL,
            Fatal::Trigger(_) => EX_UNAVAILABLE,
        }
    }
}

fn main() {
    let options = match args::parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", help::HELP);
            exit(0);
        }
        Ok(Command::Run(options)) => options,
        Err(error) => usage(&error),
    };
    match run(&options) {
        Ok(()) => exit(0),
        // A closed pipe (`rostqueue -p | head`) is not worth a message.
        Err(Fatal::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => exit(0),
        Err(error) => {
            eprintln!("rostqueue: fatal: {error}");
            exit(error.exit_code());
        }
    }
}

fn usage(error: &ArgsError) -> ! {
    eprintln!("rostqueue: {error}");
    eprintln!("{}", help::USAGE);
    exit(EX_USAGE);
}

fn run(options: &Options) -> Result<(), Fatal> {
    let cf = MainCf::load(&config_dir(options.config_dir.as_deref()))?;
    let root = PathBuf::from(cf.get("queue_directory"));
    let timeout = cf.get_time("trigger_timeout");
    match &options.mode {
        Mode::List | Mode::Json => {
            let empty_sender = cf.get("empty_address_recipient");
            let mut warn = |w: String| eprintln!("rostqueue: warning: {w}");
            let messages = scan::scan(&root, &empty_sender, &mut warn)?;
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
            rostfix_proto::send_trigger(&root.join("public/qmgr"), &Trigger::Flush, timeout)?;
            wake_pickup(&root, timeout);
            Ok(())
        }
        Mode::FlushId(id) => {
            rostfix_proto::send_trigger(
                &root.join("public/qmgr"),
                &Trigger::FlushId(id.clone()),
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
        rostfix_proto::send_trigger(&root.join("public/pickup"), &Trigger::Wakeup, timeout)
    {
        eprintln!("rostqueue: warning: {e}");
    }
}
