//! `sendmail -bs`: an SMTP session on standard input and output, run as the invoking
//! user. Like Postfix's sendmail -bs for an ordinary user, each accepted message goes
//! in through the maildrop: the session hands sender, recipients and content to the
//! same submit path as the command-line mode (rostdrop), so pickup, not this process,
//! writes the queue file, and the file's owner is the real user. No relay control is
//! needed: a local user may send anywhere with plain sendmail too.
//!
//! The protocol is RFC 5321 with ENHANCEDSTATUSCODES (RFC 2034), PIPELINING, SIZE,
//! 8BITMIME and DSN (RET, ENVID on MAIL; NOTIFY on RCPT). The state machine is pure:
//! it reads lines from any `BufRead` and writes replies to any `Write`, with the
//! submission done by a closure, so it is unit-tested without processes.
//!
//! Partial: NOTIFY is per message in the maildrop hand-off (rostdrop takes one -N), so
//! when recipients of one transaction ask for different NOTIFY values the first one
//! given wins; ORCPT is accepted and not recorded.

use crate::address::check_address;
use std::io::{self, BufRead, Read, Write};

/// RFC 5321 4.5.3.1.4: a command line is at most 512 octets; we allow Postfix's
/// line_length_limit-like slack for long parameter lists.
pub const MAX_COMMAND_LINE: usize = 2048;
/// More recipients per transaction than this get 452 (Postfix's default
/// smtpd_recipient_limit is 1000).
pub const MAX_RECIPIENTS: usize = 1000;
/// Errors (bad commands) before the session is closed, like smtpd_hard_error_limit.
pub const MAX_ERRORS: usize = 20;

/// What the session needs from its surroundings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The greeting text after `220 ` (smtpd_banner expanded).
    pub banner: String,
    /// myhostname, for EHLO and QUIT replies.
    pub hostname: String,
    /// message_size_limit; 0 means none.
    pub size_limit: u64,
}

/// One mail transaction, as handed to the submit closure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    /// Envelope sender; "" for `<>`.
    pub sender: String,
    pub recipients: Vec<String>,
    /// NOTIFY given with the first RCPT that had one (see the module comment).
    pub notify: Option<String>,
    pub ret: Option<String>,
    pub envid: Option<String>,
    pub body: Option<String>,
}

/// How a submission went, for the reply to DATA's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitResult {
    Queued,
    /// Refused for good (bad address or content): the text goes in a 554.
    Rejected(String),
    /// A temporary failure (queue file system full, rostdrop unavailable).
    TempFail(String),
}

/// Reads one CRLF- or LF-terminated line of at most `max` bytes (without the ending).
/// `Ok(None)` at end of input; an over-long line is read to its end and reported as
/// `Err(too long)` so the session can answer 500 and go on.
fn read_line<R: BufRead>(r: &mut R, max: usize) -> io::Result<Option<Result<Vec<u8>, ()>>> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(max as u64 + 2)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() < max + 2 {
            // End of input in the middle of a line: treat it as the line.
            return Ok(Some(Ok(line)));
        }
        // Discard the rest of the long line, boundedly per read.
        loop {
            let mut sink = Vec::new();
            let k = r.by_ref().take(64 * 1024).read_until(b'\n', &mut sink)?;
            if k == 0 || sink.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Some(Err(())));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(Ok(line)))
}

/// `FROM:<addr> PARAMS` / `TO:<addr> PARAMS` -> (address, params). Accepts a space after
/// the colon and a bare address without brackets, as Postfix does by default.
fn parse_path<'a>(arg: &'a str, keyword: &str) -> Option<(String, Vec<&'a str>)> {
    let rest = arg.get(..keyword.len())?;
    if !rest.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let (addr, params) = if let Some(inner) = rest.strip_prefix('<') {
        let close = inner.find('>')?;
        (&inner[..close], &inner[close + 1..])
    } else {
        let end = rest.find(' ').unwrap_or(rest.len());
        (&rest[..end], &rest[end..])
    };
    if addr.contains(['<', '>']) {
        return None;
    }
    // A source route (`@a,@b:user@c`) is dropped, as RFC 5321 4.1.1.3 allows.
    let addr = match addr.starts_with('@') {
        true => addr.split_once(':').map_or(addr, |(_, a)| a),
        false => addr,
    };
    Some((
        addr.to_string(),
        params.split_whitespace().collect::<Vec<_>>(),
    ))
}

