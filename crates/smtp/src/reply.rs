//! SMTP server replies as the client reads them: bounded line reading (length and line
//! count), multi-line assembly (`250-...` continued by `250 ...`), and the mapping of a
//! reply to an enhanced status code (RFC 3463) the way Postfix reports it.

use rostfix_maillog::printable;
use std::io::BufRead;
use thiserror::Error;

/// Longest reply line accepted (RFC 5321 says 512; real servers send longer text).
pub const MAX_LINE: usize = 8192;
/// Most lines in one multi-line reply (EHLO lists a dozen or two).
pub const MAX_LINES: usize = 100;

/// Why a reply could not be read.
#[derive(Debug, Error)]
pub enum ReplyError {
    #[error("lost connection")]
    Closed,
    #[error("conversation timed out")]
    Timeout,
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    #[error("reply line too long")]
    TooLong,
    #[error("too many reply lines")]
    TooManyLines,
    #[error("malformed reply: {0}")]
    Malformed(String),
}

impl From<std::io::Error> for ReplyError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ReplyError::Timeout,
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => ReplyError::Closed,
            _ => ReplyError::Io(e),
        }
    }
}

/// One complete reply: the three-digit code and the text of each line (without the
/// code and separator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// First digit of the code: 2, 3, 4 or 5.
    pub fn class(&self) -> u16 {
        self.code / 100
    }

    /// The enhanced status code: taken from the start of the first line when its class
    /// agrees with the reply code, else derived as `class.0.0` (Postfix does the same).
    pub fn dsn(&self) -> String {
        let first = self.lines.first().map(String::as_str).unwrap_or("");
        if let Some(word) = first.split_whitespace().next() {
            if is_enhanced(word) && word.starts_with(char::from(b'0' + self.class() as u8)) {
                return word.to_string();
            }
        }
        format!("{}.0.0", self.class())
    }

    /// Postfix's one-line rendering: `250 2.0.0 Ok: queued as X`; continuation lines are
    /// joined with a space.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
            .trim_end()
            .to_string()
    }
}

/// `d.ddd.ddd` with a class digit 2, 4 or 5.
fn is_enhanced(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads one (possibly multi-line) reply, at most [`MAX_LINE`] bytes per line and
/// [`MAX_LINES`] lines.
pub fn read_reply<R: BufRead>(reader: &mut R) -> Result<Reply, ReplyError> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        if lines.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
        let line = read_line(reader)?;
        let bytes = line.as_bytes();
        if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
            return Err(ReplyError::Malformed(printable(&line)));
        }
        let this: u16 = line[..3]
            .parse()
            .map_err(|_| ReplyError::Malformed(printable(&line)))?;
        if !(200..600).contains(&this) {
            return Err(ReplyError::Malformed(printable(&line)));
        }
        if *code.get_or_insert(this) != this {
            return Err(ReplyError::Malformed(printable(&line)));
        }
        let (more, text) = match bytes.get(3) {
            None => (false, ""),
            Some(b' ') => (false, &line[4..]),
            Some(b'-') => (true, &line[4..]),
            Some(_) => return Err(ReplyError::Malformed(printable(&line))),
        };
        lines.push(printable(text));
        if !more {
            return Ok(Reply { code: this, lines });
        }
    }
}

/// One line without its CRLF (a bare LF is accepted), bounded by [`MAX_LINE`].
fn read_line<R: BufRead>(reader: &mut R) -> Result<String, ReplyError> {
    let mut buf = Vec::new();
    let n = std::io::Read::take(&mut *reader, MAX_LINE as u64 + 2).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(ReplyError::Closed);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if n >= MAX_LINE {
            ReplyError::TooLong
        } else {
            ReplyError::Closed
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Reply, ReplyError> {
        read_reply(&mut s.as_bytes())
    }

    #[test]
    fn single_and_multi_line() {
        let r = parse("250 2.0.0 Ok: queued as ABC\r\n").unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.dsn(), "2.0.0");
        assert_eq!(r.text(), "250 2.0.0 Ok: queued as ABC");
        let r = parse("250-b.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n").unwrap();
        assert_eq!(r.lines, vec!["b.test", "PIPELINING", "SIZE 1000"]);
    }

    #[test]
    fn dsn_derived_when_missing_or_mismatched() {
        assert_eq!(parse("550 no such user\r\n").unwrap().dsn(), "5.0.0");
        assert_eq!(parse("451 2.0.0 odd\r\n").unwrap().dsn(), "4.0.0");
        assert_eq!(parse("550 5.1.1 unknown\r\n").unwrap().dsn(), "5.1.1");
        assert_eq!(parse("421\r\n").unwrap().dsn(), "4.0.0");
    }

    #[test]
    fn rejects_garbage_mixed_codes_and_eof() {
        assert!(matches!(parse("hello\r\n"), Err(ReplyError::Malformed(_))));
        assert!(matches!(
            parse("250-a\r\n251 b\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(parse("250-a\r\n"), Err(ReplyError::Closed)));
        assert!(matches!(parse(""), Err(ReplyError::Closed)));
        assert!(matches!(parse("250 abc"), Err(ReplyError::Closed)));
    }

    #[test]
    fn bounds_line_length_and_count() {
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE + 10));
        assert!(matches!(parse(&long), Err(ReplyError::TooLong)));
        let many = "250-x\r\n".repeat(MAX_LINES + 1) + "250 y\r\n";
        assert!(matches!(parse(&many), Err(ReplyError::TooManyLines)));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = read_reply(&mut data.as_slice());
        }
    }
}
