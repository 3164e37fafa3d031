//! Parsing one SMTP command line (without its line ending) into a [`Command`].
//!
//! Verbs are case-insensitive; `MAIL FROM:` / `RCPT TO:` accept a space after the
//! colon and an address without angle brackets, as Postfix does by default. A line
//! with control characters (other than TAB, which separates like a space) or invalid
//! UTF-8 is refused as a whole. Parameters (`SIZE=n`, `BODY=8BITMIME`) are returned as
//! key/value pairs with the key uppercased; which ones are acceptable is decided by
//! the session, which knows the limits.

use crate::address::{parse_path, AddressError};

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    Mail(PathArg),
    Rcpt(PathArg),
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy(String),
    Help,
    /// RFC 3207; takes no arguments.
    Starttls,
    /// RFC 3030: `BDAT size [LAST]`; `size` octets of message data follow the line.
    Bdat {
        size: u64,
        last: bool,
    },
    /// RFC 4954: `AUTH mechanism [initial-response]` (handled in session/auth.rs).
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    /// Postfix's `XCLIENT attr=value...` (the raw arguments; session/xclient.rs).
    Xclient(String),
    /// Postfix's `XFORWARD attr=value...` (the raw arguments; session/xclient.rs).
    Xforward(String),
    /// ETRN and its argument as sent (RFC 1985; checked by the session).
    Etrn(String),
}

impl Command {
    /// Whether the client must wait for this command's reply before sending more
    /// (RFC 2920 3.1: EHLO, DATA, VRFY, NOOP and QUIT end a pipelined group; HELO and
    /// STARTTLS change what may follow, as Postfix also treats them). MAIL, RCPT, RSET
    /// and BDAT (whose chunk follows its line by design) may be pipelined.
    pub fn ends_group(&self) -> bool {
        matches!(
            self,
            Command::Helo(_)
                | Command::Ehlo(_)
                | Command::Data
                | Command::Noop
                | Command::Quit
                | Command::Vrfy(_)
                | Command::Starttls
        )
    }

    /// Lowercase name used in the disconnect statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Helo(_) => "helo",
            Command::Ehlo(_) => "ehlo",
            Command::Mail(_) => "mail",
            Command::Rcpt(_) => "rcpt",
            Command::Data => "data",
            Command::Rset => "rset",
            Command::Noop => "noop",
            Command::Quit => "quit",
            Command::Vrfy(_) => "vrfy",
            Command::Help => "help",
            Command::Starttls => "starttls",
            Command::Bdat { .. } => "bdat",
            Command::Auth { .. } => "auth",
            Command::Xclient(_) => "xclient",
            Command::Xforward(_) => "xforward",
            Command::Etrn(_) => "etrn",
        }
    }
}

/// The address and ESMTP parameters of MAIL FROM / RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PathArg {
    /// Source route removed, case kept; "" for `<>`.
    pub address: String,
    /// `(KEY uppercased, value)` in the order given.
    pub params: Vec<(String, Option<String>)>,
}

/// Why a line is not a command we accept; the session maps each to its reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Empty line, or control characters in it.
    #[error("bad syntax")]
    BadSyntax,
    #[error("bad UTF-8 syntax")]
    BadUtf8,
    /// A verb we do not know (its name, for logs).
    #[error("command not recognized: {0}")]
    Unknown(String),
    /// A header-like word (`Subject:`): someone pastes a message at us; Postfix hangs
    /// up on those, and on the unknown verbs in smtpd_forbidden_commands.
    #[error("forbidden command: {0}")]
    Forbidden(String),
    /// Wrong arguments; the text is the usage string, e.g. `Syntax: HELO hostname`.
    #[error("{usage}")]
    Usage {
        verb: &'static str,
        usage: &'static str,
    },
    #[error("bad sender address syntax: {0}")]
    BadSender(AddressError),
    #[error("bad recipient address syntax: {0}")]
    BadRecipient(AddressError),
    /// A malformed `KEY=value` parameter.
    #[error("bad parameter syntax")]
    BadParam { verb: &'static str },
}

