//! spawn's master.cf arguments: `user=name[:group]` and, last, `argv=command arg...`
//! (every word after `argv=` belongs to the command). Postfix's spawn takes nothing
//! else; an unknown attribute stops the service from starting rather than being
//! ignored.

/// Why a spawn service's master.cf arguments are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnArgsError {
    #[error("missing argv= command-line attribute")]
    MissingArgv,
    #[error("missing user= command-line attribute")]
    MissingUser,
    #[error("unknown command-line attribute: {0}")]
    UnknownAttribute(String),
}

/// A spawn service's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnArgs {
    pub user: String,
    pub group: Option<String>,
    /// The command and its arguments, as written (spawn expands no macros).
    pub argv: Vec<String>,
}

impl SpawnArgs {
    /// Parses the words master passes after the skeleton's own options.
    pub fn parse(words: &[String]) -> Result<SpawnArgs, SpawnArgsError> {
        let mut args = SpawnArgs {
            user: String::new(),
            group: None,
            argv: Vec::new(),
        };
        let mut iter = words.iter();
        while let Some(word) = iter.next() {
            match word.split_once('=') {
                Some(("argv", value)) => {
                    args.argv = std::iter::once(value.to_string())
                        .filter(|v| !v.is_empty())
                        .chain(iter.by_ref().cloned())
                        .collect();
                    break;
                }
                Some(("user", value)) => match value.split_once(':') {
                    Some((u, g)) => {
                        args.user = u.to_string();
                        args.group = Some(g.to_string());
                    }
                    None => args.user = value.to_string(),
                },
                _ => return Err(SpawnArgsError::UnknownAttribute(word.clone())),
            }
        }
        if args.argv.is_empty() {
            return Err(SpawnArgsError::MissingArgv);
        }
        if args.user.is_empty() {
            return Err(SpawnArgsError::MissingUser);
        }
        Ok(args)
    }

    /// `user=` as written, for messages.
    pub fn user_spec(&self) -> String {
        match &self.group {
            Some(g) => format!("{}:{g}", self.user),
            None => self.user.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<SpawnArgs, SpawnArgsError> {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        SpawnArgs::parse(&words)
    }

    #[test]
    fn ubuntu_policyd_spf_entry() {
        let a = parse("user=policyd-spf argv=/usr/bin/policyd-spf").unwrap();
        assert_eq!(a.user, "policyd-spf");
        assert_eq!(a.group, None);
        assert_eq!(a.argv, vec!["/usr/bin/policyd-spf"]);
    }

    #[test]
    fn everything_after_argv_is_the_command() {
        let a = parse("user=nobody:nogroup argv=/usr/bin/perl /x.pl user=root").unwrap();
        assert_eq!(a.group.as_deref(), Some("nogroup"));
        assert_eq!(a.argv, vec!["/usr/bin/perl", "/x.pl", "user=root"]);
        assert_eq!(a.user_spec(), "nobody:nogroup");
    }

    #[test]
    fn refusals() {
        assert_eq!(parse("user=x").unwrap_err(), SpawnArgsError::MissingArgv);
        assert_eq!(
            parse("argv=/bin/true").unwrap_err(),
            SpawnArgsError::MissingUser
        );
        assert_eq!(
            parse("user=x flags=R argv=/bin/true").unwrap_err(),
            SpawnArgsError::UnknownAttribute("flags=R".into())
        );
    }
}
