//! rostsuper: the postsuper work-alike. Deletes queued messages (with their logs), puts
//! them on hold and releases them, requeues and expires them, repairs queue file names
//! and permissions and purges stale temporary files, reporting each like postsuper
//! does. Root or mail_owner only. After a change qmgr is woken by a trigger so it
//! acts on it at once. `-S` lists and edits the suppression list (suppress.rs).

#![forbid(unsafe_code)]

mod args;
mod help;
mod ops;
mod owners;
mod repair;
mod suppress;

use args::{Action, Operation, Options, Target};
use rostfix_config::getopt::options_or_exit;
use rostfix_config::{config_dir, MainCf};
use rostfix_proto::{Trigger, QMGR_SOCKET};
use rostfix_queue::{is_valid_queue_id, QueueName};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::exit;

/// sysexits.h codes.
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
    #[error("unknown mail_owner user {0}")]
    UnknownOwner(String),
    #[error("mail_owner {0} must not be root")]
    RootOwner(String),
    #[error("{0}")]
    Drop(#[from] rostfix_privilege::UgidError),
    #[error("suppression list: {0}")]
    Suppress(#[from] rostfix_queue::SuppressError),
}

impl Fatal {
    fn exit_code(&self) -> i32 {
        match self {
            Fatal::Config(_) => EX_CONFIG,
            Fatal::NotPrivileged(_) => EX_NOPERM,
            Fatal::Stdin(_) | Fatal::Drop(_) | Fatal::Suppress(_) => EX_TEMPFAIL,
            Fatal::UnknownOwner(_) | Fatal::RootOwner(_) => EX_CONFIG,
        }
    }
}

fn main() {
    let options = options_or_exit(
        args::parse_args(std::env::args().skip(1)),
        "rostsuper",
        help::HELP,
        help::USAGE,
    );
    match run(&options) {
        Ok(true) => exit(0),
        Ok(false) => exit(EX_TEMPFAIL),
        Err(error) => {
            eprintln!("rostsuper: fatal: {error}");
            exit(error.exit_code());
        }
    }
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

/// mail_owner's ids.
fn mail_owner(cf: &MainCf) -> Result<rostfix_privilege::Ids, Fatal> {
    let name = cf.get("mail_owner");
    match nix::unistd::User::from_name(&name) {
        Ok(Some(user)) if user.uid.is_root() => Err(Fatal::RootOwner(name)),
        Ok(Some(user)) => Ok(rostfix_privilege::Ids {
            uid: user.uid,
            gid: user.gid,
        }),
        _ => Err(Fatal::UnknownOwner(name)),
    }
}

/// Sends the per-message lines to the mail log as well, as postsuper does. Only a log
/// file or a reachable /dev/log: the maillog crate's stderr fallback would print every
/// line twice.
fn init_maillog(cf: &MainCf) {
    let target = match rostfix_maillog::target_for(
        &cf.get("maillog_file"),
        &cf.get("rostfix_maillog_format"),
    ) {
        Ok(rostfix_maillog::LogTarget::Syslog) if !Path::new("/dev/log").exists() => return,
        Ok(target) => target,
        Err(e) => {
            eprintln!("rostsuper: warning: cannot log to the mail log: {e}");
            return;
        }
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
    if let Some(cmd) = &options.suppress {
        // As mail_owner, so the list stays mail_owner's and no planted link in the
        // queue directory borrows root's rights.
        if nix::unistd::geteuid().is_root() {
            rostfix_privilege::drop_to(mail_owner(&cf)?)?;
        }
        let expiry =
            i64::try_from(cf.get_time("rostfix_suppression_expiry").as_secs()).unwrap_or(i64::MAX);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let store = rostfix_queue::SuppressionStore::new(&root);
        return Ok(suppress::run(&store, cmd, expiry, now, &report, &warn)?);
    }
    let mut ok = true;
    let repair_queues: Vec<QueueName> = if options.queues.is_empty() {
        repair::REPAIR_QUEUES.to_vec()
    } else {
        options.queues.clone()
    };
    if nix::unistd::geteuid().is_root() {
        // Root's only work: giving files back to mail_owner, through descriptors
        // (owners.rs). Then the rest as mail_owner, as postsuper does: the queue
        // directories are mail_owner's, and a link planted there must not borrow root's
        // rights for a chmod, utime, unlink or trigger.
        let owner = mail_owner(&cf)?;
        if options.repair {
            ok &= report_all(&owners::fix_owners(
                &root,
                &repair_queues,
                owner.uid.as_raw(),
                owner.gid.as_raw(),
            ));
        }
        rostfix_privilege::drop_to(owner)?;
    }
    if options.purge {
        let mut rep = repair::Report::default();
        let n = repair::purge(&root, std::time::SystemTime::now(), &mut rep);
        ok &= report_all(&rep);
        if n > 0 {
            report(&format!(
                "Deleted: {n} temporary file{}",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    if options.repair {
        ok &= report_all(&repair::repair(&root, &repair_queues));
    }
    let mut wake = options.repair;
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
        let acted = run_operation(&root, op, &ids, &queues, &mut ok);
        match op.action {
            // postsuper -f: expire, then deliver (that is, bounce) now.
            Action::ExpireNow => {
                for id in &acted {
                    let t = Trigger::FlushId(id.clone());
                    let _ = rostfix_proto::send_trigger(
                        &root.join(QMGR_SOCKET),
                        &t,
                        rostfix_proto::WAKEUP_TIMEOUT,
                    );
                }
            }
            Action::Requeue | Action::Release => wake |= !acted.is_empty(),
            _ => {}
        }
    }
    if wake {
        // Not running is fine: qmgr scans incoming/ and deferred/ when it starts.
        let _ = rostfix_proto::wake_qmgr(&root);
    }
    Ok(ok)
}

/// Reports a repair/purge pass; false when it had warnings.
fn report_all(rep: &repair::Report) -> bool {
    for l in &rep.lines {
        report(l);
    }
    for w in &rep.warnings {
        warn(w);
    }
    rep.warnings.is_empty()
}

/// Applies one operation to `ids`; returns the ids acted on, clears `ok` on errors.
fn run_operation(
    root: &Path,
    op: &Operation,
    ids: &[String],
    queues: &[QueueName],
    ok: &mut bool,
) -> Vec<String> {
    let (done_text, summary) = ops::wording(op.action);
    let mut acted = Vec::new();
    for id in ids {
        if !is_valid_queue_id(id) {
            warn(&format!("invalid mail queue id: {}", id.escape_debug()));
            continue;
        }
        match ops::apply(root, op.action, id, queues) {
            Ok(true) => {
                report(&format!("{id}: {done_text}"));
                acted.push(id.clone());
            }
            Ok(false) => {}
            Err(e) => {
                warn(&e.to_string());
                *ok = false;
            }
        }
    }
    let count = acted.len();
    if count > 0 {
        report(&format!(
            "{summary}: {count} message{}",
            if count == 1 { "" } else { "s" }
        ));
    }
    acted
}
