//! Command-line parsing: postcat's -b, -e, -h (sections), -q (operands are queue ids),
//! -c config_dir and -v; at least one operand.

use rostfix_config::getopt::{Getopt, GetoptError, Opt, Ordering};
use std::path::PathBuf;

/// Which parts of a queue file to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sections {
    pub envelope: bool,
    pub header: bool,
    pub body: bool,
}

impl Sections {
    /// All three: postcat then introduces each section with a marker line.
    pub fn all(&self) -> bool {
        self.envelope && self.header && self.body
    }
}

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_dir: Option<PathBuf>,
    pub sections: Sections,
    /// -q: the operands are queue ids, not paths.
    pub by_id: bool,
    pub operands: Vec<String>,
}

/// The command line asked for --help, or for work.
pub type Command = rostfix_config::getopt::Command<Options>;

/// Why the command line was refused (usage error, exit 64).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error(transparent)]
    Getopt(#[from] GetoptError),
    #[error("no queue file or queue id given (reading standard input is not supported)")]
    NoOperand,
}

/// Parses the arguments after the program name (options may follow operands).
pub fn parse_args<I: IntoIterator<Item = String>>(argv: I) -> Result<Command, ArgsError> {
    let mut config_dir = None;
    let (mut envelope, mut header, mut body, mut by_id) = (false, false, false, false);
    let mut operands = Vec::new();
    for opt in Getopt::new("bc:ehqv", argv, Ordering::Permute) {
        match opt? {
            Opt::Long(word) if word == "--help" => return Ok(Command::Help),
            Opt::Long(word) => return Err(GetoptError::UnknownLong(word).into()),
            Opt::Operand(word) => operands.push(word),
            Opt::Flag('b') => body = true,
            Opt::Flag('e') => envelope = true,
            Opt::Flag('h') => header = true,
            Opt::Flag('q') => by_id = true,
            Opt::Flag('v') => {}
            Opt::Value('c', dir) => config_dir = Some(PathBuf::from(dir)),
            Opt::Flag(other) | Opt::Value(other, _) => {
                return Err(GetoptError::Unknown(other).into())
            }
        }
    }
    if operands.is_empty() {
        return Err(ArgsError::NoOperand);
    }
    // None of -e/-h/-b means all of them, as with postcat.
    let none = !(envelope || header || body);
    Ok(Command::Run(Options {
        config_dir,
        sections: Sections {
            envelope: envelope || none,
            header: header || none,
            body: body || none,
        },
        by_id,
        operands,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(words: &[&str]) -> Result<Options, ArgsError> {
        match parse_args(words.iter().map(|w| w.to_string()))? {
            Command::Run(options) => Ok(options),
            Command::Help => panic!("unexpected --help"),
        }
    }

    #[test]
    fn no_section_flag_means_all() {
        let o = run(&["-q", "ABC123"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(o.sections.all() && o.by_id);
        assert_eq!(o.operands, ["ABC123"]);
    }

    #[test]
    fn clustered_sections_select_only_those() {
        let o = run(&["-bh", "-c", "/etc/x", "file"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            o.sections,
            Sections {
                envelope: false,
                header: true,
                body: true
            }
        );
        assert_eq!(o.config_dir, Some(PathBuf::from("/etc/x")));
        assert!(!o.by_id);
    }

    #[test]
    fn refuses_no_operand_and_unknown_letters() {
        assert_eq!(run(&["-q"]), Err(ArgsError::NoOperand));
        assert_eq!(
            run(&["-o", "f"]),
            Err(ArgsError::Getopt(GetoptError::Unknown('o')))
        );
    }
}
