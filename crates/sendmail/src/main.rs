//! sendmail: the Sendmail-compatible submission command. Runs as the invoking user (not
//! set-id): parses the Postfix-compatible command line, reads and normalizes the
//! message, works out the recipients, and hands everything to the set-group-id
//! `rostdrop`, whose exit status it returns. `-bs` runs an SMTP session on standard
//! input/output (smtp_session.rs) whose messages take the same path; `-bp`/`mailq`,
//! `-q`, `-bi`/`newaliases` run rostqueue or rostalias (delegate.rs).

#![forbid(unsafe_code)]

mod addr_list;
mod address;
mod args;
mod compose;
mod delegate;
mod headers;
mod help;
mod input;
mod smtp_session;
mod submit;
mod sysexits;
mod timed_stdin;

use args::{ArgsError, Command, Mode, Options};
use compose::{clean_sender, compose, Context};
use rostfix_config::MainCf;
use smtp_session::{SessionConfig, SubmitResult, Transaction};
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::exit;
use std::time::{SystemTime, UNIX_EPOCH};
use submit::DropOptions;

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
    BadAddress(#[from] address::BadAddress),
    #[error(transparent)]
    Submit(#[from] submit::SubmitError),
    #[error(transparent)]
    Delegate(#[from] delegate::DelegateError),
    #[error("SMTP session: {0}")]
    Session(io::Error),
}

impl Fatal {
    fn exit_code(&self) -> i32 {
        match self {
            Fatal::Unsupported(_) | Fatal::NoRecipients => sysexits::EX_USAGE,
            Fatal::Config(_) => sysexits::EX_CONFIG,
            Fatal::Input(input::InputError::TooBig) => sysexits::EX_DATAERR,
            Fatal::Input(input::InputError::Io(_)) => sysexits::EX_IOERR,
            Fatal::NoLogin(_) => sysexits::EX_NOUSER,
            Fatal::BadAddress(_) => sysexits::EX_DATAERR,
            Fatal::Submit(submit::SubmitError::Spawn { .. }) | Fatal::Delegate(_) => {
                sysexits::EX_UNAVAILABLE
            }
            Fatal::Submit(_) => sysexits::EX_TEMPFAIL,
            Fatal::Session(_) => sysexits::EX_IOERR,
        }
    }
}

fn main() {
    let argv0 = std::env::args().next().unwrap_or_default();
    let mode = args::mode_for_name(&argv0);
    let opts = match args::parse_args_as(mode, std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", help::HELP);
            exit(0);
        }
        Ok(Command::Submit(o)) => o,
        Err(ArgsError::Unsupported(what)) => {
            fail(&Fatal::Unsupported(format!("{what} is not supported")))
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
    let commands = config.get("command_directory");
    let cdir = opts.config_dir.as_deref();
    match &opts.mode {
        Mode::Submit => submit_stdin(opts, &config),
        Mode::Smtp => smtp(opts, &config),
        Mode::ListQueue => Ok(delegate::run_tool(
            &commands,
            "rostqueue",
            cdir,
            &["-p".into()],
        )?),
        Mode::Flush => Ok(delegate::run_tool(
            &commands,
            "rostqueue",
            cdir,
            &["-f".into()],
        )?),
        Mode::FlushSite(site) => Ok(delegate::run_tool(
            &commands,
            "rostqueue",
            cdir,
            &["-s".into(), site.clone()],
        )?),
        Mode::NewAliases => {
            let tables = delegate::alias_tables(&config.get("alias_database"));
            for table in tables {
                let code = delegate::run_tool(&commands, "rostalias", cdir, &[table])?;
                if code != 0 {
                    return Ok(code);
                }
            }
            Ok(0)
        }
    }
}

/// The envelope sender: `-f`, else the login name of the real user.
fn sender_of(opts: &Options, user: Option<&nix::unistd::User>) -> Result<String, Fatal> {
    let sender = match &opts.sender {
        Some(s) => clean_sender(s),
        None => match user {
            Some(u) => u.name.clone(),
            None => return Err(Fatal::NoLogin(nix::unistd::getuid().as_raw())),
        },
    };
    if !sender.is_empty() {
        address::check_address(&sender)?;
    }
    Ok(sender)
}

/// Clock, pid and names for composing one message.
fn context<'a>(
    sender: &'a str,
    full_name: Option<&'a str>,
    extract: bool,
    recipients: &'a [String],
    myhostname: &'a str,
    myorigin: &'a str,
) -> Context<'a> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now_unix = i64::try_from(now.as_secs()).unwrap_or(0);
    Context {
        sender,
        full_name,
        extract,
        cli_recipients: recipients,
        myhostname,
        myorigin,
        now_unix,
        now_nanos: now.subsec_nanos(),
        utc_offset: rostfix_maillog::date::local_offset(now_unix),
        pid: std::process::id(),
    }
}

fn drop_options(opts: &Options, verp: Option<String>) -> DropOptions {
    DropOptions {
        notify: opts.notify.clone(),
        ret: opts.ret.map(String::from),
        envid: opts.envid.clone(),
        body: opts.body.map(String::from),
        verp,
    }
}

/// `-XV[xy]`: the delimiters to store, from the option or default_verp_delimiters,
/// checked against verp_delimiter_filter (Postfix exits EX_USAGE likewise).
fn verp_delimiters(opts: &Options, config: &MainCf, sender: &str) -> Result<Option<String>, Fatal> {
    let Some(given) = &opts.verp else {
        return Ok(None);
    };
    if sender.is_empty() {
        return Err(Fatal::Unsupported(
            "-XV option requires non-null sender address".into(),
        ));
    }
    let delims = if given.is_empty() {
        config.get("default_verp_delimiters")
    } else {
        given.clone()
    };
    let filter = config.get("verp_delimiter_filter");
    rostfix_queue::verify_delimiters(&delims, &filter)
        .map_err(|_| Fatal::Unsupported(format!("-XV requires two characters from {filter}")))?;
    Ok(Some(delims))
}

fn submit_stdin(opts: &Options, config: &MainCf) -> Result<i32, Fatal> {
    let limit = u64::try_from(config.get_int("message_size_limit")).unwrap_or(0);
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten();
    let sender = sender_of(opts, user.as_ref())?;
    let verp = verp_delimiters(opts, config, &sender)?;

    let content = input::read_message(BufReader::new(io::stdin().lock()), opts.ignore_dots, limit)?;

    let myhostname = config.get("myhostname");
    let myorigin = config.get("myorigin");
    let full_name = full_name(opts, user.as_ref());
    let ctx = context(
        &sender,
        full_name.as_deref(),
        opts.extract,
        &opts.recipients,
        &myhostname,
        &myorigin,
    );
    let submission = compose(&content, &ctx).ok_or(Fatal::NoRecipients)?;
    for r in &submission.recipients {
        address::check_address(r)?;
    }
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
        &drop_options(opts, verp),
    )?)
}

