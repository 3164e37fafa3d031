//! Logical lines of main.cf and master.cf: comments, blank lines and continuations.
//!
//! Both files share Postfix's rules: a line whose first non-space character is `#` is
//! a comment, a blank line is ignored, and a line starting with white space continues
//! the previous logical line. Comment and blank lines do not end a logical line (as in
//! Postfix's readlline), so a comment may sit between an entry and its continuation.

use crate::ConfigError;
use std::path::Path;

/// One logical line: physical lines joined with one space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogicalLine {
    pub text: String,
    /// 1-based number of the first physical line.
    pub first: usize,
    /// 1-based number of the last physical line that belongs to it.
    pub last: usize,
}

/// True for a line Postfix skips: blank, or `#` as the first non-space character.
pub(crate) fn is_ignored(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// True for a continuation line (starts with white space and is not ignored).
pub(crate) fn is_continuation(line: &str) -> bool {
    !is_ignored(line) && line.starts_with(|c: char| c.is_whitespace())
}

/// Splits text into logical lines. A continuation with nothing before it is a
/// [`ConfigError::Syntax`] naming `file` and the line.
pub(crate) fn logical_lines(text: &str, file: &Path) -> Result<Vec<LogicalLine>, ConfigError> {
    let mut out: Vec<LogicalLine> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if is_ignored(line) {
            continue;
        }
        if is_continuation(line) {
            match out.last_mut() {
                Some(current) => {
                    current.text.push(' ');
                    current.text.push_str(line.trim());
                    current.last = number;
                }
                None => {
                    return Err(ConfigError::Syntax {
                        file: file.to_path_buf(),
                        line: number,
                        message: "continuation line without a preceding entry".to_string(),
                    })
                }
            }
        } else {
            out.push(LogicalLine {
                text: line.trim_end().to_string(),
                first: number,
                last: number,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_continuations_and_skips_comments() {
        let text =
            "a = 1\n  2\n# comment\n\t3\n\nb = x # not a comment\n   # indented comment\nc=\n";
        let lines = logical_lines(text, Path::new("main.cf")).unwrap_or_default();
        assert_eq!(
            lines,
            vec![
                LogicalLine {
                    text: "a = 1 2 3".into(),
                    first: 1,
                    last: 4
                },
                LogicalLine {
                    text: "b = x # not a comment".into(),
                    first: 6,
                    last: 6
                },
                LogicalLine {
                    text: "c=".into(),
                    first: 8,
                    last: 8
                },
            ]
        );
    }

    #[test]
    fn leading_continuation_is_an_error() {
        let err = logical_lines("# c\n  x = 1\n", Path::new("/etc/rostfix/main.cf"));
        let message = err.map(|_| String::new()).unwrap_or_else(|e| e.to_string());
        assert!(
            message.contains("/etc/rostfix/main.cf, line 2"),
            "{message}"
        );
    }

    #[test]
    fn crlf_lines_are_trimmed() {
        let lines = logical_lines("a = 1\r\n b\r\n", Path::new("f")).unwrap_or_default();
        assert_eq!(lines[0].text, "a = 1 b");
    }
}
