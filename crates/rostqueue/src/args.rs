//! Command-line parsing: postqueue's options, clustered like getopt (`-vp`, `-c DIR -p`,
//! `-cDIR -p`); operands are refused.

use rostfix_config::getopt::{Getopt, GetoptError, Opt, Ordering};
use std::path::PathBuf;

/// What the command was asked to do (exactly one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// -p: the traditional mailq listing.
    List,
    /// -j: one JSON object per message.
    Json,
    /// -f: flush the queue.
    Flush,
    /// -i ID: deliver one message now.
    FlushId(String),
    /// -s SITE: deliver the deferred mail for one destination now.
    FlushSite(String),
}

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_dir: Option<PathBuf>,
    pub mode: Mode,
}

/// The command line asked for --help, or for work.
pub type Command = rostfix_config::getopt::Command<Options>;

/// Why the command line was refused (usage error, exit 64).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error(transparent)]
    Getopt(#[from] GetoptError),
    #[error("only one of -f, -i, -j, -p, -s may be given")]
    Conflict,
    #[error("one of -f, -i, -j, -p, -s is required")]
    NoMode,
    #[error("unexpected argument '{0}'")]
    Operand(String),
    #[error("invalid queue id '{0}'")]
    BadId(String),
    #[error("invalid site '{0}'")]
    BadSite(String),
}

/// A site is a domain name or `[address]`: printable, no white space, not too long.
fn valid_site(site: &str) -> bool {
    !site.is_empty()
        && site.len() <= 255
        && site
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b))
}

fn set_mode(slot: &mut Option<Mode>, mode: Mode) -> Result<(), ArgsError> {
    if slot.is_some() {
        return Err(ArgsError::Conflict);
    }
    *slot = Some(mode);
    Ok(())
}

/// Parses the arguments after the program name.
pub fn parse_args<I: IntoIterator<Item = String>>(argv: I) -> Result<Command, ArgsError> {
    let mut config_dir = None;
    let mut mode = None;
    for opt in Getopt::new("c:i:s:pjfv", argv, Ordering::Permute) {
        match opt? {
            Opt::Long(word) if word == "--help" => return Ok(Command::Help),
            Opt::Long(word) => return Err(GetoptError::UnknownLong(word).into()),
            Opt::Operand(word) => return Err(ArgsError::Operand(word)),
            Opt::Value('c', dir) => config_dir = Some(PathBuf::from(dir)),
            Opt::Value('s', site) => {
                if !valid_site(&site) {
                    return Err(ArgsError::BadSite(site));
                }
                set_mode(&mut mode, Mode::FlushSite(site))?;
            }
            Opt::Value('i', id) => {
                if !rostfix_queue::is_valid_queue_id(&id) {
                    return Err(ArgsError::BadId(id));
                }
                set_mode(&mut mode, Mode::FlushId(id))?;
            }
            Opt::Flag('p') => set_mode(&mut mode, Mode::List)?,
            Opt::Flag('j') => set_mode(&mut mode, Mode::Json)?,
            Opt::Flag('f') => set_mode(&mut mode, Mode::Flush)?,
            // Verbose logging: accepted for compatibility, nothing more to say.
            Opt::Flag('v') => {}
            Opt::Flag(other) | Opt::Value(other, _) => {
                return Err(GetoptError::Unknown(other).into())
            }
        }
    }
    let mode = mode.ok_or(ArgsError::NoMode)?;
    Ok(Command::Run(Options { config_dir, mode }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, ArgsError> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    fn run(config_dir: Option<&str>, mode: Mode) -> Result<Command, ArgsError> {
        Ok(Command::Run(Options {
            config_dir: config_dir.map(PathBuf::from),
            mode,
        }))
    }

    #[test]
    fn modes() {
        assert_eq!(parse(&["-p"]), run(None, Mode::List));
        assert_eq!(parse(&["-j"]), run(None, Mode::Json));
        assert_eq!(parse(&["-f"]), run(None, Mode::Flush));
        assert_eq!(
            parse(&["-i", "ABCDEF12"]),
            run(None, Mode::FlushId("ABCDEF12".into()))
        );
        assert_eq!(
            parse(&["-iABCDEF12"]),
            run(None, Mode::FlushId("ABCDEF12".into()))
        );
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
    }

    #[test]
    fn config_dir_forms() {
        assert_eq!(
            parse(&["-c", "/etc/x", "-p"]),
            run(Some("/etc/x"), Mode::List)
        );
        assert_eq!(parse(&["-c/etc/x", "-p"]), run(Some("/etc/x"), Mode::List));
        assert_eq!(
            parse(&["-vp", "-c", "/etc/x"]),
            run(Some("/etc/x"), Mode::List)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse(&[]), Err(ArgsError::NoMode));
        assert_eq!(parse(&["-p", "-j"]), Err(ArgsError::Conflict));
        assert_eq!(parse(&["-pf"]), Err(ArgsError::Conflict));
        assert_eq!(parse(&["-x"]), Err(GetoptError::Unknown('x').into()));
        assert_eq!(parse(&["-c"]), Err(GetoptError::MissingValue('c').into()));
        assert_eq!(parse(&["-i"]), Err(GetoptError::MissingValue('i').into()));
        assert_eq!(
            parse(&["-s", "example.com"]),
            run(None, Mode::FlushSite("example.com".into()))
        );
        assert_eq!(parse(&["-s", "a b"]), Err(ArgsError::BadSite("a b".into())));
        assert_eq!(parse(&["-s", "x", "-f"]), Err(ArgsError::Conflict));
        assert_eq!(parse(&["-i", "../x"]), Err(ArgsError::BadId("../x".into())));
        assert_eq!(
            parse(&["-p", "extra"]),
            Err(ArgsError::Operand("extra".into()))
        );
        assert_eq!(
            parse(&["--list"]),
            Err(GetoptError::UnknownLong("--list".into()).into())
        );
    }
}
