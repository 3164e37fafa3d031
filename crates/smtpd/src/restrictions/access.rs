//! What a `check_*_access` table entry says (access(5)): the right-hand side of a table
//! hit parsed into an [`Action`], and the lookup keys Postfix tries for a client, a
//! HELO name or an address.

use super::queue_actions::QueueKind;

/// The result of a table hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `OK`, `PERMIT`, or an all-numeric value (legacy).
    Permit,
    /// `REJECT [text]`.
    Reject(Option<String>),
    /// `DEFER [text]`.
    Defer(Option<String>),
    /// `DUNNO`: stop looking in this table, go on with the list.
    Dunno,
    /// `4NN text` / `5NN text`, with an optional enhanced code at the start of text.
    Code {
        code: u16,
        enhanced: Option<String>,
        text: Option<String>,
    },
    /// `WARN text`: log, go on.
    Warn(String),
    /// `DEFER_IF_PERMIT [text]`: a permit at the end of the check becomes 450.
    DeferIfPermit(Option<String>),
    /// `DEFER_IF_REJECT [text]`: a later 5xx reject becomes 450.
    DeferIfReject(Option<String>),
    /// `PREPEND header: text`.
    Prepend(String),
    /// HOLD, DISCARD, FILTER, REDIRECT, BCC and the text after the word: actions on
    /// the whole message (queue_actions.rs).
    Queue(QueueKind, String),
    /// Anything else: another restriction list (`permit_sasl_authenticated`,
    /// `reject_unauth_destination`, ...), parsed by the caller.
    Restrictions(String),
}

/// Parses a table value.
pub fn parse_action(value: &str) -> Action {
    let value = value.trim();
    let (word, rest) = match value.find(char::is_whitespace) {
        Some(i) => (&value[..i], value[i..].trim()),
        None => (value, ""),
    };
    if let Some(kind) = QueueKind::from_word(word) {
        return Action::Queue(kind, rest.to_string());
    }
    let text = (!rest.is_empty()).then(|| rest.to_string());
    match word.to_ascii_uppercase().as_str() {
        "OK" | "PERMIT" | "RELAY" => Action::Permit,
        "DEFER_IF_PERMIT" => Action::DeferIfPermit(text),
        "DEFER_IF_REJECT" => Action::DeferIfReject(text),
        "PREPEND" => Action::Prepend(rest.to_string()),
        "REJECT" => Action::Reject(text),
        "DEFER" => Action::Defer(text),
        "DUNNO" => Action::Dunno,
        "WARN" => Action::Warn(rest.to_string()),
        w if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) => {
            match (w.len(), w.as_bytes()[0], w.parse::<u16>()) {
                (3, b'4' | b'5', Ok(code)) => {
                    let (enhanced, text) = split_enhanced(rest, code);
                    Action::Code {
                        code,
                        enhanced,
                        text,
                    }
                }
                _ => Action::Permit,
            }
        }
        _ => Action::Restrictions(value.to_string()),
    }
}

/// `5.7.1 text` -> (Some("5.7.1"), Some("text")) when the class matches the code.
fn split_enhanced(rest: &str, code: u16) -> (Option<String>, Option<String>) {
    let (first, after) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let parts: Vec<&str> = first.split('.').collect();
    let class = char::from(b'0' + (code / 100) as u8);
    let is_enhanced = parts.len() == 3
        && parts[0].len() == 1
        && parts[0].starts_with(class)
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if is_enhanced {
        (
            Some(first.to_string()),
            (!after.is_empty()).then(|| after.to_string()),
        )
    } else {
        (None, (!rest.is_empty()).then(|| rest.to_string()))
    }
}

/// `a.b.example` -> [`a.b.example`, `b.example`, `example`] then the `.`-prefixed parent
/// forms [`.b.example`, `.example`]: Postfix's lookup order for a domain in an access
/// table (parent_domain_matches_subdomains includes smtpd_access_maps by default, so
/// a plain `example` entry matches its subdomains).
pub fn domain_keys(domain: &str) -> Vec<String> {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut keys = vec![d.clone()];
    let mut rest = d.as_str();
    let mut dotted = Vec::new();
    while let Some(i) = rest.find('.') {
        rest = &rest[i + 1..];
        if rest.is_empty() {
            break;
        }
        keys.push(rest.to_string());
        dotted.push(format!(".{rest}"));
    }
    keys.extend(dotted);
    keys
}

