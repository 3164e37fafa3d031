//! rostsuper: the postsuper work-alike. Deletes queued messages (with their logs), puts
//! them on hold and releases them, reporting each like postsuper does. Root or
//! mail_owner only.

mod args;
mod help;
mod ops;

use args::{ArgsError, Command, Operation, Options, Target};
use rostfix_config::{config_dir, MainCf};
use rostfix_queue::{is_valid_queue_id, QueueName};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::exit;

/// sysexits.h codes.
const EX_USAGE: i32 = 64;
const EX_TEMPFAIL: i32 = 75;
const EX_NOPERM: i32 = 77;
const EX_CONFIG: i32 = 78;

/// Standard input is read at most this far: queue ids are short, so this is far more
/// than any real list, and a runaway producer cannot make us allocate without bound.
const MAX_STDIN: u64 = 64 * 1024 * 1024;

/// Why rostsuper stops before doing anything.
#[derive(Debug, thiserror::Error)]
enum Fatal {
    #[error("{0}")]
    Config(#[from] rostfix_config::ConfigError),
    #[error("use of this command is reserved for the superuser and mail_owner ({0})")]
    NotPrivileged(String),
    #[error("read standard input: {0}")]
    Stdin(std::io::Error),
}

impl Fatal {
    fn exit_code(&self) -> i32 {
        match self {
            Fatal::Config(_) => EX_CONFIG,
            Fatal::NotPrivileged(_) => EX_NOPERM,
            Fatal::Stdin(_) => EX_TEMPFAIL,
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
        Ok(true) => exit(0),
        Ok(false) => exit(EX_TEMPFAIL),
        Err(error) => {
            eprintln!("rostsuper: fatal: {error}");
            exit(error.exit_code());
        }
    }
}

fn usage(error: &ArgsError) -> ! {
    eprintln!("rostsuper: {error}");
    eprintln!("{}", help::USAGE);
    exit(EX_USAGE);
}

/// Root, or the user named by mail_owner.
fn check_privilege(cf: &MainCf) -> Result<(), Fatal> {
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        return Ok(());
    }
    let owner = cf.get("mail_owner");
    match nix::unistd::User::from_name(&owner) {
        Ok(Some(user)) if user.uid == uid => Ok(()),
        _ => Err(Fatal::NotPrivileged(owner)),
    }
}

/// Sends the per-message lines to the mail log as well, as postsuper does. Only a log
/// file or a reachable /dev/log: the maillog crate's stderr fallback would print every
/// line twice.
fn init_maillog(cf: &MainCf) {
    let file = cf.get("maillog_file");
    let target = if !file.is_empty() {
        rostfix_maillog::LogTarget::File(PathBuf::from(file))
    } else if Path::new("/dev/log").exists() {
        rostfix_maillog::LogTarget::Syslog
    } else {
        return;
    };
    if let Err(e) = rostfix_maillog::init(
        &cf.get("syslog_name"),
        "rostsuper",
        &cf.get("myhostname"),
        target,
        false,
    ) {
        eprintln!("rostsuper: warning: cannot log to the mail log: {e}");
    }
}

/// Reports one line on stderr (`rostsuper: TEXT`) and in the mail log.
fn report(text: &str) {
    eprintln!("rostsuper: {text}");
    log::info!("{text}");
}

fn warn(text: &str) {
    eprintln!("rostsuper: warning: {text}");
    log::warn!("{text}");
}

/// Queue ids from standard input, one per line, blank lines skipped.
fn read_stdin_ids() -> Result<Vec<String>, Fatal> {
    let stdin = std::io::stdin();
    let mut ids = Vec::new();
    for line in stdin.lock().take(MAX_STDIN).lines() {
        let line = line.map_err(Fatal::Stdin)?;
        let id = line.trim();
        if !id.is_empty() {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// Runs every operation; false if some message could not be handled.
fn run(options: &Options) -> Result<bool, Fatal> {
    let cf = MainCf::load(&config_dir(options.config_dir.as_deref()))?;
    check_privilege(&cf)?;
    init_maillog(&cf);
    let root = PathBuf::from(cf.get("queue_directory"));
    let mut ok = true;
    for op in &options.operations {
        let queues = ops::source_queues(op.action, &options.queues);
        let ids = match &op.target {
            Target::Id(id) => vec![id.clone()],
            // The parser allows `-` once, so stdin is read at most once.
            Target::Stdin => read_stdin_ids()?,
            Target::All => match ops::all_ids(&root, &queues) {
                Ok(ids) => ids,
                Err(e) => {
                    warn(&e.to_string());
                    ok = false;
                    continue;
                }
            },
        };
        ok &= run_operation(&root, op, &ids, &queues);
    }
    Ok(ok)
}

fn run_operation(root: &Path, op: &Operation, ids: &[String], queues: &[QueueName]) -> bool {
    let (done_text, summary) = ops::wording(op.action);
    let mut count = 0usize;
    let mut ok = true;
    for id in ids {
        if !is_valid_queue_id(id) {
            warn(&format!("invalid mail queue id: {}", id.escape_debug()));
            continue;
        }
        match ops::apply(root, op.action, id, queues) {
            Ok(true) => {
                report(&format!("{id}: {done_text}"));
                count += 1;
            }
            Ok(false) => {}
            Err(e) => {
                warn(&e.to_string());
                ok = false;
            }
        }
    }
    if count > 0 {
        report(&format!(
            "{summary}: {count} message{}",
            if count == 1 { "" } else { "s" }
        ));
    }
    ok
}
