//! The right-hand side of an alias, the lines of a `.forward` file and the lines of an
//! `:include:` file, as aliases(5) and local(8) describe them: a list of destinations
//! separated by commas (and, in files, by newlines), each one of
//!
//! - `|command` — pipe the message to a command (quote it when it contains a comma:
//!   `"|/usr/bin/vacation -a me, you"`),
//! - `/path/name` — append the message to a file (mbox style),
//! - `:include:/path/name` — read more destinations from a file,
//! - `\user` — deliver to the user's mailbox, without alias or .forward expansion,
//! - `address` (optionally `<address>`, or `"quoted local"@domain`) — deliver to it.
//!
//! Double quotes group text (a comma inside quotes does not separate), a backslash
//! outside quotes escapes the next character. Unlike Postfix's RFC 822 tokenizer an
//! unquoted `|command with arguments` runs up to the next comma, which is what
//! administrators usually mean. `#` starts a comment only at the beginning of a line
//! (in files: a `#` in the middle of an address is part of it).

/// One destination of an expansion list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A mail address, to be delivered (locally, recursively) or forwarded.
    Address(String),
    /// `\user`: the user's mailbox, no further expansion.
    NoExpand(String),
    /// `/path`: append to this file.
    File(String),
    /// `|command`: the command text after the bar.
    Command(String),
    /// `:include:/path`: the file to read more items from.
    Include(String),
}

/// Parses an alias value (one logical line; continuation lines already joined).
pub fn parse_list(text: &str) -> Vec<Item> {
    split_top_level(text)
        .into_iter()
        .filter_map(|raw| classify(&raw))
        .collect()
}

/// Parses a `.forward` or `:include:` file: every non-comment line is a list.
pub fn parse_file(text: &str) -> Vec<Item> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(parse_list)
        .collect()
}

/// One element as written (quotes kept, so that classification can tell `"|cmd"`
/// from `|cmd`): split at commas outside quotes and angle brackets.
fn split_top_level(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut angle = 0usize;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if !quoted => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '\\' if quoted => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '<' if !quoted => {
                angle += 1;
                cur.push(c);
            }
            '>' if !quoted => {
                angle = angle.saturating_sub(1);
                cur.push(c);
            }
            ',' if !quoted && angle == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Removes one level of quoting: the double quotes themselves, and the backslash
/// before an escaped character.
fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {}
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn classify(raw: &str) -> Option<Item> {
    // A fully quoted element is taken literally inside: "|cmd, x" or "/file name".
    let whole_quoted = raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"');
    let inner = if whole_quoted {
        raw[1..raw.len() - 1].replace("\\\"", "\"")
    } else {
        raw.to_string()
    };
    let inner_trim = inner.trim();
    if let Some(cmd) = inner_trim.strip_prefix('|') {
        let cmd = cmd.trim();
        return (!cmd.is_empty()).then(|| Item::Command(cmd.to_string()));
    }
    if inner_trim
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case(":include:"))
    {
        let path = inner_trim[9..].trim();
        return (!path.is_empty()).then(|| Item::Include(path.to_string()));
    }
    if inner_trim.starts_with('/') {
        return Some(Item::File(inner_trim.to_string()));
    }
    if let Some(user) = raw.strip_prefix('\\') {
        let user = unquote(user.trim());
        return (!user.is_empty()).then_some(Item::NoExpand(user));
    }
    // An address: <addr> loses its brackets; quotes around a local part go, as
    // Postfix stores the unquoted (internal) form.
    let addr = match (raw.find('<'), raw.rfind('>')) {
        (Some(a), Some(b)) if a < b => &raw[a + 1..b],
        _ => raw,
    };
    let addr = unquote(addr.trim());
    (!addr.is_empty()).then_some(Item::Address(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> Item {
        Item::Address(s.into())
    }

    #[test]
    fn users_and_addresses() {
        assert_eq!(
            parse_list("alice, bob@example.org ,<carol@example.net>"),
            vec![a("alice"), a("bob@example.org"), a("carol@example.net")]
        );
        assert_eq!(parse_list(" , ,"), vec![]);
    }

    #[test]
    fn commands_files_includes() {
        assert_eq!(
            parse_list(
                r#""|/usr/bin/vacation -a me, you", /var/log/mail.copy, :include:/etc/mail/list"#
            ),
            vec![
                Item::Command("/usr/bin/vacation -a me, you".into()),
                Item::File("/var/log/mail.copy".into()),
                Item::Include("/etc/mail/list".into()),
            ]
        );
        assert_eq!(
            parse_list("|/bin/cat -v, :INCLUDE: /x"),
            vec![
                Item::Command("/bin/cat -v".into()),
                Item::Include("/x".into())
            ]
        );
        assert_eq!(
            parse_list(r#""/path with space/file""#),
            vec![Item::File("/path with space/file".into())]
        );
        assert_eq!(parse_list("|"), vec![]);
    }

    #[test]
    fn backslash_user_and_quoted_local_part() {
        assert_eq!(
            parse_list(r#"\alice, "joe, jr"@example.org"#),
            vec![Item::NoExpand("alice".into()), a("joe, jr@example.org")]
        );
        assert_eq!(
            parse_list(r#"\"alice""#),
            vec![Item::NoExpand("alice".into())]
        );
    }

    #[test]
    fn forward_file_lines_and_comments() {
        let text = "# my forward\nbob@example.org\n\\alice, \"|/usr/bin/procmail\"\n  # indented comment\n";
        assert_eq!(
            parse_file(text),
            vec![
                a("bob@example.org"),
                Item::NoExpand("alice".into()),
                Item::Command("/usr/bin/procmail".into())
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_no_empty_items(s in ".{0,80}") {
            for item in parse_list(&s).into_iter().chain(parse_file(&s)) {
                let text = match item {
                    Item::Address(t) | Item::NoExpand(t) | Item::File(t)
                    | Item::Command(t) | Item::Include(t) => t,
                };
                prop_assert!(!text.is_empty());
            }
        }
    }
}