impl CommandError {
    /// Statistics name of the command this error belongs to ("unknown" when none).
    pub fn name(&self) -> &'static str {
        match self {
            CommandError::Usage { verb, .. } | CommandError::BadParam { verb } => verb,
            CommandError::BadSender(_) => "mail",
            CommandError::BadRecipient(_) => "rcpt",
            _ => "unknown",
        }
    }
}

/// Parses one line without CR LF.
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(CommandError::BadSyntax);
    }
    let line = std::str::from_utf8(line).map_err(|_| CommandError::BadUtf8)?;
    let line = line.trim_matches([' ', '\t']);
    if line.is_empty() {
        return Err(CommandError::BadSyntax);
    }
    let (verb, rest) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i..].trim_start_matches([' ', '\t'])),
        None => (line, ""),
    };
    let upper = verb.to_ascii_uppercase();
    match upper.as_str() {
        "HELO" => one_word(rest, "helo", "Syntax: HELO hostname").map(Command::Helo),
        "EHLO" => one_word(rest, "ehlo", "Syntax: EHLO hostname").map(Command::Ehlo),
        "MAIL" => parse_mail(rest).map(Command::Mail),
        "RCPT" => parse_rcpt(rest).map(Command::Rcpt),
        "DATA" => no_args(rest, "data", "Syntax: DATA", Command::Data),
        "RSET" => no_args(rest, "rset", "Syntax: RSET", Command::Rset),
        "QUIT" => no_args(rest, "quit", "Syntax: QUIT", Command::Quit),
        "STARTTLS" => no_args(rest, "starttls", "Syntax: STARTTLS", Command::Starttls),
        // RFC 5321 4.1.1.9: NOOP may carry a string, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" if rest.is_empty() => Err(CommandError::Usage {
            verb: "vrfy",
            usage: "Syntax: VRFY address",
        }),
        "VRFY" => Ok(Command::Vrfy(rest.to_string())),
        "BDAT" => parse_bdat(rest),
        "AUTH" => parse_auth(rest),
        "XCLIENT" => Ok(Command::Xclient(rest.to_string())),
        "XFORWARD" => Ok(Command::Xforward(rest.to_string())),
        "ETRN" => Ok(Command::Etrn(rest.to_string())),
        // Other verbs Postfix hangs up on (CONNECT, GET, POST ...) are in
        // smtpd_forbidden_commands, which the session matches against Unknown.
        _ if verb.ends_with(':') => Err(CommandError::Forbidden(verb.to_string())),
        _ => Err(CommandError::Unknown(verb.to_string())),
    }
}

/// `BDAT size [LAST]`: size is 1 to 20 digits (RFC 3030 `chunk-size = 1*DIGIT`).
fn parse_bdat(rest: &str) -> Result<Command, CommandError> {
    let usage = CommandError::Usage {
        verb: "bdat",
        usage: "Syntax: BDAT count [LAST]",
    };
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    let size = match words.next() {
        Some(w) if !w.is_empty() && w.len() <= 20 && w.bytes().all(|b| b.is_ascii_digit()) => {
            w.parse::<u64>().map_err(|_| usage.clone())?
        }
        _ => return Err(usage),
    };
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(usage),
    };
    if words.next().is_some() {
        return Err(usage);
    }
    Ok(Command::Bdat { size, last })
}

/// `AUTH mechanism [initial-response]`; the response is checked by the AUTH layer.
fn parse_auth(rest: &str) -> Result<Command, CommandError> {
    let usage = CommandError::Usage {
        verb: "auth",
        usage: "Syntax: AUTH mechanism",
    };
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    let mechanism = words.next().ok_or(usage.clone())?.to_string();
    let initial = words.next().map(str::to_string);
    if words.next().is_some() {
        return Err(usage);
    }
    Ok(Command::Auth { mechanism, initial })
}

fn one_word(rest: &str, verb: &'static str, usage: &'static str) -> Result<String, CommandError> {
    if rest.is_empty() || rest.contains([' ', '\t']) {
        // Postfix accepts extra words after the HELO name; RFC 5321 does not. We keep
        // the first word only when there is more, which is what Postfix logs.
        match rest.split([' ', '\t']).next() {
            Some(first) if !first.is_empty() => return Ok(first.to_string()),
            _ => return Err(CommandError::Usage { verb, usage }),
        }
    }
    Ok(rest.to_string())
}