/// The session state between commands.
#[derive(Default)]
struct State {
    helo: bool,
    tx: Option<Transaction>,
}

/// Writes one reply line and flushes (PIPELINING clients wait for each group anyway;
/// stdout is a pipe, so small writes are cheap).
fn reply<W: Write>(w: &mut W, text: &str) -> io::Result<()> {
    w.write_all(text.as_bytes())?;
    w.write_all(b"\r\n")?;
    w.flush()
}

/// Runs a session until QUIT, end of input or too many errors.
pub fn run_session<R: BufRead, W: Write>(
    input: &mut R,
    out: &mut W,
    cfg: &SessionConfig,
    submit: &mut dyn FnMut(&Transaction, &[u8]) -> SubmitResult,
) -> io::Result<()> {
    reply(out, &format!("220 {}", cfg.banner))?;
    let mut st = State::default();
    let mut errors = 0usize;
    loop {
        if errors >= MAX_ERRORS {
            reply(out, "421 4.7.0 Error: too many errors")?;
            return Ok(());
        }
        let line = match read_line(input, MAX_COMMAND_LINE)? {
            None => return Ok(()),
            Some(Err(())) => {
                errors += 1;
                reply(out, "500 5.5.2 Error: line too long")?;
                continue;
            }
            Some(Ok(l)) => l,
        };
        let Ok(line) = String::from_utf8(line) else {
            errors += 1;
            reply(out, "500 5.5.2 Error: bad UTF-8 syntax")?;
            continue;
        };
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (line.trim().to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "HELO" | "EHLO" if arg.is_empty() => {
                errors += 1;
                reply(out, &format!("501 5.5.4 Syntax: {verb} hostname"))?;
            }
            "HELO" => {
                st = State {
                    helo: true,
                    tx: None,
                };
                reply(out, &format!("250 {}", cfg.hostname))?;
            }
            "EHLO" => {
                st = State {
                    helo: true,
                    tx: None,
                };
                let mut lines = vec![cfg.hostname.clone(), "PIPELINING".into()];
                if cfg.size_limit > 0 {
                    lines.push(format!("SIZE {}", cfg.size_limit));
                } else {
                    lines.push("SIZE".into());
                }
                lines.extend(["8BITMIME", "DSN", "ENHANCEDSTATUSCODES"].map(String::from));
                let last = lines.len() - 1;
                for (i, l) in lines.iter().enumerate() {
                    let sep = if i == last { ' ' } else { '-' };
                    out.write_all(format!("250{sep}{l}\r\n").as_bytes())?;
                }
                out.flush()?;
            }
            "MAIL" => match mail(&mut st, arg, cfg) {
                Ok(text) | Err(text) if text.starts_with('2') => reply(out, &text)?,
                Ok(text) | Err(text) => {
                    errors += 1;
                    reply(out, &text)?
                }
            },
            "RCPT" => match rcpt(&mut st, arg) {
                Ok(text) => reply(out, &text)?,
                Err(text) => {
                    errors += 1;
                    reply(out, &text)?
                }
            },
            "DATA" => {
                if !arg.is_empty() {
                    errors += 1;
                    reply(out, "501 5.5.4 Syntax: DATA")?;
                    continue;
                }
                let Some(tx) = st.tx.take() else {
                    errors += 1;
                    reply(out, "503 5.5.1 Error: need RCPT command")?;
                    continue;
                };
                if tx.recipients.is_empty() {
                    st.tx = Some(tx);
                    errors += 1;
                    reply(out, "554 5.5.1 Error: no valid recipients")?;
                    continue;
                }
                reply(out, "354 End data with <CR><LF>.<CR><LF>")?;
                let content = read_data(input, cfg.size_limit)?;
                let text = match content {
                    None => return Ok(()),
                    Some(Err(())) => "552 5.3.4 Error: message file too big".to_string(),
                    Some(Ok(content)) => match submit(&tx, &content) {
                        SubmitResult::Queued => "250 2.0.0 Ok: queued".to_string(),
                        SubmitResult::Rejected(why) => format!("554 5.6.0 Error: {why}"),
                        SubmitResult::TempFail(why) => {
                            format!("451 4.3.0 Error: queue file write error: {why}")
                        }
                    },
                };
                reply(out, &text)?;
            }
            "RSET" => {
                st.tx = None;
                reply(out, "250 2.0.0 Ok")?;
            }
            "NOOP" => reply(out, "250 2.0.0 Ok")?,
            "VRFY" => reply(
                out,
                "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
            )?,
            "QUIT" => {
                reply(out, "221 2.0.0 Bye")?;
                return Ok(());
            }
            "STARTTLS" | "AUTH" | "ETRN" | "BDAT" => {
                errors += 1;
                reply(out, "502 5.5.1 Error: command not implemented")?;
            }
            _ => {
                errors += 1;
                reply(out, "500 5.5.2 Error: command not recognized")?;
            }
        }
    }
}

