//! master: supervises every Rostfix service (see args.rs for the manual page and
//! docs/ARCHITECTURE.md, "master and its children", for the conventions).

#![deny(unsafe_code)]

mod args;
mod book;
mod child_args;
mod daemon;
mod endpoint;
mod error;
mod listen;
mod pidfile;
mod plan;
mod settings;
mod spawn;
mod stress;
mod supervisor;
mod wakeup;

use error::MasterError;
use std::path::{Path, PathBuf};

/// EX_USAGE.
const EXIT_USAGE: i32 = 64;

/// `master -t`: 0 when no master holds the pid lock, 1 when one does (or on error).
fn test_running(config_dir: &Path) -> i32 {
    let main = match rostfix_config::MainCf::load(config_dir) {
        Ok(main) => main,
        Err(e) => {
            eprintln!("master: fatal: {e}");
            return 1;
        }
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let queue = settings::absolute(Path::new(&main.get("queue_directory")), &cwd);
    match pidfile::lock_holder(&queue.join("pid").join("master.pid")) {
        Ok(None) => 0,
        Ok(Some(_)) => 1,
        Err(e) => {
            eprintln!("master: fatal: {}: {e}", queue.display());
            1
        }
    }
}

fn main() {
    let options = match args::parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("master: {message}\n{}", args::USAGE);
            std::process::exit(EXIT_USAGE);
        }
    };
    if options.help {
        print!("{}", args::HELP);
        return;
    }
    let dir = rostfix_config::config_dir(options.config_dir.as_deref());
    // Children get MAIL_CONFIG from us, and may chdir: the path must be absolute.
    let config_dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    if options.test_running {
        std::process::exit(test_running(&config_dir));
    }
    let ready = if options.foreground {
        None
    } else {
        match daemon::daemonize() {
            Ok(pipe) => Some(pipe),
            Err(e) => {
                eprintln!("master: fatal: fork: {e}");
                std::process::exit(1);
            }
        }
    };
    match supervisor::Master::start(&config_dir, options.verbose) {
        Ok(master) => {
            if let Some(pipe) = ready {
                pipe.ready();
            }
            std::process::exit(master.run());
        }
        Err(e) => {
            rostfix_maillog::fatal!("{e}");
            match ready {
                Some(pipe) => pipe.failed(&e.to_string()),
                None => eprintln!("master: fatal: {e}"),
            }
            std::process::exit(1);
        }
    }
}