fn no_args(
    rest: &str,
    verb: &'static str,
    usage: &'static str,
    cmd: Command,
) -> Result<Command, CommandError> {
    if rest.is_empty() {
        Ok(cmd)
    } else {
        Err(CommandError::Usage { verb, usage })
    }
}

fn parse_mail(rest: &str) -> Result<PathArg, CommandError> {
    let usage = CommandError::Usage {
        verb: "mail",
        usage: "Syntax: MAIL FROM:<address>",
    };
    let after = strip_keyword(rest, "FROM:").ok_or(usage.clone())?;
    let (inner, params) = split_path(after).ok_or(usage)?;
    let address = parse_path(inner).map_err(CommandError::BadSender)?;
    let params = parse_params(params).ok_or(CommandError::BadParam { verb: "mail" })?;
    Ok(PathArg { address, params })
}

fn parse_rcpt(rest: &str) -> Result<PathArg, CommandError> {
    let usage = CommandError::Usage {
        verb: "rcpt",
        usage: "Syntax: RCPT TO:<address>",
    };
    let after = strip_keyword(rest, "TO:").ok_or(usage.clone())?;
    let (inner, params) = split_path(after).ok_or(usage)?;
    let address = parse_path(inner).map_err(CommandError::BadRecipient)?;
    if address.is_empty() {
        return Err(CommandError::BadRecipient(AddressError::BadLocalPart));
    }
    let params = parse_params(params).ok_or(CommandError::BadParam { verb: "rcpt" })?;
    Ok(PathArg { address, params })
}

/// `FROM:` case-insensitively, then optional white space.
fn strip_keyword<'a>(rest: &'a str, keyword: &str) -> Option<&'a str> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    Some(rest[keyword.len()..].trim_start_matches([' ', '\t']))
}

/// Splits `<path> params` (or a bare `path params`) into the inside of the path and
/// the parameter text. The closing `>` is the first one outside a quoted string.
fn split_path(s: &str) -> Option<(&str, &str)> {
    if let Some(body) = s.strip_prefix('<') {
        let mut in_quote = false;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' if in_quote => escaped = true,
                '"' => in_quote = !in_quote,
                '>' if !in_quote => {
                    let params = &body[i + 1..];
                    // Parameters must be separated from the path by white space.
                    if !params.is_empty() && !params.starts_with([' ', '\t']) {
                        return None;
                    }
                    return Some((&body[..i], params));
                }
                _ => {}
            }
        }
        None
    } else {
        if s.is_empty() || s.starts_with('>') {
            return None;
        }
        match s.find([' ', '\t']) {
            Some(i) => Some((&s[..i], &s[i..])),
            None => Some((s, "")),
        }
    }
}

