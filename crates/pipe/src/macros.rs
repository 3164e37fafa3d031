//! `argv=` macro expansion as pipe(8) does it: `${name}` (also `$name`, `$(name)`) in
//! each word; a word naming a per-recipient macro (${recipient}, ${user}, ...) is
//! repeated once per recipient of the request, in order, so that
//! `-d ${user}` becomes `-d alice bob`.

use crate::args::PipeArgsError;
use crate::flags::Flags;

/// Macros whose value is the same for every recipient of the request.
const MESSAGE_MACROS: &[&str] = &[
    "client_address",
    "client_helo",
    "client_hostname",
    "client_port",
    "client_protocol",
    "nexthop",
    "queue_id",
    "sasl_method",
    "sasl_sender",
    "sasl_username",
    "sender",
    "size",
];

/// Macros taken from one recipient.
const RECIPIENT_MACROS: &[&str] = &[
    "domain",
    "extension",
    "mailbox",
    "original_recipient",
    "recipient",
    "user",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Text(String),
    Macro(String),
}

/// Splits a word into text and macro names (a `$` not followed by a name stays text).
fn tokens(word: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = word;
    while let Some(pos) = rest.find('$') {
        text.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = match after.chars().next() {
            Some(open @ ('{' | '(')) => {
                let close = if open == '{' { '}' } else { ')' };
                match after[1..].find(close) {
                    Some(end) => (Some(&after[1..1 + end]), end + 2),
                    None => (None, 0),
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (Some(&after[..end]), end)
            }
            _ => (None, 0),
        };
        match name {
            Some(name) => {
                if !text.is_empty() {
                    out.push(Token::Text(std::mem::take(&mut text)));
                }
                out.push(Token::Macro(name.to_string()));
                rest = &after[consumed..];
            }
            None => {
                text.push('$');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Token::Text(text));
    }
    out
}

/// Refuses a command line naming a macro pipe does not know (Postfix's pipe would
/// pass it through unexpanded or fail; either way the entry is a mistake).
pub fn check(argv: &[String]) -> Result<(), PipeArgsError> {
    for word in argv {
        for t in tokens(word) {
            if let Token::Macro(name) = t {
                if !MESSAGE_MACROS.contains(&name.as_str())
                    && !RECIPIENT_MACROS.contains(&name.as_str())
                {
                    return Err(PipeArgsError::UnknownMacro(name));
                }
            }
        }
    }
    Ok(())
}

/// What the message-wide macros expand to.
#[derive(Debug, Clone, Default)]
pub struct MessageValues {
    /// The envelope sender; empty for `<>` (then null_sender is used).
    pub sender: String,
    pub null_sender: String,
    pub nexthop: String,
    pub queue_id: String,
    pub size: u64,
    /// Queue file attributes (client_address, helo, sasl_username, ...).
    pub attrs: Vec<(String, String)>,
}

/// One recipient: its address and the address as originally received.
#[derive(Debug, Clone)]
pub struct RecipientValues<'a> {
    pub address: &'a str,
    pub original: &'a str,
}

/// Expands `argv` for the request's recipients.
pub fn expand(
    argv: &[String],
    msg: &MessageValues,
    rcpts: &[RecipientValues<'_>],
    flags: &Flags,
    delimiter: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for word in argv {
        let toks = tokens(word);
        let per_rcpt = toks
            .iter()
            .any(|t| matches!(t, Token::Macro(n) if RECIPIENT_MACROS.contains(&n.as_str())));
        if per_rcpt {
            for r in rcpts {
                out.push(render(&toks, msg, Some(r), flags, delimiter));
            }
        } else {
            out.push(render(&toks, msg, None, flags, delimiter));
        }
    }
    out
}

fn render(
    toks: &[Token],
    msg: &MessageValues,
    rcpt: Option<&RecipientValues<'_>>,
    flags: &Flags,
    delimiter: &str,
) -> String {
    let mut s = String::new();
    for t in toks {
        match t {
            Token::Text(text) => s.push_str(text),
            Token::Macro(name) => s.push_str(&value(name, msg, rcpt, flags, delimiter)),
        }
    }
    s
}

fn attr<'m>(msg: &'m MessageValues, name: &str) -> &'m str {
    msg.attrs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn value(
    name: &str,
    msg: &MessageValues,
    rcpt: Option<&RecipientValues<'_>>,
    flags: &Flags,
    delimiter: &str,
) -> String {
    let fold_host = |h: &str| {
        if flags.fold_host {
            h.to_lowercase()
        } else {
            h.to_string()
        }
    };
    match name {
        "sender" if msg.sender.is_empty() => msg.null_sender.clone(),
        "sender" => quote_address(&msg.sender, flags.quote),
        "nexthop" => fold_host(&msg.nexthop),
        "queue_id" => msg.queue_id.clone(),
        "size" => msg.size.to_string(),
        "client_address" | "client_port" | "sasl_method" | "sasl_sender" | "sasl_username" => {
            attr(msg, name).to_string()
        }
        "client_hostname" => attr(msg, "client_name").to_string(),
        "client_helo" => attr(msg, "helo").to_string(),
        "client_protocol" => attr(msg, "protocol").to_string(),
        _ => {
            let Some(r) = rcpt else {
                return String::new();
            };
            let (local, domain) = split_address(r.address, flags);
            match name {
                "recipient" => join(&quote_local(&local, flags.quote), &domain),
                "original_recipient" => {
                    let (ol, od) = split_address(r.original, flags);
                    join(&quote_local(&ol, flags.quote), &od)
                }
                "domain" => domain,
                "mailbox" => local,
                "user" => split_extension(&local, delimiter).0.to_string(),
                "extension" => split_extension(&local, delimiter).1.to_string(),
                _ => String::new(),
            }
        }
    }
}

/// The localpart (folded when `u`) and domain (folded when `h`) of an address.
fn split_address(address: &str, flags: &Flags) -> (String, String) {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let local = if flags.fold_user {
        local.to_lowercase()
    } else {
        local.to_string()
    };
    let domain = if flags.fold_host {
        domain.to_lowercase()
    } else {
        domain.to_string()
    };
    (local, domain)
}

fn join(local: &str, domain: &str) -> String {
    if domain.is_empty() {
        local.to_string()
    } else {
        format!("{local}@{domain}")
    }
}

/// (user, extension) of a localpart split at the first recipient_delimiter character.
fn split_extension<'a>(local: &'a str, delimiter: &str) -> (&'a str, &'a str) {
    match local.find(|c| delimiter.contains(c)) {
        Some(pos) if !delimiter.is_empty() && pos > 0 => (&local[..pos], &local[pos + 1..]),
        _ => (local, ""),
    }
}

