//! rostcat: the postcat work-alike. Prints a queue file's envelope (arrival time,
//! sender, attributes, recipients), header and body; with -q the operands are queue
//! ids, looked for in every queue of queue_directory.

#![forbid(unsafe_code)]

mod args;
mod help;
mod show;
mod utctime;

use args::Options;
use rostfix_config::getopt::options_or_exit;
use rostfix_config::{config_dir, MainCf};
use rostfix_queue::{is_valid_queue_id, QueueError, QueueFile, QueueName};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::exit;

/// sysexits' EX_CONFIG.
const EX_CONFIG: i32 = 78;

/// Where -q looks, in postcat's order.
const SEARCH_ORDER: [QueueName; 6] = [
    QueueName::Incoming,
    QueueName::Active,
    QueueName::Deferred,
    QueueName::Hold,
    QueueName::Maildrop,
    QueueName::Corrupt,
];

/// Why one operand was not shown.
#[derive(Debug, thiserror::Error)]
enum ShowError {
    #[error("{0}: invalid queue id")]
    BadId(String),
    #[error("{0}: not found in any queue of {1}")]
    NotQueued(String, PathBuf),
    #[error("{0}")]
    Queue(#[from] QueueError),
    #[error("write standard output: {0}")]
    Output(std::io::Error),
}

fn main() {
    let options = options_or_exit(
        args::parse_args(std::env::args().skip(1)),
        "rostcat",
        help::HELP,
        help::USAGE,
    );
    // The queue directory matters only for -q; without it, paths are taken as given
    // and a broken main.cf must not stop a look at a file.
    let root = if options.by_id {
        match MainCf::load(&config_dir(options.config_dir.as_deref())) {
            Ok(cf) => PathBuf::from(cf.get("queue_directory")),
            Err(error) => {
                eprintln!("rostcat: fatal: {error}");
                exit(EX_CONFIG);
            }
        }
    } else {
        PathBuf::new()
    };
    let mut status = 0;
    for operand in &options.operands {
        if let Err(error) = show(&options, &root, operand) {
            eprintln!("rostcat: warning: {error}");
            status = 1;
        }
    }
    exit(status);
}

/// Prints one file (or the file of one queue id).
fn show(options: &Options, root: &Path, operand: &str) -> Result<(), ShowError> {
    let (file, label) = if options.by_id {
        let file = find(root, operand)?;
        let label = format!("{}/{operand}", file.queue);
        (file, label)
    } else {
        let path = Path::new(operand);
        // The directory a file is in names its queue; the label is the path as given.
        let queue = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|name| QueueName::parse(&name.to_string_lossy()))
            .unwrap_or(QueueName::Incoming);
        (QueueFile::open_path(path, queue)?, operand.to_string())
    };
    let content = file.read_content()?;
    let text = show::render(&label, &file.envelope, &content, options.sections);
    std::io::stdout()
        .lock()
        .write_all(&text)
        .map_err(ShowError::Output)
}

/// The queue file of `id`: the first queue, in postcat's order, that has it.
fn find(root: &Path, id: &str) -> Result<QueueFile, ShowError> {
    // Checked before any path is built: an id is hex only, never `../`.
    if !is_valid_queue_id(id) {
        return Err(ShowError::BadId(id.escape_debug().to_string()));
    }
    for queue in SEARCH_ORDER {
        match QueueFile::open(root, queue, id) {
            Ok(file) => return Ok(file),
            Err(QueueError::NotFound(_)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ShowError::NotQueued(id.to_string(), root.to_path_buf()))
}
