//! rostconf: the Rostfix configuration utility, a postconf work-alike. It shows main.cf
//! parameters (all, named, explicit, defaults, expanded), edits main.cf keeping its
//! comments and order, and shows and edits master.cf entries.

#![forbid(unsafe_code)]

mod args;
mod edit;
mod fields;
mod help;
mod import;
mod info;
mod master;
mod show;

use args::{ArgsError, Mode, Options};
use rostfix_config::getopt::{options_or_exit, usage_exit};
use std::io::Write;
use std::process::exit;

/// Why rostconf stops.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error("{0}")]
    Config(#[from] rostfix_config::ConfigError),
    #[error("{0}")]
    BadSetting(String),
    #[error("{0}")]
    Usage(String),
    #[error("write to standard output: {0}")]
    Output(std::io::Error),
}

fn main() {
    // `rostconf import ...` has its own arguments (import.rs).
    if std::env::args().nth(1).as_deref() == Some("import") {
        exit(import::main(&std::env::args().skip(2).collect::<Vec<_>>()));
    }
    let options = options_or_exit(
        args::parse_args(std::env::args().skip(1)),
        "rostconf",
        help::HELP,
        help::USAGE,
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = run(&options, &mut out).and_then(|()| out.flush().map_err(Fatal::Output));
    match result {
        Ok(()) => exit(0),
        Err(Fatal::Usage(message)) => {
            usage_exit("rostconf", &ArgsError::BadArgument(message), help::USAGE)
        }
        // A closed pipe (`rostconf | head`) is not worth a message.
        Err(Fatal::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => exit(0),
        Err(error) => {
            eprintln!("rostconf: fatal: {error}");
            exit(1);
        }
    }
}

/// One name per line.
fn list(out: &mut impl Write, names: &[&str]) -> Result<(), Fatal> {
    for n in names {
        writeln!(out, "{n}").map_err(Fatal::Output)?;
    }
    Ok(())
}

/// Does what the options ask, in the configuration directory they select.
fn run(options: &Options, out: &mut impl Write) -> Result<(), Fatal> {
    let dir = rostfix_config::config_dir(options.config_dir.as_deref());
    match options.mode {
        Mode::Show => show::show(options, &dir, out),
        Mode::Edit => edit::set(&dir, &options.args),
        Mode::Remove => edit::remove(&dir, &options.args),
        Mode::CommentOut => edit::comment_out(&dir, &options.args),
        Mode::MasterShow => master::show_folded(&dir, &options.args, options.fold, out),
        Mode::MasterCommentOut => master::comment_out(&dir, &options.args),
        Mode::FieldShow => fields::show_fields(&dir, &options.args, out),
        Mode::FieldEdit => fields::edit_fields(&dir, &options.args),
        Mode::ParamShow => fields::show_params(&dir, &options.args, out),
        Mode::ParamEdit => fields::edit_params(&dir, &options.args, false),
        Mode::ParamRemove => fields::edit_params(&dir, &options.args, true),
        Mode::LockTypes => list(out, info::LOCK_TYPES),
        Mode::MapTypes => list(out, &info::map_types()),
        Mode::SaslServerTypes => list(out, info::SASL_SERVER_TYPES),
        Mode::SaslClientTypes => list(out, info::SASL_CLIENT_TYPES),
        Mode::MasterEdit => master::edit(&dir, &options.args),
        Mode::MasterRemove => master::remove(&dir, &options.args),
    }
}
