//! The master.cf arguments of a pipe service, as Postfix's pipe(8) reads them:
//! `flags=... user=name[:group] size=N eol=\n directory=/path null_sender=...` and,
//! last, `argv=command arg...` (every word after `argv=` belongs to the command).

use crate::flags::Flags;
use std::path::PathBuf;

/// Why a pipe service's master.cf arguments are unusable (the service does not start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipeArgsError {
    #[error("missing argv= command-line attribute")]
    MissingArgv,
    #[error("missing user= command-line attribute")]
    MissingUser,
    #[error("unknown flag in flags= command-line attribute: {0}")]
    UnknownFlag(char),
    #[error("unknown command-line attribute: {0}")]
    UnknownAttribute(String),
    #[error("bad size= command-line attribute: {0}")]
    BadSize(String),
    #[error("user= command-line attribute specifies root privileges: {0}")]
    RootPrivileges(String),
    #[error("user= command-line attribute specifies privileged group id 0: {0}")]
    RootGroup(String),
    #[error("user= command-line attribute specifies mail system owner: {0}")]
    MailOwner(String),
    #[error("unknown user name in user= command-line attribute: {0}")]
    UnknownUser(String),
    #[error("unknown group name in user= command-line attribute: {0}")]
    UnknownGroup(String),
    #[error("unknown macro in argv= command-line attribute: ${{{0}}}")]
    UnknownMacro(String),
}

/// A pipe service's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeArgs {
    pub flags: Flags,
    /// `user=` name, and the group after `:` if any.
    pub user: String,
    pub group: Option<String>,
    /// The command and its arguments, macros not yet expanded.
    pub argv: Vec<String>,
    /// `size=`: larger messages bounce (5.2.3); 0 = no limit.
    pub size_limit: u64,
    /// `eol=`: the line end written to the command (default LF).
    pub eol: String,
    /// `directory=`: the command's working directory.
    pub directory: Option<PathBuf>,
    /// `null_sender=`: what ${sender} and the From_ line say for `<>`.
    pub null_sender: String,
}

impl PipeArgs {
    /// Parses the words master passes after the skeleton's own options.
    pub fn parse(words: &[String]) -> Result<PipeArgs, PipeArgsError> {
        let mut args = PipeArgs {
            flags: Flags::default(),
            user: String::new(),
            group: None,
            argv: Vec::new(),
            size_limit: 0,
            eol: "\n".into(),
            directory: None,
            null_sender: "MAILER-DAEMON".into(),
        };
        let mut iter = words.iter();
        while let Some(word) = iter.next() {
            let (name, value) = word
                .split_once('=')
                .ok_or_else(|| PipeArgsError::UnknownAttribute(word.clone()))?;
            match name {
                "argv" => {
                    args.argv = std::iter::once(value.to_string())
                        .filter(|v| !v.is_empty())
                        .chain(iter.by_ref().cloned())
                        .collect();
                    break;
                }
                "flags" => args.flags = Flags::parse(value)?,
                "user" => match value.split_once(':') {
                    Some((u, g)) => {
                        args.user = u.to_string();
                        args.group = Some(g.to_string());
                    }
                    None => args.user = value.to_string(),
                },
                "size" => {
                    args.size_limit = value
                        .parse()
                        .map_err(|_| PipeArgsError::BadSize(value.to_string()))?
                }
                "eol" => args.eol = unescape(value),
                "directory" => args.directory = Some(PathBuf::from(value)),
                "null_sender" => args.null_sender = value.to_string(),
                _ => return Err(PipeArgsError::UnknownAttribute(word.clone())),
            }
        }
        if args.argv.is_empty() {
            return Err(PipeArgsError::MissingArgv);
        }
        if args.user.is_empty() {
            return Err(PipeArgsError::MissingUser);
        }
        crate::macros::check(&args.argv)?;
        Ok(args)
    }
}

/// The C escapes Postfix allows in `eol=` (`\r\n`, `\n`, `\t`, `\\`).
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<PipeArgs, PipeArgsError> {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        PipeArgs::parse(&words)
    }

    #[test]
    fn dovecot_lda_entry() {
        let a = parse(
            "flags=DRhu user=vmail:mail size=1000 eol=\\r\\n \
             argv=/usr/lib/dovecot/dovecot-lda -f ${sender} -d ${user}@${nexthop}",
        )
        .unwrap();
        assert!(a.flags.delivered_to && a.flags.return_path);
        assert_eq!(
            (a.user.as_str(), a.group.as_deref()),
            ("vmail", Some("mail"))
        );
        assert_eq!(a.size_limit, 1000);
        assert_eq!(a.eol, "\r\n");
        assert_eq!(
            a.argv,
            vec![
                "/usr/lib/dovecot/dovecot-lda",
                "-f",
                "${sender}",
                "-d",
                "${user}@${nexthop}"
            ]
        );
        assert_eq!(a.null_sender, "MAILER-DAEMON");
    }

    #[test]
    fn everything_after_argv_is_the_command() {
        let a =
            parse("user=x argv=/usr/bin/spamc -u spamd -e /usr/sbin/sendmail -oi user=y").unwrap();
        assert_eq!(a.argv.len(), 7);
        assert_eq!(a.user, "x");
        assert_eq!(a.argv[6], "user=y");
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("user=x").unwrap_err(), PipeArgsError::MissingArgv);
        assert_eq!(
            parse("argv=/bin/true").unwrap_err(),
            PipeArgsError::MissingUser
        );
        assert!(matches!(
            parse("user=x bogus=1 argv=/bin/true"),
            Err(PipeArgsError::UnknownAttribute(_))
        ));
        assert!(matches!(
            parse("user=x size=big argv=/bin/true"),
            Err(PipeArgsError::BadSize(_))
        ));
        assert_eq!(
            parse("user=x argv=/bin/echo ${nosuch}").unwrap_err(),
            PipeArgsError::UnknownMacro("nosuch".into())
        );
    }
}
