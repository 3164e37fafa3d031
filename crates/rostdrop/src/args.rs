//! rostdrop's command line: `rostdrop [-c DIR] [-N NOTIFY] [-R RET] [-V ENVID]
//! [-B BODY] -f SENDER [--] RCPT...`. Strict: the only caller is sendmail, so anything
//! unexpected is a usage error; the DSN values are checked in validate.rs.

use std::path::PathBuf;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Drop(DropArgs),
}

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
}

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("option requires an argument -- '{0}'")]
    MissingValue(char),
    #[error("invalid option -- '{0}'")]
    Unknown(String),
    #[error("missing -f sender")]
    NoSender,
    #[error("no recipients specified")]
    NoRecipients,
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Result<Command, ArgsError> {
    let mut config_dir = None;
    let mut sender = None;
    let (mut notify, mut ret, mut envid, mut body) = (None, None, None, None);
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--help" {
            return Ok(Command::Help);
        }
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let opt = arg[1..].chars().next().unwrap_or('-');
        if !matches!(opt, 'c' | 'f' | 'N' | 'R' | 'V' | 'B') {
            return Err(ArgsError::Unknown(arg.to_string()));
        }
        let value = if arg.len() > 2 {
            arg[2..].to_string()
        } else {
            i += 1;
            args.get(i).cloned().ok_or(ArgsError::MissingValue(opt))?
        };
        match opt {
            'c' => config_dir = Some(PathBuf::from(value)),
            'N' => notify = Some(value),
            'R' => ret = Some(value),
            'V' => envid = Some(value),
            'B' => body = Some(value),
            _ => sender = Some(value),
        }
        i += 1;
    }
    let sender = sender.ok_or(ArgsError::NoSender)?;
    let recipients = args[i.min(args.len())..].to_vec();
    if recipients.is_empty() {
        return Err(ArgsError::NoRecipients);
    }
    Ok(Command::Drop(DropArgs {
        config_dir,
        sender,
        recipients,
        notify,
        ret,
        envid,
        body,
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
            Ok(Command::Drop(DropArgs {
                config_dir: Some("/etc/x".into()),
                sender: "joe".into(),
                recipients: vec!["-a@b".into(), "c".into()],
                notify: None,
                ret: None,
                envid: None,
                body: None,
            }))
        );
    }

    #[test]
    fn dsn_options() {
        let Ok(Command::Drop(d)) = p(&[
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
        let Ok(Command::Drop(d)) = p(&["-f", "", "--", "r"]) else {
            panic!()
        };
        assert_eq!(d.sender, "");
        let Ok(Command::Drop(d)) = p(&["-fjoe", "-c/x", "r"]) else {
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
        assert_eq!(p(&["-f"]), Err(ArgsError::MissingValue('f')));
        assert_eq!(p(&["-x", "r"]), Err(ArgsError::Unknown("-x".into())));
        assert_eq!(p(&["--help"]), Ok(Command::Help));
    }
}
