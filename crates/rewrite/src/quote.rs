//! RFC 5322 local-part quoting, as Postfix's cleanup does around its header address
//! tables: an address is looked up in its internal form (quoted strings and
//! backslash escapes removed: `"john doe"@x` is `john doe@x`), and a rewritten
//! address is put back in external form by quote_822_local's rule: the local part
//! (everything before the last `@`, after a source route) stays as it is when it is
//! a dot-string, and is otherwise written as one quoted string with `"`, `\` and CR
//! escaped. 8-bit text is left alone (Postfix's QUOTE_FLAG_8BITCLEAN).

/// The internal form of an external address: quotes dropped, `\x` made `x`.
pub fn unquote(external: &str) -> String {
    let mut out = String::with_capacity(external.len());
    let mut chars = external.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {}
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Each character of `text` with whether it stands outside quoted strings and is
/// not escaped (where a comma or white space separates addresses).
fn with_freedom(text: &str) -> impl Iterator<Item = (char, bool)> + '_ {
    let (mut quoted, mut escaped) = (false, false);
    text.chars().map(move |c| {
        let free = !quoted && !escaped && c != '"' && c != '\\';
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        }
        (c, free)
    })
}

/// Whether `text` has white space outside quoted strings.
pub fn has_unquoted_space(text: &str) -> bool {
    with_freedom(text).any(|(c, free)| free && c.is_whitespace())
}

/// A table result (external form, as Postfix's mail_addr_map reads it) split into
/// its addresses at commas and white space outside quoted strings, each in internal
/// form.
pub fn split_result(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for (c, free) in with_freedom(value) {
        if free && (c == ',' || c.is_whitespace()) {
            if !current.is_empty() {
                out.push(unquote(&std::mem::take(&mut current)));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        out.push(unquote(&current));
    }
    out
}

/// Whether `local` is an RFC 822 dot-string (atoms separated by single dots).
fn is_dot_string(local: &str) -> bool {
    if local.is_empty() || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    !local.chars().any(|c| {
        c == ' '
            || c.is_ascii_control()
            || matches!(
                c,
                '(' | ')' | '<' | '>' | '@' | ',' | ';' | ':' | '\\' | '"' | '[' | ']'
            )
    })
}

/// The external form of an internal address (quote_822_local).
pub fn quote_local(internal: &str) -> String {
    let start = match internal.find(':') {
        Some(colon) if internal.starts_with('@') => colon + 1,
        _ => 0,
    };
    let end = internal[start..]
        .rfind('@')
        .map_or(internal.len(), |at| start + at);
    let local = &internal[start..end];
    if is_dot_string(local) {
        return internal.to_string();
    }
    let mut out = String::with_capacity(internal.len() + 4);
    out.push_str(&internal[..start]);
    out.push('"');
    for c in local.chars() {
        if matches!(c, '"' | '\\' | '\r') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out.push_str(&internal[end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_quote_822_local_cases() {
        // quote_822_local.in / .ref from Postfix.
        assert_eq!(quote_local("a@b@c@d"), "\"a@b@c\"@d");
        assert_eq!(unquote("\"a@b@c\"@d"), "a@b@c@d");
        assert_eq!(unquote("\"a@b@c\""), "a@b@c");
        assert_eq!(quote_local(""), "\"\"");
    }

    #[test]
    fn round_trips() {
        assert_eq!(unquote("\"john doe\"@x.test"), "john doe@x.test");
        assert_eq!(quote_local("john doe@x.test"), "\"john doe\"@x.test");
        assert_eq!(quote_local("john.doe@x.test"), "john.doe@x.test");
        assert_eq!(quote_local("a\"b\\c@x"), "\"a\\\"b\\\\c\"@x");
        assert_eq!(unquote("\"a\\\"b\\\\c\"@x"), "a\"b\\c@x");
        assert_eq!(quote_local("@r1,@r2:john doe@x"), "@r1,@r2:\"john doe\"@x");
        assert_eq!(quote_local(".lead@x"), "\".lead\"@x");
        assert_eq!(quote_local("jörg@x"), "jörg@x");
        assert_eq!(quote_local("joe"), "joe");
    }

    #[test]
    fn results_split_outside_quotes() {
        assert_eq!(
            split_result("\"jane q\"@x, b@y\tc"),
            ["jane q@x", "b@y", "c"]
        );
        assert!(split_result(" , ").is_empty());
        assert!(has_unquoted_space("a b@x"));
        assert!(!has_unquoted_space("\"a b\"@x"));
        assert!(!has_unquoted_space("\"a\\\" b\"@x"));
    }
}
