//! SMTP replies: a three-digit code, an optional RFC 3463 enhanced status code, and one
//! or more text lines, rendered as `250-first` ... `250 last` with CRLF endings.
//!
//! Reply text can carry client-supplied data (an address in "Relay access denied"), so
//! rendering replaces every control character with `?`: a reply can never be split or
//! extended by what the client sent.

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    /// RFC 3463 code such as "2.1.0"; None for the greeting and the HELO/EHLO replies,
    /// where RFC 2034 does not use one.
    enhanced: Option<&'static str>,
    lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code: `250 2.1.0 Ok`.
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced status code (greeting, HELO, EHLO).
    pub fn plain(code: u16, lines: Vec<String>) -> Reply {
        let lines = if lines.is_empty() {
            vec![String::new()]
        } else {
            lines
        };
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// 4xx and 5xx replies count as client errors.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// The first line as it appears in logs: `554 5.7.1 <x>: Relay access denied`.
    pub fn log_text(&self) -> String {
        let first = self.lines.first().map(String::as_str).unwrap_or("");
        match self.enhanced {
            Some(e) => format!("{} {} {}", self.code, e, sanitize(first)),
            None => format!("{} {}", self.code, sanitize(first)),
        }
    }

    /// Appends the wire form (every line CRLF-terminated) to `out`.
    pub fn render_into(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let text = match self.enhanced {
                Some(e) => format!("{}{}{} {}\r\n", self.code, sep, e, sanitize(line)),
                None => format!("{}{}{}\r\n", self.code, sep, sanitize(line)),
            };
            out.extend_from_slice(text.as_bytes());
        }
    }

    /// The wire form as a new buffer.
    #[cfg(test)]
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.render_into(&mut out);
        out
    }
}

/// Replaces control characters (CR, LF, NUL, ...) so text stays on its line.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_with_enhanced_code() {
        assert_eq!(Reply::new(250, "2.1.0", "Ok").render(), b"250 2.1.0 Ok\r\n");
    }

    #[test]
    fn multi_line_plain() {
        let r = Reply::plain(
            250,
            vec!["mx.example".into(), "PIPELINING".into(), "8BITMIME".into()],
        );
        assert_eq!(
            r.render(),
            b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
    }

    #[test]
    fn control_characters_are_masked() {
        let r = Reply::new(554, "5.7.1", "<a\r\nb>: Relay access denied");
        assert_eq!(r.render(), b"554 5.7.1 <a??b>: Relay access denied\r\n");
        assert_eq!(r.log_text(), "554 5.7.1 <a??b>: Relay access denied");
    }

    #[test]
    fn errors_are_4xx_and_5xx() {
        assert!(Reply::new(421, "4.4.2", "x").is_error());
        assert!(!Reply::new(354, "2.0.0", "x").is_error());
        assert_eq!(Reply::plain(220, vec![]).render(), b"220 \r\n");
    }
}
