//! rostfix: start, stop, reload, check and inspect the Rostfix mail system (the
//! postfix(1) command). See args.rs for the manual page.

#![deny(unsafe_code)]

mod args;
mod check;
mod check_dns;
mod check_files;
mod check_smtpd;
mod control;
mod dirs;
mod dkim_keygen;
mod pidlock;

use args::Command;
use rostfix_config::MainCf;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// EX_USAGE.
const EXIT_USAGE: i32 = 64;

/// Why a command fails.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error(transparent)]
    Config(#[from] rostfix_config::ConfigError),
    #[error("{0}")]
    Check(String),
    /// Someone else already said why (master on our stderr).
    #[error("")]
    Quiet,
}

/// Set once the mail log is open, so messages go there too.
static LOGGING: AtomicBool = AtomicBool::new(false);

/// Prints `PREFIX: text` to stderr (and logs it) like postfix(1).
struct Say {
    prefix: String,
}

impl Say {
    fn info(&self, text: &str) {
        eprintln!("{}: {text}", self.prefix);
        if LOGGING.load(Ordering::Relaxed) {
            log::info!("{text}");
        }
    }

    fn warn(&self, text: &str) {
        eprintln!("{}: warning: {text}", self.prefix);
        if LOGGING.load(Ordering::Relaxed) {
            log::warn!("{text}");
        }
    }

    fn fatal(&self, error: &Fatal) -> ! {
        if !matches!(error, Fatal::Quiet) {
            eprintln!("{}: fatal: {error}", self.prefix);
            if LOGGING.load(Ordering::Relaxed) {
                rostfix_maillog::fatal!("{error}");
            }
        }
        std::process::exit(1);
    }
}

/// Opens the mail log when main.cf loads and the log can be written; never fatal.
fn start_logging(main: &MainCf, verbose: bool) {
    let Ok(target) = rostfix_maillog::target_for(
        &main.get("maillog_file"),
        &main.get("rostfix_maillog_format"),
    ) else {
        // `rostfix check` and master report the bad value; a command just runs unlogged.
        return;
    };
    if rostfix_maillog::init(
        &main.get("syslog_name"),
        "rostfix",
        &main.get("myhostname"),
        target,
        verbose,
    )
    .is_ok()
    {
        LOGGING.store(true, Ordering::Relaxed);
    }
}

fn run(command: Command, config_dir: &Path, verbose: bool, say: &mut Say) -> Result<i32, Fatal> {
    if command == Command::Status {
        let main = MainCf::load(config_dir)?;
        let queue = check::absolute(&main.get("queue_directory"));
        return Ok(match control::running(&queue)? {
            Some(pid) => {
                say.info(&format!("the Rostfix mail system is running: PID: {pid}"));
                0
            }
            None => {
                say.info("the Rostfix mail system is not running");
                1
            }
        });
    }
    if let Ok(main) = MainCf::load(config_dir) {
        say.prefix = format!("{}/rostfix", main.get("syslog_name"));
        start_logging(&main, verbose);
    }
    let mut warnings = Vec::new();
    let checked = match command {
        Command::Check | Command::Start | Command::StartForeground => {
            Some(check::check(config_dir, &mut |w| {
                warnings.push(w.to_string())
            }))
        }
        _ => None,
    };
    for warning in &warnings {
        say.warn(warning);
    }
    let checked = checked.transpose()?;
    if let Some(c) = &checked {
        for e in &c.errors {
            say.warn(e);
        }
        if command == Command::Check && !c.errors.is_empty() {
            return Err(Fatal::Check(format!(
                "{} problem(s) above stop mail (unreadable lookup tables, smtpd services \
                 that cannot start)",
                c.errors.len()
            )));
        }
    }
    let queue = match &checked {
        Some(checked) => checked.queue_directory.clone(),
        None => check::absolute(&MainCf::load(config_dir)?.get("queue_directory")),
    };
    match command {
        Command::Check | Command::Status => {}
        Command::Start | Command::StartForeground => {
            if control::running(&queue)?.is_some() {
                return Err(Fatal::Check(
                    "the Rostfix mail system is already running".to_string(),
                ));
            }
            let daemon_directory = checked.map(|c| c.daemon_directory).unwrap_or_default();
            let master = daemon_directory.join("master");
            if !master.is_file() {
                return Err(Fatal::Check(format!(
                    "{}: no such program",
                    master.display()
                )));
            }
            say.info("starting the Rostfix mail system");
            control::start(
                &daemon_directory,
                config_dir,
                verbose,
                command == Command::StartForeground,
            )?;
        }
        Command::Stop => {
            if control::running(&queue)?.is_none() {
                return Err(Fatal::Check(
                    "the Rostfix mail system is not running".to_string(),
                ));
            }
            say.info("stopping the Rostfix mail system");
            control::stop(&queue)?;
        }
        Command::Reload => {
            control::reload(&queue)?;
            say.info("refreshing the Rostfix mail system");
        }
        Command::Flush => control::flush(&queue)?,
    }
    Ok(0)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // A tool of its own with its own options (no main.cf needed).
    if argv.first().map(String::as_str) == Some("dkim-keygen") {
        std::process::exit(dkim_keygen::main(&argv[1..]));
    }
    if argv.first().map(String::as_str) == Some("check-dns") {
        std::process::exit(check_dns::main(&argv[1..]));
    }
    let options = match args::parse_args(argv) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("rostfix: {message}\n{}", args::USAGE);
            std::process::exit(EXIT_USAGE);
        }
    };
    let Some(command) = options.command else {
        print!("{}", args::HELP);
        return;
    };
    let dir = rostfix_config::config_dir(options.config_dir.as_deref());
    // master and its children get this path: make it absolute.
    let config_dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let mut say = Say {
        prefix: "rostfix/rostfix".to_string(),
    };
    match run(command, &config_dir, options.verbose, &mut say) {
        Ok(code) => std::process::exit(code),
        Err(error) => say.fatal(&error),
    }
}