/// `KEY[=VALUE]` words; keys are `[A-Za-z0-9][A-Za-z0-9-]*`, values non-empty.
fn parse_params(s: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for word in s.split([' ', '\t']).filter(|w| !w.is_empty()) {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let key_ok = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !key_ok || value == Some("") {
            return None;
        }
        out.push((key.to_ascii_uppercase(), value.map(str::to_string)));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Result<Command, CommandError> {
        parse_command(s.as_bytes())
    }

    fn mail(addr: &str, params: &[(&str, Option<&str>)]) -> PathArg {
        PathArg {
            address: addr.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn simple_verbs_any_case() {
        assert_eq!(p("DATA"), Ok(Command::Data));
        assert_eq!(p("data"), Ok(Command::Data));
        assert_eq!(p("RsEt"), Ok(Command::Rset));
        assert_eq!(p("quit"), Ok(Command::Quit));
        assert_eq!(p("NOOP"), Ok(Command::Noop));
        assert_eq!(p("noop whatever text"), Ok(Command::Noop));
        assert_eq!(p("HELP"), Ok(Command::Help));
        assert_eq!(p("help mail"), Ok(Command::Help));
        assert_eq!(p("  QUIT  "), Ok(Command::Quit));
    }

    #[test]
    fn helo_and_ehlo() {
        assert_eq!(
            p("HELO client.example"),
            Ok(Command::Helo("client.example".into()))
        );
        assert_eq!(
            p("ehlo [192.0.2.1]"),
            Ok(Command::Ehlo("[192.0.2.1]".into()))
        );
        assert_eq!(p("EHLO a b"), Ok(Command::Ehlo("a".into())));
        assert!(matches!(
            p("HELO"),
            Err(CommandError::Usage {
                usage: "Syntax: HELO hostname",
                ..
            })
        ));
        assert!(matches!(
            p("EHLO   "),
            Err(CommandError::Usage {
                usage: "Syntax: EHLO hostname",
                ..
            })
        ));
    }

    #[test]
    fn mail_from_forms() {
        assert_eq!(
            p("MAIL FROM:<a@b.example>"),
            Ok(Command::Mail(mail("a@b.example", &[])))
        );
        assert_eq!(p("mail from:<>"), Ok(Command::Mail(mail("", &[]))));
        assert_eq!(p("MAIL FROM: <a@b>"), Ok(Command::Mail(mail("a@b", &[]))));
        assert_eq!(p("MAIL FROM:a@b"), Ok(Command::Mail(mail("a@b", &[]))));
        assert_eq!(
            p("MAIL FROM:<a@b> SIZE=1000 body=8bitmime"),
            Ok(Command::Mail(mail(
                "a@b",
                &[("SIZE", Some("1000")), ("BODY", Some("8bitmime"))]
            )))
        );
        assert_eq!(
            p("MAIL FROM:<@r.example:a@b>"),
            Ok(Command::Mail(mail("a@b", &[])))
        );
        assert_eq!(
            p("MAIL FROM:<\"x>y\"@b>"),
            Ok(Command::Mail(mail("\"x>y\"@b", &[])))
        );
        assert_eq!(
            p("MAIL FROM:<a@b> NOVALUE"),
            Ok(Command::Mail(mail("a@b", &[("NOVALUE", None)])))
        );
    }

    #[test]
    fn mail_from_errors() {
        assert!(matches!(
            p("MAIL"),
            Err(CommandError::Usage { verb: "mail", .. })
        ));
        assert!(matches!(
            p("MAIL TO:<a@b>"),
            Err(CommandError::Usage { verb: "mail", .. })
        ));
        assert!(matches!(
            p("MAIL FROM:<a@b"),
            Err(CommandError::Usage { verb: "mail", .. })
        ));
        assert!(matches!(
            p("MAIL FROM:<a@b>SIZE=1"),
            Err(CommandError::Usage { verb: "mail", .. })
        ));
        assert!(matches!(
            p("MAIL FROM:"),
            Err(CommandError::Usage { verb: "mail", .. })
        ));
        assert!(matches!(
            p("MAIL FROM:<a b@c>"),
            Err(CommandError::BadSender(_))
        ));
        assert!(matches!(
            p("MAIL FROM:<a@b> SIZE="),
            Err(CommandError::BadParam { verb: "mail" })
        ));
        assert!(matches!(
            p("MAIL FROM:<a@b> =x"),
            Err(CommandError::BadParam { verb: "mail" })
        ));
    }

    #[test]
    fn rcpt_to_forms() {
        assert_eq!(
            p("RCPT TO:<u@example.com>"),
            Ok(Command::Rcpt(mail("u@example.com", &[])))
        );
        assert_eq!(
            p("rcpt to: <Postmaster>"),
            Ok(Command::Rcpt(mail("Postmaster", &[])))
        );
        assert!(matches!(
            p("RCPT TO:<>"),
            Err(CommandError::BadRecipient(_))
        ));
        assert!(matches!(
            p("RCPT FROM:<a@b>"),
            Err(CommandError::Usage { verb: "rcpt", .. })
        ));
        assert!(matches!(
            p("RCPT TO:<a@>"),
            Err(CommandError::BadRecipient(_))
        ));
    }

    #[test]
    fn arguments_where_none_allowed() {
        assert!(matches!(
            p("DATA now"),
            Err(CommandError::Usage {
                usage: "Syntax: DATA",
                ..
            })
        ));
        assert!(matches!(
            p("RSET x"),
            Err(CommandError::Usage { verb: "rset", .. })
        ));
        assert!(matches!(
            p("QUIT x"),
            Err(CommandError::Usage { verb: "quit", .. })
        ));
        assert!(matches!(
            p("VRFY"),
            Err(CommandError::Usage { verb: "vrfy", .. })
        ));
        assert_eq!(p("vrfy root"), Ok(Command::Vrfy("root".into())));
    }

    #[test]
    fn auth_forms() {
        assert_eq!(
            p("AUTH PLAIN"),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: None
            })
        );
        assert_eq!(
            p("auth login dXNlcg=="),
            Ok(Command::Auth {
                mechanism: "login".into(),
                initial: Some("dXNlcg==".into())
            })
        );
        assert_eq!(
            p("AUTH PLAIN ="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("=".into())
            })
        );
        assert!(matches!(
            p("AUTH"),
            Err(CommandError::Usage { verb: "auth", .. })
        ));
        assert!(matches!(
            p("AUTH A B C"),
            Err(CommandError::Usage { verb: "auth", .. })
        ));
        assert_eq!(p("AUTH PLAIN x").unwrap().name(), "auth");
    }

    #[test]
    fn bdat_forms() {
        assert_eq!(
            p("BDAT 100"),
            Ok(Command::Bdat {
                size: 100,
                last: false
            })
        );
        assert_eq!(
            p("bdat 0 last"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        assert_eq!(
            p("BDAT 7 LAST"),
            Ok(Command::Bdat {
                size: 7,
                last: true
            })
        );
        for bad in [
            "BDAT",
            "BDAT x",
            "BDAT -1",
            "BDAT 1 FIRST",
            "BDAT 1 LAST x",
            "BDAT 99999999999999999999999",
        ] {
            assert!(
                matches!(p(bad), Err(CommandError::Usage { verb: "bdat", .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_forbidden_and_bad_bytes() {
        assert_eq!(p("XYZZY"), Err(CommandError::Unknown("XYZZY".into())));
        assert_eq!(p("etrn @x.test"), Ok(Command::Etrn("@x.test".into())));
        assert_eq!(p("starttls"), Ok(Command::Starttls));
        assert!(matches!(
            p("STARTTLS x"),
            Err(CommandError::Usage {
                verb: "starttls",
                ..
            })
        ));
        assert_eq!(
            p("GET / HTTP/1.0"),
            Err(CommandError::Unknown("GET".into()))
        );
        assert_eq!(p("post /"), Err(CommandError::Unknown("post".into())));
        assert_eq!(
            p("Subject: hi"),
            Err(CommandError::Forbidden("Subject:".into()))
        );
        assert_eq!(p(""), Err(CommandError::BadSyntax));
        assert_eq!(p("   "), Err(CommandError::BadSyntax));
        assert_eq!(parse_command(b"NOOP\0"), Err(CommandError::BadSyntax));
        assert_eq!(parse_command(b"NOOP\r"), Err(CommandError::BadSyntax));
        assert_eq!(parse_command(b"HELO \xff"), Err(CommandError::BadUtf8));
        assert_eq!(p("HELO\ta.example"), Ok(Command::Helo("a.example".into())));
    }

    #[test]
    fn error_names_for_statistics() {
        assert_eq!(p("MAIL").unwrap_err().name(), "mail");
        assert_eq!(p("RCPT TO:<>").unwrap_err().name(), "rcpt");
        assert_eq!(p("FOO").unwrap_err().name(), "unknown");
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_command(&line);
        }

        #[test]
        fn parsed_addresses_have_no_controls(s in "(?i)(mail from|rcpt to):.{0,80}") {
            if let Ok(Command::Mail(a) | Command::Rcpt(a)) = parse_command(s.as_bytes()) {
                prop_assert!(!a.address.chars().any(char::is_control));
            }
        }
    }
}
