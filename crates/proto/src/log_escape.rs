//! Untrusted bytes made fit for one log line, as Postfix's escape() shows them: CR, LF,
//! TAB and backslash as C escapes, other control and non-ASCII bytes as three octal
//! digits. smtpd's pipelining lines and the PROXY header warnings (smtpd and
//! postscreen) share it so the same bytes always look the same in the log.

/// `bytes` as printable ASCII.
pub fn log_escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::log_escape;

    #[test]
    fn line_ends_and_binary_are_shown_as_postfix_does() {
        assert_eq!(log_escape(b"MAIL FROM:<a@b>\r\n"), "MAIL FROM:<a@b>\\r\\n");
        assert_eq!(log_escape(b"a\tb\\c\x00\xff"), "a\\tb\\\\c\\000\\377");
    }
}
