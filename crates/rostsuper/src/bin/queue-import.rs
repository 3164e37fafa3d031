//! queue-import: writes one message straight into Rostfix's queue with the envelope
//! it is given, for requeue-postfix (packaging/requeue-postfix), which reads the
//! messages left in Postfix's queue with Postfix's postcat. Unlike sendmail, it keeps
//! what the message had in Postfix: its arrival time (so maximal_queue_lifetime
//! counts from the original arrival, not from the switch) and its hold state (-H puts
//! it in hold/, where rostsuper -H releases it). The message already went through
//! Postfix's cleanup (headers, canonical and virtual alias rewriting), so it is not
//! rewritten again: it is marked alias_expanded, as qmgr marks its own.
//!
//!   queue-import [-c config_dir] [-H] -t ARRIVAL_SECONDS -f SENDER RECIPIENT...
//!
//! The content (header, empty line, body) is read from standard input. Root only;
//! the file is written as mail_owner. Prints the new queue id.

#![forbid(unsafe_code)]

use rostfix_config::getopt::{usage_exit, Getopt, GetoptError, Opt, Ordering};
use rostfix_config::{config_dir, MainCf};
use rostfix_queue::{Envelope, QueueError, QueueName, QueueWriter, Recipient};
use std::io::Read;
use std::path::PathBuf;
use std::process::exit;

const USAGE: &str =
    "usage: queue-import [-c config_dir] [-H] -t arrival_seconds -f sender recipient...";

/// sysexits.h codes.
const EX_TEMPFAIL: i32 = 75;
const EX_NOPERM: i32 = 77;

/// Why nothing was queued.
#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error("{0}")]
    Config(#[from] rostfix_config::ConfigError),
    #[error("use of this command is reserved for the superuser")]
    NotRoot,
    #[error("unknown mail_owner user {0}")]
    UnknownOwner(String),
    #[error("{0}")]
    Drop(#[from] rostfix_privilege::UgidError),
    #[error("read standard input: {0}")]
    Stdin(std::io::Error),
    #[error("{0}")]
    Queue(#[from] QueueError),
}

/// Why the command line was refused.
#[derive(Debug, thiserror::Error)]
enum ArgsError {
    #[error(transparent)]
    Getopt(#[from] GetoptError),
    #[error("-t and -f and at least one recipient are required")]
    Missing,
    #[error("invalid arrival time '{0}' (seconds since the epoch)")]
    BadTime(String),
}

struct Args {
    config_dir: Option<PathBuf>,
    hold: bool,
    arrival_secs: i64,
    sender: String,
    recipients: Vec<String>,
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, ArgsError> {
    let (mut config, mut hold, mut time, mut sender) = (None, false, None, None);
    let mut recipients = Vec::new();
    for opt in Getopt::new("c:f:t:H", argv, Ordering::StopAtOperand) {
        match opt? {
            Opt::Value('c', dir) => config = Some(PathBuf::from(dir)),
            Opt::Value('f', from) => sender = Some(from),
            Opt::Value('t', secs) => {
                time = Some(secs.parse::<i64>().map_err(|_| ArgsError::BadTime(secs))?)
            }
            Opt::Flag('H') => hold = true,
            Opt::Operand(rcpt) => recipients.push(rcpt),
            Opt::Long(word) => return Err(GetoptError::UnknownLong(word).into()),
            Opt::Flag(other) | Opt::Value(other, _) => {
                return Err(GetoptError::Unknown(other).into())
            }
        }
    }
    match (time, sender) {
        (Some(arrival_secs), Some(sender)) if !recipients.is_empty() => Ok(Args {
            config_dir: config,
            hold,
            arrival_secs,
            // Postfix's postcat prints the null sender as empty; sendmail users write <>.
            sender: if sender == "<>" {
                String::new()
            } else {
                sender
            },
            recipients,
        }),
        _ => Err(ArgsError::Missing),
    }
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => usage_exit("queue-import", &error, USAGE),
    };
    match run(&args) {
        Ok(id) => println!("{id}"),
        Err(error) => {
            eprintln!("queue-import: fatal: {error}");
            exit(match error {
                ImportError::NotRoot => EX_NOPERM,
                _ => EX_TEMPFAIL,
            });
        }
    }
}

fn run(args: &Args) -> Result<String, ImportError> {
    if !nix::unistd::getuid().is_root() {
        return Err(ImportError::NotRoot);
    }
    let cf = MainCf::load(&config_dir(args.config_dir.as_deref()))?;
    let root = PathBuf::from(cf.get("queue_directory"));
    let owner_name = cf.get("mail_owner");
    let owner = match nix::unistd::User::from_name(&owner_name) {
        Ok(Some(user)) if !user.uid.is_root() => rostfix_privilege::Ids {
            uid: user.uid,
            gid: user.gid,
        },
        _ => return Err(ImportError::UnknownOwner(owner_name)),
    };
    let mut content = Vec::new();
    std::io::stdin()
        .read_to_end(&mut content)
        .map_err(ImportError::Stdin)?;
    // The queue is mail_owner's: its files are made as mail_owner, so qmgr may
    // recycle them, and nothing here runs with root's rights inside its directories.
    rostfix_privilege::drop_to(owner)?;
    let envelope = Envelope {
        sender: args.sender.clone(),
        arrival_us: args.arrival_secs.saturating_mul(1_000_000),
        attrs: vec![("alias_expanded".into(), "1".into())],
        recipients: args
            .recipients
            .iter()
            .map(|address| Recipient {
                address: address.clone(),
                orig_address: address.clone(),
                ..Recipient::default()
            })
            .collect(),
    };
    let mut writer = QueueWriter::create(&root, QueueName::Incoming, &envelope)?;
    writer.write_content(&content)?;
    let into = args.hold.then_some(QueueName::Hold);
    let id = writer.commit_to(into, None)?;
    if !args.hold {
        // Not running is fine: qmgr scans incoming/ when it starts.
        let _ = rostfix_proto::wake_qmgr(&root);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Args, ArgsError> {
        parse_args(words.iter().map(|w| w.to_string()))
    }

    #[test]
    fn takes_envelope_and_hold() {
        let args = parse(&["-H", "-t", "1606123512", "-f", "<>", "--", "a@x", "-b@y"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(args.hold);
        assert_eq!(args.arrival_secs, 1_606_123_512);
        assert_eq!(args.sender, "");
        assert_eq!(args.recipients, ["a@x", "-b@y"]);
    }

    #[test]
    fn refuses_incomplete_or_bad_time() {
        assert!(matches!(
            parse(&["-t", "1", "-f", "s"]),
            Err(ArgsError::Missing)
        ));
        assert!(matches!(
            parse(&["-t", "yesterday", "-f", "s", "r"]),
            Err(ArgsError::BadTime(_))
        ));
    }
}