/// `-bs`: the session on stdin/stdout; each message through rostdrop.
fn smtp(opts: &Options, config: &MainCf) -> Result<i32, Fatal> {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten();
    let full_name = full_name(opts, user.as_ref());
    let myhostname = config.get("myhostname");
    let myorigin = config.get("myorigin");
    let banner = config
        .expanded("smtpd_banner")
        .unwrap_or_else(|_| format!("{myhostname} ESMTP"));
    let cfg = SessionConfig {
        banner,
        hostname: myhostname.clone(),
        size_limit: u64::try_from(config.get_int("message_size_limit")).unwrap_or(0),
    };
    let rostdrop = PathBuf::from(config.get("command_directory")).join("rostdrop");
    let mut submit = |tx: &Transaction, content: &[u8]| -> SubmitResult {
        let ctx = context(
            &tx.sender,
            full_name.as_deref(),
            false,
            &tx.recipients,
            &myhostname,
            &myorigin,
        );
        let Some(submission) = compose(content, &ctx) else {
            return SubmitResult::Rejected("no valid recipients".into());
        };
        let dsn = DropOptions {
            notify: tx.notify.clone(),
            ret: tx.ret.clone(),
            envid: tx.envid.clone(),
            body: tx.body.clone(),
            // -bs takes no XVERP (its session offers none): VERP is -XV's.
            verp: None,
        };
        match submit::run_rostdrop(
            &rostdrop,
            opts.config_dir.as_deref(),
            &tx.sender,
            &submission.recipients,
            &submission.content,
            &dsn,
        ) {
            Ok(0) => SubmitResult::Queued,
            Ok(sysexits::EX_DATAERR) => SubmitResult::Rejected("message refused".into()),
            Ok(code) => SubmitResult::TempFail(format!("rostdrop exit status {code}")),
            Err(e) => SubmitResult::TempFail(e.to_string()),
        }
    };
    let mut input = BufReader::new(timed_stdin::TimedStdin::new(
        config.get_time("smtpd_timeout"),
    ));
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match smtp_session::run_session(&mut input, &mut out, &cfg, &mut submit) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            use std::io::Write;
            let _ = out.write_all(b"421 4.4.2 Error: timeout exceeded\r\n");
            let _ = out.flush();
            Ok(0)
        }
        Err(e) => Err(Fatal::Session(e)),
    }
}
