//! Readers for table source text: the postmap(5) shape (`key value`, `#` comments,
//! continuation lines that start with white space) and the aliases(5) shape
//! (`name: value, value`). Both give logical entries with the line they started on.

/// One logical line: the text with continuations joined by a single space, and the
/// 1-based number of the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based line number of the first physical line.
    pub line: usize,
    /// The joined text, trimmed.
    pub text: String,
}

/// Split source text into logical lines as Postfix's `readllines` does: a line that
/// starts with white space continues the previous logical line (only the newline is
/// removed; the continuation keeps its leading white space, so postmap and rostmap
/// give the same value); an empty line or a `#` comment in column 0 ends a logical
/// line, while an indented comment is skipped without ending it; continuation text
/// with nothing to continue is ignored with a warning. Invalid UTF-8 is replaced,
/// never a panic.
pub fn logical_lines(bytes: &[u8]) -> Vec<LogicalLine> {
    let text = String::from_utf8_lossy(bytes);
    let mut out: Vec<LogicalLine> = Vec::new();
    let mut current: Option<LogicalLine> = None;
    let finish = |cur: &mut Option<LogicalLine>, out: &mut Vec<LogicalLine>| {
        if let Some(mut done) = cur.take() {
            done.text = done.text.trim().to_string();
            out.push(done);
        }
    };
    for (idx, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim();
        let starts_blank = raw.starts_with([' ', '\t']);
        if trimmed.is_empty() || (trimmed.starts_with('#') && !starts_blank) {
            finish(&mut current, &mut out);
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if starts_blank {
            match current.as_mut() {
                Some(cur) => cur.text.push_str(raw),
                None => log::warn!(
                    "line {}: logical line must not start with whitespace",
                    idx + 1
                ),
            }
            continue;
        }
        finish(&mut current, &mut out);
        current = Some(LogicalLine {
            line: idx + 1,
            text: raw.to_string(),
        });
    }
    finish(&mut current, &mut out);
    out
}

/// One table entry from a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Line the entry started on.
    pub line: usize,
    /// The key (already case-folded when the reader was asked to).
    pub key: String,
    /// The value, as written (trimmed).
    pub value: String,
}

/// Parse postmap(5) source: each logical line is `key whitespace value`. A line with a
/// key and no value gets an empty value, as postmap does (with a warning there).
pub fn parse_postmap(bytes: &[u8], fold: bool) -> Vec<Entry> {
    logical_lines(bytes)
        .into_iter()
        .map(|l| {
            let (key, value) = match l.text.find([' ', '\t']) {
                Some(pos) => (&l.text[..pos], l.text[pos..].trim()),
                None => (l.text.as_str(), ""),
            };
            Entry {
                line: l.line,
                key: fold_key(key, fold),
                value: value.to_string(),
            }
        })
        .collect()
}

/// Parse aliases(5) source: `name: value, value`. The name may be double-quoted; the
/// colon is not part of the key. Lines without a colon are skipped (postalias warns).
pub fn parse_aliases(bytes: &[u8], fold: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    for l in logical_lines(bytes) {
        let text = l.text.as_str();
        let (name, rest) = if let Some(quoted) = text.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], quoted[end + 1..].trim_start()),
                None => {
                    log::warn!("line {}: unbalanced quote in alias name", l.line);
                    continue;
                }
            }
        } else {
            match text.find(':') {
                Some(pos) => (text[..pos].trim_end(), &text[pos..]),
                None => {
                    log::warn!("line {}: need name:value pair", l.line);
                    continue;
                }
            }
        };
        let Some(value) = rest.strip_prefix(':') else {
            log::warn!("line {}: need name:value pair", l.line);
            continue;
        };
        out.push(Entry {
            line: l.line,
            key: fold_key(name, fold),
            value: collapse_space(value.trim()),
        });
    }
    out
}

/// postalias stores the right-hand side as its RFC 822 tokenizer writes it back: runs
/// of white space outside double quotes become one space (so a continuation line's
/// indentation does not show in the value, and `postalias -q` and `rostalias -q`
/// agree).
fn collapse_space(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut in_quote = false;
    let mut escaped = false;
    let mut pending_space = false;
    for c in value.chars() {
        if in_quote {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quote = false,
                _ => {}
            }
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        if c == '"' {
            in_quote = true;
        }
        out.push(c);
    }
    out
}

/// Lower-case a key when folding is on (Postfix folds fixed-string table keys).
pub fn fold_key(key: &str, fold: bool) -> String {
    if fold {
        key.to_lowercase()
    } else {
        key.to_string()
    }
}

/// Drop later duplicates of a key, keeping the first, as postmap does (it warns
/// "duplicate entry" and ignores the later one).
pub fn dedup_first(entries: Vec<Entry>) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        if seen.insert(e.key.clone()) {
            out.push(e);
        } else {
            log::warn!("line {}: duplicate entry: \"{}\"", e.line, e.key);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_values_collapse_space_outside_quotes() {
        let e = parse_aliases(b"team: alice,\n   bob\t, \"|cmd  a\"\n", true);
        assert_eq!(e[0].value, "alice, bob , \"|cmd  a\"");
    }

    #[test]
    fn continuation_and_comments() {
        let src = b"# comment\nfoo   bar\n  baz\n\n   # indented comment\nQux\tquux  \r\nlone\n";
        let e = parse_postmap(src, true);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].line, e[0].key.as_str(), e[0].value.as_str()),
            (2, "foo", "bar  baz")
        );
        assert_eq!((e[1].key.as_str(), e[1].value.as_str()), ("qux", "quux"));
        assert_eq!((e[2].key.as_str(), e[2].value.as_str()), ("lone", ""));
    }

    #[test]
    fn blank_line_and_column0_comment_end_a_line() {
        let e = parse_postmap(
            b"a 1\n\n  orphan\nb 2\n  # indented\n  more\n#c\n  lost\n",
            true,
        );
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].value, "1");
        assert_eq!(e[1].value, "2  more");
    }

    #[test]
    fn fold_only_keys() {
        let e = parse_postmap(b"User@Example.COM Some Value\n", true);
        assert_eq!(e[0].key, "user@example.com");
        assert_eq!(e[0].value, "Some Value");
        let e = parse_postmap(b"User@Example.COM v\n", false);
        assert_eq!(e[0].key, "User@Example.COM");
    }

    #[test]
    fn aliases_shape() {
        let src = b"Postmaster: root\nteam: alice,\n  bob, |\"/bin/cmd\"\n\"odd name\": carol\nbroken line\n";
        let e = parse_aliases(src, true);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].key.as_str(), e[0].value.as_str()),
            ("postmaster", "root")
        );
        // postalias -q gives "alice, bob, ..." (checked against Debian's postalias).
        assert_eq!(e[1].value, "alice, bob, |\"/bin/cmd\"");
        assert_eq!(
            (e[2].key.as_str(), e[2].value.as_str()),
            ("odd name", "carol")
        );
    }

    #[test]
    fn duplicates_keep_first() {
        let e = dedup_first(parse_postmap(b"a 1\nA 2\nb 3\n", true));
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].value, "1");
    }
}
