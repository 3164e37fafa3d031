//! Command-line parsing: postsuper's -d, -h, -H, -r, -e and -f (each repeatable, each
//! taking a queue id, `ALL` or `-` for ids on standard input), the flags -s (repair)
//! and -p (purge temporary files), then optional queue names. Without any operation,
//! -s and -p are done, as postsuper does. `-S list|add|remove` works on the
//! suppression list instead; its operands are addresses, and it takes no other
//! operation.

use rostfix_config::getopt::{Getopt, GetoptError, Opt, Ordering};
use rostfix_queue::QueueName;
use std::path::PathBuf;

/// What to do with the selected messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// -d: delete.
    Delete,
    /// -h: put on hold.
    Hold,
    /// -H: release from hold.
    Release,
    /// -r: requeue (back to incoming/, resolved again).
    Requeue,
    /// -e: mark force-expired (qmgr bounces it at its next attempt).
    Expire,
    /// -f: mark force-expired and ask qmgr to attempt it now.
    ExpireNow,
}

/// Which messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Id(String),
    /// `ALL`: every message in the queues concerned.
    All,
    /// `-`: queue ids read from standard input, one per line.
    Stdin,
}

/// One -d/-h/-H option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub action: Action,
    pub target: Target,
}

/// `-S`: a change to, or the listing of, the suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuppressCmd {
    List,
    Add(Vec<String>),
    Remove(Vec<String>),
}

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_dir: Option<PathBuf>,
    /// In command-line order.
    pub operations: Vec<Operation>,
    /// Queue directory operands: limit the operations to these queues.
    pub queues: Vec<QueueName>,
    /// -s: repair queue file names, owners and modes.
    pub repair: bool,
    /// -p: remove stale temporary files.
    pub purge: bool,
    /// -S: the suppression list instead of the queue.
    pub suppress: Option<SuppressCmd>,
}

/// The command line asked for --help, or for work.
pub type Command = rostfix_config::getopt::Command<Options>;

