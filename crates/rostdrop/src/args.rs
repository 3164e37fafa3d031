//! rostdrop's command line: `rostdrop [-c DIR] [-N NOTIFY] [-R RET] [-V ENVID]
//! [-B BODY] [-X VERP] -f SENDER [--] RCPT...`. Strict: the only caller is sendmail, so anything
//! unexpected is a usage error; the DSN values are checked in validate.rs.

use rostfix_config::getopt::{Getopt, GetoptError, Opt, Ordering};
use std::path::PathBuf;

/// A parsed command line: --help, or what to drop.
pub type Command = rostfix_config::getopt::Command<DropArgs>;

/// What to drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropArgs {
    pub config_dir: Option<PathBuf>,
    pub sender: String,
    pub recipients: Vec<String>,
    /// `-N`: DSN NOTIFY for every recipient.
    pub notify: Option<String>,
    /// `-R`: DSN RET.
    pub ret: Option<String>,
    /// `-V`: DSN ENVID.
    pub envid: Option<String>,
    /// `-B`: body type.
    pub body: Option<String>,
    /// `-X`: the two VERP delimiters (sendmail -XV).
    pub verp: Option<String>,
}

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error(transparent)]
    Getopt(#[from] GetoptError),
    #[error("missing -f sender")]
    NoSender,
    #[error("no recipients specified")]
    NoRecipients,
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Result<Command, ArgsError> {
    let mut config_dir = None;
    let mut sender = None;
    let (mut notify, mut ret, mut envid, mut body, mut verp) = (None, None, None, None, None);
    let mut recipients = Vec::new();
    let words = args.iter().cloned();
    for opt in Getopt::new("c:f:N:R:V:B:X:", words, Ordering::StopAtOperand) {
        match opt? {
            Opt::Long(word) if word == "--help" => return Ok(Command::Help),
            Opt::Long(word) => return Err(GetoptError::UnknownLong(word).into()),
            Opt::Operand(word) => recipients.push(word),
            Opt::Value('c', value) => config_dir = Some(PathBuf::from(value)),
            Opt::Value('f', value) => sender = Some(value),
            Opt::Value('N', value) => notify = Some(value),
            Opt::Value('R', value) => ret = Some(value),
            Opt::Value('V', value) => envid = Some(value),
            Opt::Value('B', value) => body = Some(value),
            Opt::Value('X', value) => verp = Some(value),
            Opt::Value(other, _) | Opt::Flag(other) => {
                return Err(GetoptError::Unknown(other).into())
            }
        }
    }
    let sender = sender.ok_or(ArgsError::NoSender)?;
    if recipients.is_empty() {
        return Err(ArgsError::NoRecipients);
    }
    Ok(Command::Run(DropArgs {
        config_dir,
        sender,
        recipients,
        notify,
        ret,
        envid,
        body,
        verp,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Result<Command, ArgsError> {
        parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn full_form() {
        assert_eq!(
            p(&["-c", "/etc/x", "-f", "joe", "--", "-a@b", "c"]),
            Ok(Command::Run(DropArgs {
                config_dir: Some("/etc/x".into()),
                sender: "joe".into(),
                recipients: vec!["-a@b".into(), "c".into()],
                notify: None,
                ret: None,
                envid: None,
                body: None,
                verp: None,
            }))
        );
    }

    #[test]
    fn dsn_options() {
        let Ok(Command::Run(d)) = p(&[
            "-N", "NEVER", "-RHDRS", "-V", "x1", "-B", "7BIT", "-f", "s", "r",
        ]) else {
            panic!()
        };
        assert_eq!(d.notify.as_deref(), Some("NEVER"));
        assert_eq!(d.ret.as_deref(), Some("HDRS"));
        assert_eq!(d.envid.as_deref(), Some("x1"));
        assert_eq!(d.body.as_deref(), Some("7BIT"));
    }

    #[test]
    fn attached_values_and_null_sender() {
        let Ok(Command::Run(d)) = p(&["-f", "", "--", "r"]) else {
            panic!()
        };
        assert_eq!(d.sender, "");
        let Ok(Command::Run(d)) = p(&["-fjoe", "-c/x", "r"]) else {
            panic!()
        };
        assert_eq!(
            (d.sender.as_str(), d.config_dir),
            ("joe", Some("/x".into()))
        );
    }

    #[test]
    fn errors() {
        assert_eq!(p(&["--", "r"]), Err(ArgsError::NoSender));
        assert_eq!(p(&["-f", "s", "--"]), Err(ArgsError::NoRecipients));
        assert_eq!(p(&["-f"]), Err(GetoptError::MissingValue('f').into()));
        assert_eq!(p(&["-x", "r"]), Err(GetoptError::Unknown('x').into()));
        assert_eq!(p(&["--help"]), Ok(Command::Help));
    }
}
