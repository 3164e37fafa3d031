//! sendmail: the Sendmail-compatible submission command. Runs as the invoking user (not
//! set-id): parses the Postfix-compatible command line, reads and normalizes the
//! message, works out the recipients, and hands everything to the set-group-id
//! `rostdrop`, whose exit status it returns.

mod addr_list;
mod args;
mod compose;
mod headers;
mod help;
mod input;
mod submit;
mod sysexits;

use args::{ArgsError, Command, Options};
use compose::{clean_sender, compose, Context};
use rostfix_config::MainCf;
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::exit;
use std::time::{SystemTime, UNIX_EPOCH};

/// A fatal error with the sysexits code it exits with.
#[derive(Debug, thiserror::Error)]
enum Fatal {
    #[error("{0}")]
    Unsupported(String),
    #[error("no recipients specified")]
    NoRecipients,
    #[error("{0}")]
    Config(#[from] rostfix_config::ConfigError),
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error("no login name found for user ID {0}")]
    NoLogin(u32),
    #[error(transparent)]
    Submit(#[from] submit::SubmitError),
}

impl Fatal {
    fn exit_code(&self) -> i32 {
        match self {
            Fatal::Unsupported(_) | Fatal::NoRecipients => sysexits::EX_USAGE,
            Fatal::Config(_) => sysexits::EX_CONFIG,
            Fatal::Input(input::InputError::TooBig) => sysexits::EX_DATAERR,
            Fatal::Input(input::InputError::Io(_)) => sysexits::EX_IOERR,
            Fatal::NoLogin(_) => sysexits::EX_NOUSER,
            Fatal::Submit(submit::SubmitError::Spawn { .. }) => sysexits::EX_UNAVAILABLE,
            Fatal::Submit(_) => sysexits::EX_TEMPFAIL,
        }
    }
}

fn main() {
    let opts = match args::parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", help::HELP);
            exit(0);
        }
        Ok(Command::Submit(o)) => o,
        Err(ArgsError::Unsupported(what)) => {
            fail(&Fatal::Unsupported(format!("{what} is not supported yet")))
        }
        Err(e) => {
            eprintln!("sendmail: {e}");
            eprintln!("{}", help::USAGE);
            exit(sysexits::EX_USAGE);
        }
    };
    for w in &opts.warnings {
        eprintln!("sendmail: warning: {w}");
    }
    match run(&opts) {
        Ok(code) => exit(code),
        Err(e) => fail(&e),
    }
}

fn fail(e: &Fatal) -> ! {
    eprintln!("sendmail: fatal: {e}");
    exit(e.exit_code());
}

/// The full name for an added From: header: `-F`, else `$NAME`, else the first GECOS
/// field with `&` standing for the capitalized login name.
fn full_name(opts: &Options, user: Option<&nix::unistd::User>) -> Option<String> {
    if let Some(n) = &opts.full_name {
        return Some(n.clone());
    }
    if let Ok(n) = std::env::var("NAME") {
        return Some(n);
    }
    let user = user?;
    let gecos = user.gecos.to_string_lossy();
    let first = gecos.split(',').next().unwrap_or("").trim();
    if first.is_empty() {
        return None;
    }
    let mut cap = user.name.clone();
    if let Some(c) = cap.get(0..1) {
        cap.replace_range(0..1, &c.to_uppercase());
    }
    Some(first.replace('&', &cap))
}

fn run(opts: &Options) -> Result<i32, Fatal> {
    let config_dir = rostfix_config::config_dir(opts.config_dir.as_deref());
    let config = MainCf::load(&config_dir)?;
    let limit = u64::try_from(config.get_int("message_size_limit")).unwrap_or(0);

    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid).ok().flatten();
    let sender = match &opts.sender {
        Some(s) => clean_sender(s),
        None => match &user {
            Some(u) => u.name.clone(),
            None => return Err(Fatal::NoLogin(uid.as_raw())),
        },
    };

    let content = input::read_message(BufReader::new(io::stdin().lock()), opts.ignore_dots, limit)?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now_unix = i64::try_from(now.as_secs()).unwrap_or(0);
    let myhostname = config.get("myhostname");
    let myorigin = config.get("myorigin");
    let full_name = full_name(opts, user.as_ref());
    let ctx = Context {
        sender: &sender,
        full_name: full_name.as_deref(),
        extract: opts.extract,
        cli_recipients: &opts.recipients,
        myhostname: &myhostname,
        myorigin: &myorigin,
        now_unix,
        now_nanos: now.subsec_nanos(),
        utc_offset: rostfix_maillog::date::local_offset(now_unix),
        pid: std::process::id(),
    };
    let submission = compose(&content, &ctx).ok_or(Fatal::NoRecipients)?;
    if opts.verbose {
        eprintln!(
            "sendmail: from=<{}>, nrcpt={}",
            sender,
            submission.recipients.len()
        );
    }

    let rostdrop = PathBuf::from(config.get("command_directory")).join("rostdrop");
    Ok(submit::run_rostdrop(
        &rostdrop,
        opts.config_dir.as_deref(),
        &sender,
        &submission.recipients,
        &submission.content,
    )?)
}