/// MAIL FROM: the 250 on success, the error reply otherwise.
fn mail(st: &mut State, arg: &str, cfg: &SessionConfig) -> Result<String, String> {
    if !st.helo {
        return Err("503 5.5.1 Error: send HELO/EHLO first".into());
    }
    if st.tx.is_some() {
        return Err("503 5.5.1 Error: nested MAIL command".into());
    }
    let (addr, params) =
        parse_path(arg, "FROM:").ok_or("501 5.5.4 Syntax: MAIL FROM:<address>".to_string())?;
    if !addr.is_empty() && check_address(&addr).is_err() {
        return Err(format!("501 5.1.7 Bad sender address syntax: <{addr}>"));
    }
    let mut tx = Transaction {
        sender: addr,
        ..Transaction::default()
    };
    for p in params {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        match name.to_ascii_uppercase().as_str() {
            "SIZE" => {
                let size: u64 = value
                    .parse()
                    .map_err(|_| "501 5.5.4 Bad message size syntax".to_string())?;
                if cfg.size_limit > 0 && size > cfg.size_limit {
                    return Err("552 5.3.4 Message size exceeds fixed limit".into());
                }
            }
            "BODY" => {
                tx.body = Some(match value.to_ascii_uppercase().as_str() {
                    "7BIT" => "7BIT".into(),
                    "8BITMIME" => "8BITMIME".into(),
                    _ => return Err("501 5.5.4 Unsupported BODY parameter value".into()),
                })
            }
            "RET" => {
                tx.ret = Some(match value.to_ascii_uppercase().as_str() {
                    "FULL" => "FULL".into(),
                    "HDRS" => "HDRS".into(),
                    _ => return Err("501 5.5.4 Bad RET parameter syntax".into()),
                })
            }
            "ENVID" => {
                let decoded = xtext_decode(value)
                    .filter(|v| !v.is_empty() && v.len() <= 100)
                    .ok_or("501 5.5.4 Bad ENVID parameter syntax".to_string())?;
                tx.envid = Some(decoded);
            }
            _ => return Err(format!("555 5.5.4 Unsupported option: {p}")),
        }
    }
    st.tx = Some(tx);
    Ok("250 2.1.0 Ok".into())
}