/// Keys for an address: `user@domain`, the domain keys, then `user@`.
pub fn address_keys(address: &str) -> Vec<String> {
    match address.rfind('@') {
        Some(at) => {
            let (local, domain) = (&address[..at], &address[at + 1..]);
            let mut keys = vec![address.to_string()];
            keys.extend(domain_keys(domain));
            keys.push(format!("{local}@"));
            keys
        }
        None => vec![address.to_string()],
    }
}

/// Keys for a client: the host name (and its parents) unless unknown, then the
/// address and, for IPv4, its shorter network prefixes (`1.2.3.4`, `1.2.3`, `1.2`, `1`).
pub fn client_keys(name: &str, addr: &str) -> Vec<String> {
    let mut keys = Vec::new();
    if name != "unknown" && !name.is_empty() {
        keys.extend(domain_keys(name));
    }
    keys.push(addr.to_string());
    if addr.contains('.') && !addr.contains(':') {
        let mut a = addr;
        while let Some(i) = a.rfind('.') {
            a = &a[..i];
            keys.push(a.to_string());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn actions() {
        assert_eq!(parse_action("OK"), Action::Permit);
        assert_eq!(parse_action(" permit "), Action::Permit);
        assert_eq!(parse_action("1234"), Action::Permit);
        assert_eq!(parse_action("REJECT"), Action::Reject(None));
        assert_eq!(
            parse_action("reject go away"),
            Action::Reject(Some("go away".into()))
        );
        assert_eq!(parse_action("DEFER"), Action::Defer(None));
        assert_eq!(parse_action("DUNNO"), Action::Dunno);
        assert_eq!(parse_action("relay"), Action::Permit);
        assert_eq!(
            parse_action("DEFER_IF_PERMIT Greylisted"),
            Action::DeferIfPermit(Some("Greylisted".into()))
        );
        assert_eq!(parse_action("defer_if_reject"), Action::DeferIfReject(None));
        assert_eq!(
            parse_action("PREPEND X-Policy: yes"),
            Action::Prepend("X-Policy: yes".into())
        );
        assert_eq!(
            parse_action("HOLD spam"),
            Action::Queue(QueueKind::Hold, "spam".into())
        );
        assert_eq!(
            parse_action("redirect  a@b.example "),
            Action::Queue(QueueKind::Redirect, "a@b.example".into())
        );
        assert_eq!(
            parse_action("DISCARD"),
            Action::Queue(QueueKind::Discard, "".into())
        );
        assert_eq!(parse_action("WARN look"), Action::Warn("look".into()));
        assert_eq!(
            parse_action("550 5.7.2 no thanks"),
            Action::Code {
                code: 550,
                enhanced: Some("5.7.2".into()),
                text: Some("no thanks".into())
            }
        );
        assert_eq!(
            parse_action("450 busy"),
            Action::Code {
                code: 450,
                enhanced: None,
                text: Some("busy".into())
            }
        );
        // A 4xx code with a 5.x.x enhanced code is not an enhanced code.
        assert_eq!(
            parse_action("450 5.1.1 x"),
            Action::Code {
                code: 450,
                enhanced: None,
                text: Some("5.1.1 x".into())
            }
        );
        assert_eq!(
            parse_action("permit_sasl_authenticated reject"),
            Action::Restrictions("permit_sasl_authenticated reject".into())
        );
    }

    #[test]
    fn key_orders() {
        assert_eq!(
            domain_keys("A.B.Example."),
            vec![
                "a.b.example",
                "b.example",
                "example",
                ".b.example",
                ".example"
            ]
        );
        assert_eq!(
            address_keys("u@a.example"),
            vec!["u@a.example", "a.example", "example", ".example", "u@"]
        );
        assert_eq!(address_keys("postmaster"), vec!["postmaster"]);
        assert_eq!(
            client_keys("unknown", "192.0.2.1"),
            vec!["192.0.2.1", "192.0.2", "192.0", "192"]
        );
        assert_eq!(client_keys("unknown", "2001:db8::1"), vec!["2001:db8::1"]);
        assert_eq!(
            client_keys("mx.example", "192.0.2.1")[..3],
            ["mx.example", "example", ".example"]
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = parse_action(&s);
            let _ = address_keys(&s);
            let _ = domain_keys(&s);
        }
    }
}