/// Why the command line was refused (usage error, exit 64).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error(transparent)]
    Getopt(#[from] GetoptError),
    #[error("one of -d, -h, -H, -r, -e, -f, -s, -p is required")]
    NoOperation,
    #[error("invalid queue name '{0}'")]
    BadQueue(String),
    #[error("standard input can be read only once ('-' given twice)")]
    StdinTwice,
    #[error("-S takes list, add or remove, not '{0}'")]
    BadSuppressCommand(String),
    #[error("-S {0} needs at least one address")]
    NoAddress(&'static str),
    #[error("-S list takes no address")]
    ListWithAddress,
    #[error("-S cannot be combined with other operations")]
    SuppressMixed,
}

/// Parses the arguments after the program name. Options may follow operands, as with
/// GNU getopt; `--` ends the options.
pub fn parse_args<I: IntoIterator<Item = String>>(argv: I) -> Result<Command, ArgsError> {
    let mut config_dir = None;
    let mut operations = Vec::new();
    let mut queues = Vec::new();
    let (mut repair, mut purge, mut any_flag) = (false, false, false);
    let mut suppress_word: Option<String> = None;
    let mut operands = Vec::new();
    for opt in Getopt::new("c:d:h:H:r:e:f:spvS:", argv, Ordering::Permute) {
        let (letter, value) = match opt? {
            Opt::Long(word) if word == "--help" => return Ok(Command::Help),
            Opt::Long(word) => return Err(GetoptError::UnknownLong(word).into()),
            Opt::Operand(word) => {
                operands.push(word);
                continue;
            }
            Opt::Value('S', word) => {
                if suppress_word.is_some() {
                    return Err(ArgsError::SuppressMixed);
                }
                suppress_word = Some(word);
                continue;
            }
            Opt::Flag('v') => continue,
            Opt::Flag('s') => {
                (repair, any_flag) = (true, true);
                continue;
            }
            Opt::Flag('p') => {
                (purge, any_flag) = (true, true);
                continue;
            }
            Opt::Flag(other) => return Err(GetoptError::Unknown(other).into()),
            Opt::Value(letter, value) => (letter, value),
        };
        let action = match letter {
            'c' => {
                config_dir = Some(PathBuf::from(value));
                continue;
            }
            'd' => Action::Delete,
            'h' => Action::Hold,
            'H' => Action::Release,
            'r' => Action::Requeue,
            'e' => Action::Expire,
            'f' => Action::ExpireNow,
            other => return Err(GetoptError::Unknown(other).into()),
        };
        let target = match value.as_str() {
            "ALL" => Target::All,
            "-" => Target::Stdin,
            _ => Target::Id(value),
        };
        if target == Target::Stdin
            && operations
                .iter()
                .any(|o: &Operation| o.target == Target::Stdin)
        {
            return Err(ArgsError::StdinTwice);
        }
        operations.push(Operation { action, target });
    }
    if let Some(word) = suppress_word {
        if !operations.is_empty() || any_flag {
            return Err(ArgsError::SuppressMixed);
        }
        let cmd = match word.as_str() {
            "list" if operands.is_empty() => SuppressCmd::List,
            "list" => return Err(ArgsError::ListWithAddress),
            "add" if operands.is_empty() => return Err(ArgsError::NoAddress("add")),
            "add" => SuppressCmd::Add(operands),
            "remove" if operands.is_empty() => return Err(ArgsError::NoAddress("remove")),
            "remove" => SuppressCmd::Remove(operands),
            other => return Err(ArgsError::BadSuppressCommand(other.to_string())),
        };
        return Ok(Command::Run(Options {
            config_dir,
            operations,
            queues,
            repair,
            purge,
            suppress: Some(cmd),
        }));
    }
    for word in operands {
        queues.push(QueueName::parse(&word).ok_or(ArgsError::BadQueue(word.clone()))?);
    }
    if operations.is_empty() && !any_flag {
        if !queues.is_empty() {
            return Err(ArgsError::NoOperation);
        }
        // Bare `rostsuper`: structure check and purge, like postsuper.
        (repair, purge) = (true, true);
    }
    Ok(Command::Run(Options {
        config_dir,
        operations,
        queues,
        repair,
        purge,
        suppress: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, ArgsError> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    fn op(action: Action, target: Target) -> Operation {
        Operation { action, target }
    }

    #[test]
    fn operations_in_order_with_queues() {
        let got = parse(&[
            "-c", "/etc/x", "-d", "ABCDEF1", "-dALL", "-h", "-", "-H", "ALL", "deferred", "hold",
        ]);
        assert_eq!(
            got,
            Ok(Command::Run(Options {
                config_dir: Some("/etc/x".into()),
                operations: vec![
                    op(Action::Delete, Target::Id("ABCDEF1".into())),
                    op(Action::Delete, Target::All),
                    op(Action::Hold, Target::Stdin),
                    op(Action::Release, Target::All),
                ],
                queues: vec![QueueName::Deferred, QueueName::Hold],
                repair: false,
                purge: false,
                suppress: None,
            }))
        );
    }

    #[test]
    fn new_operations_and_flags() {
        let Ok(Command::Run(o)) = parse(&["-r", "ALL", "-eABCDEF1", "-f", "-", "-sp"]) else {
            panic!()
        };
        assert_eq!(
            o.operations,
            vec![
                op(Action::Requeue, Target::All),
                op(Action::Expire, Target::Id("ABCDEF1".into())),
                op(Action::ExpireNow, Target::Stdin),
            ]
        );
        assert!(o.repair && o.purge);
        let Ok(Command::Run(o)) = parse(&[]) else {
            panic!()
        };
        assert!(o.repair && o.purge && o.operations.is_empty());
        let Ok(Command::Run(o)) = parse(&["-p"]) else {
            panic!()
        };
        assert!(o.purge && !o.repair);
    }

    #[test]
    fn ids_are_passed_through_for_later_validation() {
        // postsuper warns about a bad id and goes on; parsing keeps it.
        assert!(
            matches!(parse(&["-d", "bogus"]), Ok(Command::Run(o)) if o.operations[0].target == Target::Id("bogus".into()))
        );
    }

    #[test]
    fn suppression_commands() {
        let cmd = |args: &[&str]| match parse(args) {
            Ok(Command::Run(o)) => Ok(o.suppress),
            Ok(Command::Help) => panic!("help"),
            Err(e) => Err(e),
        };
        assert_eq!(cmd(&["-S", "list"]), Ok(Some(SuppressCmd::List)));
        assert_eq!(
            cmd(&["-S", "add", "a@x", "b@y"]),
            Ok(Some(SuppressCmd::Add(vec!["a@x".into(), "b@y".into()])))
        );
        assert_eq!(
            cmd(&["a@x", "-Sremove"]),
            Ok(Some(SuppressCmd::Remove(vec!["a@x".into()])))
        );
        assert_eq!(cmd(&["-S", "add"]), Err(ArgsError::NoAddress("add")));
        assert_eq!(cmd(&["-S", "list", "a@x"]), Err(ArgsError::ListWithAddress));
        assert_eq!(
            cmd(&["-S", "drop", "a@x"]),
            Err(ArgsError::BadSuppressCommand("drop".into()))
        );
        assert_eq!(
            cmd(&["-S", "list", "-d", "ALL"]),
            Err(ArgsError::SuppressMixed)
        );
        assert_eq!(
            cmd(&["-S", "list", "-S", "list"]),
            Err(ArgsError::SuppressMixed)
        );
        assert_eq!(cmd(&["-S"]), Err(GetoptError::MissingValue('S').into()));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(&["deferred"]), Err(ArgsError::NoOperation));
        assert_eq!(parse(&["-d"]), Err(GetoptError::MissingValue('d').into()));
        assert_eq!(parse(&["-x"]), Err(GetoptError::Unknown('x').into()));
        assert_eq!(
            parse(&["-d", "ALL", "nosuch"]),
            Err(ArgsError::BadQueue("nosuch".into()))
        );
        assert_eq!(parse(&["-d", "-", "-h", "-"]), Err(ArgsError::StdinTwice));
        assert_eq!(
            parse(&["--delete"]),
            Err(GetoptError::UnknownLong("--delete".into()).into())
        );
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
    }
}
