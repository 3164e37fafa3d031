//! The bytes written to the command's standard input: the envelope lines the flags ask
//! for (From_, Return-Path:, X-Original-To:, Delivered-To:, in Postfix's order), then
//! the message with `>`/`.` quoting, the `eol=` line end and the `B` blank line.

use crate::flags::Flags;

/// The envelope facts the prepended lines need.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// Envelope sender; empty for `<>`.
    pub sender: &'a str,
    /// What the From_ line says for `<>` (null_sender=).
    pub null_sender: &'a str,
    /// The (single) recipient for D, and its original address for O.
    pub recipient: &'a str,
    pub original: &'a str,
    /// The From_ line's date (asctime form).
    pub date: &'a str,
}

/// Builds the command's input from the stored `content` (LF line ends).
pub fn command_input(content: &[u8], env: &Envelope<'_>, flags: &Flags, eol: &str) -> Vec<u8> {
    let eol = eol.as_bytes();
    let mut out = Vec::with_capacity(content.len() + 256);
    let line = |text: String, out: &mut Vec<u8>| {
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(eol);
    };
    if flags.from_line {
        let who = if env.sender.is_empty() {
            env.null_sender
        } else {
            env.sender
        };
        line(format!("From {who}  {}", env.date), &mut out);
    }
    if flags.return_path {
        line(format!("Return-Path: <{}>", env.sender), &mut out);
    }
    if flags.original_to {
        line(format!("X-Original-To: {}", env.original), &mut out);
    }
    if flags.delivered_to {
        line(
            format!("Delivered-To: {}", env.recipient.to_lowercase()),
            &mut out,
        );
    }
    let mut last_empty = false;
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    if !content.is_empty() {
        for l in body.split(|&b| b == b'\n') {
            if flags.from_quote && l.starts_with(b"From ") {
                out.push(b'>');
            }
            if flags.dot_quote && l.starts_with(b".") {
                out.push(b'.');
            }
            out.extend_from_slice(l);
            out.extend_from_slice(eol);
            last_empty = l.is_empty();
        }
    }
    if flags.blank_line && !last_empty {
        out.extend_from_slice(eol);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(sender: &'a str) -> Envelope<'a> {
        Envelope {
            sender,
            null_sender: "MAILER-DAEMON",
            recipient: "Alice@Example.ORG",
            original: "alias@Example.org",
            date: "Thu Dec  3 19:00:00 2026",
        }
    }

    #[test]
    fn prepended_lines_in_postfix_order() {
        let flags = Flags::parse("FRDO").unwrap();
        let got = command_input(b"Subject: x\n\nbody\n", &env(""), &flags, "\n");
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "From MAILER-DAEMON  Thu Dec  3 19:00:00 2026\nReturn-Path: <>\n\
             X-Original-To: alias@Example.org\nDelivered-To: alice@example.org\n\
             Subject: x\n\nbody\n"
        );
    }

    #[test]
    fn quoting_eol_and_blank_line() {
        let flags = Flags::parse(">.B").unwrap();
        let got = command_input(b"S: x\n\nFrom me\n.dot\nend", &env("b@x"), &flags, "\r\n");
        assert_eq!(
            got,
            b"S: x\r\n\r\n>From me\r\n..dot\r\nend\r\n\r\n".to_vec()
        );
        // Without the flags the message passes unchanged.
        let plain = command_input(b"a\nFrom b\n", &env("b@x"), &Flags::default(), "\n");
        assert_eq!(plain, b"a\nFrom b\n".to_vec());
    }
}
