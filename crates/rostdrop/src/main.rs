//! rostdrop: the set-group-id (setgid_group) helper that writes locally submitted mail
//! into `maildrop/`, like Postfix's postdrop. Its caller is treated as hostile: see
//! rostfix_privilege (start-up hygiene, configuration directory), hardening.rs
//! (signals), validate.rs (envelope) and maildrop.rs (the write itself).

#![deny(unsafe_code)]

mod args;
mod hardening;
mod help;
mod maildrop;
mod sysexits;
mod validate;

use args::DropArgs;
use rostfix_config::getopt::options_or_exit;
use rostfix_config::{MainCf, DEFAULT_CONFIG_DIR};
use rostfix_privilege::config_dir::{choose_config_dir, running_set_id};
use rostfix_privilege::hygiene::{harden, SavedEnvironment};
use std::path::Path;
use std::process::exit;
use std::time::{SystemTime, UNIX_EPOCH};
use sysexits::*;

fn fatal(code: i32, msg: impl std::fmt::Display) -> ! {
    eprintln!("rostdrop: fatal: {msg}");
    exit(code);
}

fn main() {
    // Files we create stay private to us until pickup reads them: umask 077.
    let saved_env = harden(0o077).unwrap_or_else(|e| fatal(EX_TEMPFAIL, e));

    let mut argv = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => argv.push(s),
            Err(_) => fatal(EX_DATAERR, "argument is not valid UTF-8"),
        }
    }
    let args = options_or_exit(args::parse_args(&argv), "rostdrop", help::HELP, help::USAGE);
    run(&args, &saved_env)
}

fn run(args: &DropArgs, saved_env: &SavedEnvironment) -> ! {
    let uid = nix::unistd::getuid().as_raw();
    // Root, or a rostdrop not installed set-group-id (a developer's `make run`) whose
    // caller could write the files itself, may name any directory.
    let trusted = uid == 0 || !running_set_id();
    let config_dir = choose_config_dir(
        args.config_dir.as_deref(),
        saved_env.get("MAIL_CONFIG").map(|v| v.as_os_str()),
        trusted,
        Path::new(DEFAULT_CONFIG_DIR),
    )
    .unwrap_or_else(|e| fatal(EX_NOPERM, e));
    let config = MainCf::load(&config_dir).unwrap_or_else(|e| fatal(EX_CONFIG, e));
    saved_env.import(&config.get_list("import_environment"));
    if let Err(e) = validate::validate_envelope(&args.sender, &args.recipients) {
        fatal(EX_DATAERR, e);
    }
    if let Err(e) = validate::validate_dsn(
        args.notify.as_deref(),
        args.ret.as_deref(),
        args.envid.as_deref(),
        args.body.as_deref(),
    ) {
        fatal(EX_DATAERR, e);
    }
    if let Some(delims) = &args.verp {
        if args.sender.is_empty() {
            fatal(
                rostfix_config::getopt::EX_USAGE,
                "-X (VERP) requires a non-null sender address",
            );
        }
        let filter = config.get("verp_delimiter_filter");
        if let Err(e) = rostfix_queue::verify_delimiters(delims, &filter) {
            fatal(
                rostfix_config::getopt::EX_USAGE,
                format!("-X {}: {e}", delims.escape_default()),
            );
        }
    }
    let dsn = maildrop::DsnSettings {
        notify: args.notify.clone(),
        ret: args.ret.clone(),
        envid: args.envid.clone(),
        body: args.body.clone(),
        verp: args.verp.clone(),
    };
    let queue_directory = config.get("queue_directory");
    if let Err(e) = std::env::set_current_dir(&queue_directory) {
        fatal(EX_TEMPFAIL, format!("chdir {queue_directory}: {e}"));
    }
    let limit = u64::try_from(config.get_int("message_size_limit")).unwrap_or(0);
    let arrival_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let envelope = maildrop::build_envelope(&args.sender, &args.recipients, uid, arrival_us, &dsn);

    hardening::defer_signals();
    let stdin = std::io::stdin().lock();
    if let Err(e) = maildrop::write_maildrop(
        Path::new("."),
        &envelope,
        stdin,
        limit,
        hardening::interrupted,
    ) {
        fatal(e.exit_code(), e);
    }
    // The message is safe in maildrop/; a lost wake-up only delays it to pickup's
    // next periodic scan.
    if let Err(e) = rostfix_proto::wake_pickup(Path::new(".")) {
        eprintln!("rostdrop: warning: {e}");
    }
    exit(0);
}