/// RCPT TO: the 250 on success, the error reply otherwise.
fn rcpt(st: &mut State, arg: &str) -> Result<String, String> {
    let Some(tx) = st.tx.as_mut() else {
        return Err("503 5.5.1 Error: need MAIL command".into());
    };
    let (addr, params) =
        parse_path(arg, "TO:").ok_or("501 5.5.4 Syntax: RCPT TO:<address>".to_string())?;
    if addr.is_empty() || check_address(&addr).is_err() {
        return Err(format!("501 5.1.3 Bad recipient address syntax: <{addr}>"));
    }
    if tx.recipients.len() >= MAX_RECIPIENTS {
        return Err("452 4.5.3 Error: too many recipients".into());
    }
    let mut notify = None;
    for p in params {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        match name.to_ascii_uppercase().as_str() {
            "NOTIFY" => {
                notify = Some(
                    crate::args::parse_notify(value)
                        .map_err(|_| "501 5.5.4 Error: Bad NOTIFY parameter syntax".to_string())?,
                )
            }
            "ORCPT" => {
                if xtext_decode(value.split_once(';').map_or("", |(_, a)| a)).is_none() {
                    return Err("501 5.5.4 Error: Bad ORCPT parameter syntax".into());
                }
            }
            _ => return Err(format!("555 5.5.4 Unsupported option: {p}")),
        }
    }
    if tx.notify.is_none() {
        tx.notify = notify;
    }
    tx.recipients.push(addr);
    Ok("250 2.1.5 Ok".into())
}