fn quote_address(address: &str, quote: bool) -> String {
    match address.rsplit_once('@') {
        Some((l, d)) => join(&quote_local(l, quote), d),
        None => quote_local(address, quote),
    }
}

/// RFC 822 quoting of a localpart (flag q): a localpart with white space or
/// specials is put in double quotes, with `"` and `\` escaped.
fn quote_local(local: &str, quote: bool) -> String {
    const SPECIALS: &str = "()<>@,;:\\\".[] ";
    let needs = local
        .chars()
        .any(|c| c.is_control() || SPECIALS.contains(c))
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..");
    if !quote || !needs {
        return local.to_string();
    }
    let mut s = String::from("\"");
    for c in local.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn msg() -> MessageValues {
        MessageValues {
            sender: "Bob@Example.ORG".into(),
            null_sender: "MAILER-DAEMON".into(),
            nexthop: "Mail.Example.COM".into(),
            queue_id: "4AbCdEf".into(),
            size: 321,
            attrs: vec![("client_address".into(), "192.0.2.7".into())],
        }
    }

    #[test]
    fn recipient_words_repeat_per_recipient() {
        let rcpts = [
            RecipientValues {
                address: "Alice+Lists@Example.COM",
                original: "a@example.com",
            },
            RecipientValues {
                address: "carol@example.com",
                original: "carol@example.com",
            },
        ];
        let flags = Flags::parse("hu").unwrap();
        let got = expand(
            &words("/bin/x -f ${sender} -n $nexthop -d ${user} -- $(recipient) ${extension} s=${size} ${client_address} ${queue_id}"),
            &msg(),
            &rcpts,
            &flags,
            "+",
        );
        let want: Vec<String> = [
            "/bin/x",
            "-f",
            "Bob@Example.ORG",
            "-n",
            "mail.example.com",
            "-d",
            "alice",
            "carol",
            "--",
            "alice+lists@example.com",
            "carol@example.com",
            "lists",
            // carol has no extension: her copy of the word is empty.
            "",
            "s=321",
            "192.0.2.7",
            "4AbCdEf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn null_sender_quoting_and_unknown_macros() {
        let mut m = msg();
        m.sender.clear();
        let r = [RecipientValues {
            address: "john doe@example.com",
            original: "john doe@example.com",
        }];
        let got = expand(
            &words("${sender} ${recipient} $5 cost$"),
            &m,
            &r,
            &Flags::parse("q").unwrap(),
            "",
        );
        assert_eq!(
            got,
            vec!["MAILER-DAEMON", "\"john doe\"@example.com", "$5", "cost$"]
        );
        assert!(check(&words("${sender} ${user}")).is_ok());
        assert_eq!(
            check(&words("${bogus}")).unwrap_err(),
            PipeArgsError::UnknownMacro("bogus".into())
        );
    }
}