/// RFC 3461 xtext: `+HH` escapes; printable ASCII only, no `+` or `=` unescaped.
fn xtext_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = s.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(hex, 16).ok()?;
                if !(0x21..0x7f).contains(&v) {
                    return None;
                }
                out.push(v as char);
                i += 3;
            }
            c if (0x21..0x7f).contains(&c) && c != b'=' => {
                out.push(c as char);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Reads DATA until a lone `.`: dot-unstuffed, CRLF to LF, bounded by `limit` (the
/// rest is read and dropped so the session stays in step). `None` at end of input.
fn read_data<R: BufRead>(r: &mut R, limit: u64) -> io::Result<Option<Result<Vec<u8>, ()>>> {
    let mut out = Vec::new();
    let mut too_big = false;
    loop {
        let mut line = Vec::new();
        let n = r.by_ref().take(64 * 1024).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        let complete = line.last() == Some(&b'\n');
        if complete {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line == b"." {
                break;
            }
        }
        if too_big {
            continue;
        }
        let body = if line.first() == Some(&b'.') {
            &line[1..]
        } else {
            &line[..]
        };
        out.extend_from_slice(body);
        if complete {
            out.push(b'\n');
        }
        if limit != 0 && out.len() as u64 > limit {
            too_big = true;
            out = Vec::new();
        }
    }
    Ok(Some(if too_big { Err(()) } else { Ok(out) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SessionConfig {
        SessionConfig {
            banner: "mx.example ESMTP Rostfix".into(),
            hostname: "mx.example".into(),
            size_limit: 1000,
        }
    }

    fn session(input: &str) -> (String, Vec<(Transaction, Vec<u8>)>) {
        let mut got = Vec::new();
        let mut out = Vec::new();
        let mut submit = |t: &Transaction, c: &[u8]| {
            got.push((t.clone(), c.to_vec()));
            SubmitResult::Queued
        };
        run_session(&mut input.as_bytes(), &mut out, &cfg(), &mut submit).unwrap();
        (String::from_utf8(out).unwrap(), got)
    }

    fn codes(out: &str) -> Vec<String> {
        out.lines()
            .filter(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
            .map(|l| l[..3].to_string())
            .collect()
    }

    #[test]
    fn full_transaction_with_dsn() {
        let (out, got) = session(
            "EHLO client\r\nMAIL FROM:<a@x.org> RET=HDRS ENVID=Q+2B1 BODY=8BITMIME\r\n\
             RCPT TO:<b@y.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b@y.org\r\nRCPT TO:<c>\r\n\
             DATA\r\nSubject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n",
        );
        assert_eq!(
            codes(&out),
            ["220", "250", "250", "250", "250", "354", "250", "221"]
        );
        assert!(
            out.contains("250-ENHANCEDSTATUSCODES\r\n")
                || out.contains("250 ENHANCEDSTATUSCODES\r\n")
        );
        assert!(out.contains("250-DSN\r\n"));
        assert!(out.contains("250 2.0.0 Ok: queued\r\n"));
        assert_eq!(got.len(), 1);
        let (t, c) = &got[0];
        assert_eq!(t.sender, "a@x.org");
        assert_eq!(t.recipients, ["b@y.org", "c"]);
        assert_eq!(t.notify.as_deref(), Some("SUCCESS,DELAY"));
        assert_eq!(t.ret.as_deref(), Some("HDRS"));
        assert_eq!(t.envid.as_deref(), Some("Q+1"));
        assert_eq!(t.body.as_deref(), Some("8BITMIME"));
        assert_eq!(c, b"Subject: hi\n\n.dot\nbody\n");
    }

    #[test]
    fn sequence_errors_have_enhanced_codes() {
        let (out, got) = session(
            "MAIL FROM:<a@x>\r\nHELO c\r\nRCPT TO:<b@y>\r\nDATA\r\nMAIL FROM:<a@x>\r\n\
             MAIL FROM:<a@x>\r\nDATA\r\nRCPT TO:<bad address@y>\r\nFOO\r\nRSET\r\nQUIT\r\n",
        );
        assert!(got.is_empty());
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[1].starts_with("503 5.5.1"), "{out}");
        assert!(lines[3].starts_with("503 5.5.1 Error: need MAIL"), "{out}");
        assert!(lines[4].starts_with("503 5.5.1 Error: need RCPT"), "{out}");
        assert!(
            lines[6].starts_with("503 5.5.1 Error: nested MAIL"),
            "{out}"
        );
        assert!(
            lines[7].starts_with("554 5.5.1 Error: no valid recipients"),
            "{out}"
        );
        assert!(lines[8].starts_with("501 5.1.3"), "{out}");
        assert!(lines[9].starts_with("500 5.5.2"), "{out}");
        assert_eq!(lines[10], "250 2.0.0 Ok");
        assert_eq!(lines[11], "221 2.0.0 Bye");
    }

    #[test]
    fn size_limits() {
        let (out, got) = session("EHLO c\r\nMAIL FROM:<a@x> SIZE=5000\r\nQUIT\r\n");
        assert!(out.contains("552 5.3.4 Message size exceeds fixed limit"));
        assert!(got.is_empty());
        let big = "x".repeat(1500);
        let (out, got) = session(&format!(
            "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<r@y>\r\nDATA\r\n{big}\r\n.\r\nNOOP\r\nQUIT\r\n"
        ));
        assert!(got.is_empty());
        assert!(out.contains("552 5.3.4 Error: message file too big\r\n250 2.0.0 Ok\r\n"));
    }

    #[test]
    fn unknown_parameters_and_long_lines() {
        let long = "x".repeat(5000);
        let (out, _) = session(&format!(
            "EHLO c\r\nMAIL FROM:<a@x> FOO=1\r\nNOOP {long}\r\nQUIT\r\n"
        ));
        assert!(out.contains("555 5.5.4 Unsupported option: FOO=1"), "{out}");
        assert!(out.contains("500 5.5.2 Error: line too long"), "{out}");
        assert!(out.ends_with("221 2.0.0 Bye\r\n"));
    }

    #[test]
    fn end_of_input_in_data_submits_nothing() {
        let (_, got) = session("HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\npartial\r\n");
        assert!(got.is_empty());
    }

    #[test]
    fn too_many_errors_closes() {
        let (out, _) = session(&"BAD\r\n".repeat(30));
        assert!(out.ends_with("421 4.7.0 Error: too many errors\r\n"));
    }

    #[test]
    fn xtext() {
        assert_eq!(xtext_decode("a+2Bb").as_deref(), Some("a+b"));
        assert_eq!(xtext_decode("a+0Ab"), None);
        assert_eq!(xtext_decode("a=b"), None);
        assert_eq!(xtext_decode("a+2"), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut out = Vec::new();
            let mut submit = |_: &Transaction, _: &[u8]| SubmitResult::Queued;
            let _ = run_session(&mut &input[..], &mut out, &cfg(), &mut submit);
        }
    }
}
