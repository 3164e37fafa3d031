//! postscreen's own small SMTP engine (Postfix's postscreen_smtpd.c), for clients
//! that failed an enforced test (every RCPT is refused with the test's reply and
//! logged as `NOQUEUE: reject: RCPT ...`) and for the deep protocol tests, which can
//! only be watched in an SMTP dialogue: command pipelining without PIPELINING being
//! announced, non-SMTP commands (`CONNECT`, `GET`, header lines), and bare newlines.
//! A client passes those tests when it reaches RCPT; it gets the 4xx of
//! `rcpt_reply` and, having passed, is handed to smtpd when it comes back.

use crate::action::Action;
use crate::cache::Test;
use crate::reply::escape;
use crate::session::{unix_now, Session};
use rostfix_smtpd::{NetStream, Transport};
use std::io::{self, Read};
use std::time::Duration;

/// One read from the client.
enum Input {
    Line(Vec<u8>),
    Eof,
    TooLong,
    Timeout,
}

/// The client's bytes read and not yet taken as lines. Its own buffer rather than a
/// BufReader, because the source changes under it at STARTTLS: from the socket to
/// the TLS stream (`Session::tls`).
#[derive(Default)]
struct LineReader {
    buf: Vec<u8>,
    start: usize,
}

impl LineReader {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drops what the client sent ahead (plaintext pipelined behind STARTTLS must
    /// never be read as if it came through TLS).
    fn discard(&mut self) -> usize {
        let n = self.buffered().len();
        self.buf.clear();
        self.start = 0;
        n
    }

    fn read_line(&mut self, s: &mut Session<'_>, limit: usize) -> Input {
        let mut line = Vec::new();
        loop {
            let available = self.buffered();
            if !available.is_empty() {
                let (taken, done) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (available.len(), false),
                };
                line.extend_from_slice(&available[..taken]);
                self.start += taken;
                if line.len() > limit {
                    return Input::TooLong;
                }
                if done {
                    return Input::Line(line);
                }
                continue;
            }
            self.discard();
            let mut chunk = [0u8; 4096];
            let read = match &mut s.tls {
                Some(tls) => tls.read(&mut chunk),
                None => (&s.stream).read(&mut chunk),
            };
            match read {
                Ok(0) => {
                    return if line.is_empty() {
                        Input::Eof
                    } else {
                        Input::Line(line)
                    }
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Input::Timeout
                }
                Err(_) => return Input::Eof,
            }
        }
    }
}

fn is_header(word: &str) -> bool {
    word.len() > 1
        && word.ends_with(':')
        && word[..word.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b':')
}

const COMMANDS: &[&str] = &[
    "HELO", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "VRFY",
    "ETRN", "QUIT", "XCLIENT", "XFORWARD",
];

/// The address between `<` and `>` after `FROM:`/`TO:`, or the bare word.
fn address(args: &str) -> Option<String> {
    let (_, rest) = args.split_once(':')?;
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        return Some(inner[..end].to_string());
    }
    rest.split_whitespace().next().map(str::to_string)
}

/// The dialogue's own state.
struct Dialogue {
    helo: Option<String>,
    protocol: &'static str,
    sender: Option<String>,
    /// The previous command, for "after X" in log lines.
    last: String,
    count: u32,
    skip: [bool; 3],
}

fn deep_index(test: Test) -> usize {
    test as usize - Test::Pipelining as usize
}

/// Runs the engine until the client quits, hangs up or is dropped.
pub fn run(s: &mut Session<'_>) {
    // A client that failed a test before the greeting gets every deep test, so that
    // the log says as much as possible about it (as Postfix does).
    if s.enforced {
        for t in [Test::Pipelining, Test::NonSmtp, Test::BareNewline] {
            s.todo[t as usize] = true;
        }
    }
    let limit = s.settings().command_time_limit.max(Duration::from_secs(1));
    if s.stream.set_read_timeout(Some(limit)).is_err() {
        s.drop_session("421 4.3.2 No system resources");
        return;
    }
    let mut reader = LineReader::default();
    // No banner for a client that spoke first: it is not listening anyway.
    if !s.pregreet_failed {
        let greeting = format!("220 {}", s.settings().smtpd_banner);
        if !s.send(&greeting) {
            s.hang_up("tests after SMTP handshake");
            return;
        }
    }
    let mut d = Dialogue {
        helo: None,
        protocol: "SMTP",
        sender: None,
        last: "CONNECT".to_string(),
        count: 0,
        skip: [false; 3],
    };
    let hostname = s.settings().myhostname.clone();
    let generic_421 = format!("421 4.7.0 {hostname} Service unavailable - try again later");
    loop {
        let line = match reader.read_line(s, s.settings().line_length_limit) {
            Input::Line(l) => l,
            Input::Eof => {
                s.hang_up("tests after SMTP handshake");
                return;
            }
            Input::Timeout => {
                log::info!("COMMAND TIME LIMIT from {} after {}", s.who(), d.last);
                s.drop_session(&format!("421 4.4.2 {hostname} Error: timeout exceeded"));
                return;
            }
            Input::TooLong => {
                log::info!("COMMAND LENGTH LIMIT from {} after {}", s.who(), d.last);
                s.drop_session(&generic_421);
                return;
            }
        };
        let bare_newline = line.ends_with(b"\n") && !line.ends_with(b"\r\n");
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (word, args) = match text.split_once(' ') {
            Some((w, a)) => (w, a.trim()),
            None => (text, ""),
        };
        let command = word.to_ascii_uppercase();
        let known = COMMANDS.contains(&command.as_str());
        let now = unix_now();

        if bare_newline && deep_due(s, &d, Test::BareNewline) {
            log::info!("BARE NEWLINE from {} after {}", s.who(), d.last);
            crate::session::verdict("BARE_NEWLINE");
            if !deep_fail(
                s,
                &mut d,
                Test::BareNewline,
                "521 5.5.1 Protocol error",
                now,
            ) {
                return;
            }
        }
        if !known
            && deep_due(s, &d, Test::NonSmtp)
            && (is_header(word) || s.settings().forbidden_commands.contains(&command))
        {
            log::info!(
                "NON-SMTP COMMAND from {} after {}: {}",
                s.who(),
                d.last,
                escape(text.as_bytes(), 100)
            );
            crate::session::verdict("NON_SMTP_COMMAND");
            if !deep_fail(
                s,
                &mut d,
                Test::NonSmtp,
                "521 5.7.0 Error: I can break rules, too. Goodbye.",
                now,
            ) {
                return;
            }
        }
        let has_payload = command == "DATA" || command == "BDAT";
        if !has_payload && deep_due(s, &d, Test::Pipelining) {
            let buffered = reader.buffered().to_vec();
            let more = !buffered.is_empty()
                || match &mut s.tls {
                    Some(tls) => tls.input_ready(),
                    None => crate::wait::readable(&s.stream, Duration::ZERO).unwrap_or(false),
                };
            if more {
                let mut peek = buffered;
                if peek.is_empty() && s.tls.is_none() {
                    let mut buf = [0u8; 100];
                    if let Ok(n) = s.stream.peek(&mut buf) {
                        peek.extend_from_slice(&buf[..n]);
                    }
                }
                log::info!(
                    "COMMAND PIPELINING from {} after {}: {}",
                    s.who(),
                    escape(command.as_bytes(), 100),
                    escape(&peek, 100)
                );
                crate::session::verdict("PIPELINING");
                if !deep_fail(s, &mut d, Test::Pipelining, "521 5.5.1 Protocol error", now) {
                    return;
                }
            }
        }
        if command == "RCPT" {
            // Reaching RCPT is what passes the deep tests not failed on the way.
            for (t, ttl) in deep_ttls(s) {
                let i = t as usize;
                if s.todo[i] && !s.pass[i] && !d.skip[deep_index(t)] {
                    s.pass[i] = true;
                    s.stamps[i] = now + ttl;
                }
            }
        }
        d.count += 1;
        let count_limit = s.settings().command_count_limit;
        if count_limit > 0 && d.count > count_limit {
            log::info!("COMMAND COUNT LIMIT from {} after {}", s.who(), command);
            s.drop_session(&generic_421);
            return;
        }
        d.last = if known {
            command.clone()
        } else {
            "UNIMPL".to_string()
        };
        let go_on = if known
            && s.settings().tls.enforce
            && s.tls.is_none()
            && !PRE_TLS.contains(&command.as_str())
        {
            s.send("530 5.7.0 Must issue a STARTTLS command first") || hung_up(s)
        } else if command == "STARTTLS" {
            starttls(s, &mut d, &mut reader, args)
        } else {
            answer(s, &mut d, &command, args)
        };
        if !go_on {
            return;
        }
    }
}

fn deep_ttls(s: &Session<'_>) -> Vec<(Test, u64)> {
    let st = s.settings();
    [
        (Test::Pipelining, st.pipelining),
        (Test::NonSmtp, st.non_smtp),
        (Test::BareNewline, st.bare_newline),
    ]
    .into_iter()
    .map(|(t, cfg)| (t, cfg.ttl))
    .collect()
}

fn deep_due(s: &Session<'_>, d: &Dialogue, test: Test) -> bool {
    s.todo[test as usize] && !d.skip[deep_index(test)]
}

/// A deep test failed: its action decides. `ignore` passes it for the shortest TTL
/// postscreen has, so the client is looked at again soon. The test is not repeated
/// in this session. Returns false when the session is over.
fn deep_fail(
    s: &mut Session<'_>,
    d: &mut Dialogue,
    test: Test,
    drop_reply: &str,
    now: u64,
) -> bool {
    d.skip[deep_index(test)] = true;
    let i = test as usize;
    s.pass[i] = false;
    let settings = s.settings();
    let config = match test {
        Test::Pipelining => settings.pipelining,
        Test::NonSmtp => settings.non_smtp,
        _ => settings.bare_newline,
    };
    let action = config.action;
    let min_ttl = settings.min_ttl();
    match action {
        Action::Ignore => {
            s.pass[i] = true;
            s.stamps[i] = now + min_ttl;
            true
        }
        other => s.fail(other, drop_reply, "550 5.5.1 Protocol error"),
    }
}

/// Replies to one command. Returns false when the session is over.
fn answer(s: &mut Session<'_>, d: &mut Dialogue, command: &str, args: &str) -> bool {
    let reply: String = match command {
        "HELO" | "EHLO" => {
            if args.is_empty() {
                format!("501 Syntax: {command} hostname")
            } else {
                d.helo = Some(args.split_whitespace().next().unwrap_or("").to_string());
                d.sender = None;
                if command == "HELO" {
                    d.protocol = "SMTP";
                    format!("250 {}", s.settings().myhostname)
                } else {
                    d.protocol = "ESMTP";
                    ehlo_reply(s)
                }
            }
        }
        "MAIL" => {
            if d.helo.is_none() && s.settings().helo_required {
                "503 5.5.1 Error: send HELO/EHLO first".into()
            } else if d.sender.is_some() {
                "503 5.5.1 Error: nested MAIL command".into()
            } else {
                match address(args) {
                    Some(a) => {
                        d.sender = Some(a);
                        "250 2.1.0 Ok".into()
                    }
                    None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
                }
            }
        }
        "RCPT" => match (&d.sender, address(args)) {
            (None, _) => "503 5.5.1 Error: need MAIL command".into(),
            (Some(_), None) => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
            (Some(sender), Some(rcpt)) => {
                let reply = s.rcpt_reply.clone();
                log::info!(
                    "NOQUEUE: reject: RCPT from {}: {reply}; from=<{sender}>, to=<{rcpt}>, proto={}, helo=<{}>",
                    s.who(),
                    d.protocol,
                    d.helo.as_deref().unwrap_or("")
                );
                reply
            }
        },
        "DATA" | "BDAT" => {
            log::info!("{command} without valid RCPT from {}", s.who());
            let reply = if d.sender.is_none() {
                "503 5.5.1 Error: need RCPT command"
            } else {
                "554 5.5.1 Error: no valid recipients"
            };
            // The client is about to send a message nobody will take: hang up.
            s.drop_session(reply);
            return false;
        }
        "RSET" => {
            d.sender = None;
            "250 2.0.0 Ok".into()
        }
        "NOOP" => "250 2.0.0 Ok".into(),
        "VRFY" => {
            if s.settings().disable_vrfy {
                "502 5.5.1 VRFY command is disabled".into()
            } else {
                s.rcpt_reply.clone()
            }
        }
        "ETRN" => {
            if d.helo.is_none() {
                "503 5.5.1 Error: send HELO/EHLO first".into()
            } else {
                "458 Unable to queue messages".into()
            }
        }
        "QUIT" => {
            s.drop_session("221 2.0.0 Bye");
            return false;
        }
        "AUTH" | "XCLIENT" | "XFORWARD" => "502 5.5.1 Error: command not implemented".into(),
        _ => "502 5.5.2 Error: command not recognized".into(),
    };
    if !s.send(&reply) {
        s.hang_up("tests after SMTP handshake");
        return false;
    }
    true
}

/// Commands a client may give before STARTTLS when TLS is enforced (Postfix's
/// PSC_SMTPD_CMD_FLAG_PRE_TLS).
const PRE_TLS: &[&str] = &["HELO", "EHLO", "STARTTLS", "NOOP", "QUIT"];

/// The write of a reply failed: the client is gone.
fn hung_up(s: &mut Session<'_>) -> bool {
    s.hang_up("tests after SMTP handshake");
    false
}

/// STARTTLS (Postfix's psc_starttls_cmd, with the handshake done here instead of in
/// tlsproxy). Returns false when the session is over.
fn starttls(s: &mut Session<'_>, d: &mut Dialogue, reader: &mut LineReader, args: &str) -> bool {
    let reply = if !args.is_empty() {
        "501 5.5.4 Syntax: STARTTLS"
    } else if s.tls.is_some() {
        "554 5.5.1 Error: TLS already active"
    } else if s.ctx.tls.is_none() {
        "502 5.5.1 Error: command not implemented"
    } else {
        ""
    };
    if !reply.is_empty() {
        return s.send(reply) || hung_up(s);
    }
    if !s.send("220 2.0.0 Ready to start TLS") {
        return hung_up(s);
    }
    let discarded = reader.discard();
    if discarded > 0 {
        log::info!(
            "discarded {discarded} bytes of pipelined plaintext after STARTTLS from {}",
            s.who()
        );
    }
    let sock = match s.stream.try_clone() {
        Ok(sock) => sock,
        Err(e) => {
            log::warn!("cannot start TLS for {}: {e}", s.who());
            s.hangup = true;
            s.drop_session("");
            return false;
        }
    };
    let mut tls = NetStream::new(sock, s.ctx.tls.clone());
    match tls.start_tls() {
        Ok((info, _)) => {
            if s.settings().tls.loglevel >= 1 {
                log::info!(
                    "Anonymous TLS connection established from {}: {}",
                    s.who(),
                    info.summary()
                );
            }
            s.tls = Some(tls);
            // RFC 3207 4.2: nothing said before the handshake counts after it.
            d.helo = None;
            d.sender = None;
            true
        }
        Err(e) => {
            log::info!("SSL_accept error from {}: {e}", s.who());
            // Nothing more can be said on a half-made TLS session.
            s.hang_up("tests after SMTP handshake");
            false
        }
    }
}

/// postscreen's EHLO: like smtpd's, but never PIPELINING (that is the test) and no
/// AUTH (nobody sends mail here); STARTTLS when postscreen_tls_security_level allows.
fn ehlo_reply(s: &Session<'_>) -> String {
    let st = s.settings();
    let mut lines = vec![st.myhostname.clone()];
    if st.message_size_limit > 0 {
        lines.push(format!("SIZE {}", st.message_size_limit));
    } else {
        lines.push("SIZE".into());
    }
    if !st.disable_vrfy {
        lines.push("VRFY".into());
    }
    lines.push("ETRN".into());
    if s.ctx.tls.is_some() && s.tls.is_none() {
        lines.push("STARTTLS".into());
    }
    for word in [
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
        "CHUNKING",
    ] {
        lines.push(word.into());
    }
    st.discard_ehlo.apply(Some(s.client.ip()), &mut lines);
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{serve, Ctx};
    use crate::settings::Settings;
    use rostfix_config::MainCf;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::sync::Arc;

    /// A client connected to a screening thread configured by `main_cf` (no cache,
    /// no DNS, no access list, no pregreet test unless `main_cf` sets a banner).
    fn screened(main_cf: &str) -> (BufReader<TcpStream>, std::thread::JoinHandle<()>) {
        let text = format!(
            "myhostname = mx.example\npostscreen_access_list =\npostscreen_greet_banner =\n{main_cf}"
        );
        let cf = MainCf::parse(&text, Path::new("/etc/rostfix/main.cf")).unwrap();
        let (settings, _) = Settings::from_config(&cf).unwrap();
        let ctx = Arc::new(Ctx::new(settings, None, None));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (server, _) = listener.accept().unwrap();
        let thread = std::thread::spawn(move || serve(&ctx, server));
        (BufReader::new(client), thread)
    }

    fn reply(client: &mut BufReader<TcpStream>) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if client.read_line(&mut line).unwrap() == 0 {
                return lines;
            }
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines;
            }
        }
    }

    fn send(client: &mut BufReader<TcpStream>, bytes: &[u8]) {
        client.get_mut().write_all(bytes).unwrap();
    }

    #[test]
    fn bare_newline_is_dropped_when_told_to() {
        let (mut c, t) = screened(
            "postscreen_bare_newline_enable = yes\npostscreen_bare_newline_action = drop\n",
        );
        assert_eq!(reply(&mut c), ["220 mx.example ESMTP Rostfix"]);
        send(&mut c, b"EHLO client.example\n");
        assert_eq!(reply(&mut c), ["521 5.5.1 Protocol error"]);
        assert!(reply(&mut c).is_empty(), "connection closed");
        t.join().unwrap();
    }

    #[test]
    fn http_and_header_lines_are_not_smtp() {
        for line in [&b"GET / HTTP/1.0\r\n"[..], b"Subject: hello\r\n"] {
            let (mut c, t) = screened("postscreen_non_smtp_command_enable = yes\n");
            reply(&mut c);
            send(&mut c, line);
            assert_eq!(
                reply(&mut c),
                ["521 5.7.0 Error: I can break rules, too. Goodbye."]
            );
            t.join().unwrap();
        }
    }

    #[test]
    fn a_polite_client_passes_at_rcpt_and_is_asked_to_come_back() {
        let (mut c, t) = screened(
            "postscreen_pipelining_enable = yes\npostscreen_bare_newline_enable = yes\n\
             postscreen_non_smtp_command_enable = yes\n",
        );
        reply(&mut c);
        send(&mut c, b"EHLO client.example\r\n");
        let ehlo = reply(&mut c);
        assert_eq!(ehlo[0], "250-mx.example");
        assert!(!ehlo.iter().any(|l| l.contains("PIPELINING")), "{ehlo:?}");
        send(&mut c, b"MAIL FROM:<a@example.org>\r\n");
        assert_eq!(reply(&mut c), ["250 2.1.0 Ok"]);
        send(&mut c, b"RCPT TO:<b@example.net>\r\n");
        assert_eq!(reply(&mut c), ["450 4.3.2 Service currently unavailable"]);
        send(&mut c, b"DATA\r\n");
        assert_eq!(reply(&mut c), ["554 5.5.1 Error: no valid recipients"]);
        t.join().unwrap();
    }

    #[test]
    fn a_pregreeting_client_under_enforce_gets_no_banner_and_550_at_rcpt() {
        let (mut c, t) = screened(
            "postscreen_greet_banner = $smtpd_banner\npostscreen_greet_wait = 1s\n\
             postscreen_greet_action = enforce\n",
        );
        let mut first = String::new();
        c.read_line(&mut first).unwrap();
        assert_eq!(first, "220-mx.example ESMTP Rostfix\r\n");
        send(&mut c, b"EHLO early.example\r\n");
        // No "220 " greeting: the EHLO is answered directly.
        assert_eq!(reply(&mut c)[0], "250-mx.example");
        send(
            &mut c,
            b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n",
        );
        assert_eq!(reply(&mut c), ["250 2.1.0 Ok"]);
        assert_eq!(reply(&mut c), ["550 5.5.1 Protocol error"]);
        send(&mut c, b"QUIT\r\n");
        assert_eq!(reply(&mut c), ["221 2.0.0 Bye"]);
        t.join().unwrap();
    }

    #[test]
    fn a_silent_client_that_passes_is_handed_over_or_told_421() {
        // No smtpd pass service in a unit test: the hand-over fails with 421.
        let (mut c, t) = screened("postscreen_greet_banner = hi\npostscreen_greet_wait = 1s\n");
        assert_eq!(
            reply(&mut c),
            ["220-hi", "421 4.3.2 All server ports are busy"]
        );
        t.join().unwrap();
    }

    #[test]
    fn helo_is_required_only_when_configured() {
        for (required, want) in [("no", "250 2.1.0 Ok"), ("yes", "503 5.5.1")] {
            let (mut c, _t) = screened(&format!(
                "postscreen_pipelining_enable = yes\npostscreen_helo_required = {required}\n"
            ));
            assert!(reply(&mut c)[0].starts_with("220 "));
            send(&mut c, b"MAIL FROM:<a@example.org>\r\n");
            assert!(reply(&mut c)[0].starts_with(want), "{required}");
        }
    }

    #[test]
    fn discarded_ehlo_keywords_and_no_starttls_without_a_certificate() {
        let (mut c, _t) = screened(
            "postscreen_pipelining_enable = yes\npostscreen_discard_ehlo_keywords = etrn, dsn\n",
        );
        assert!(reply(&mut c)[0].starts_with("220 "));
        send(&mut c, b"EHLO client.example\r\n");
        let ehlo = reply(&mut c).join("\n");
        assert!(!ehlo.contains("ETRN") && !ehlo.contains("DSN"), "{ehlo}");
        assert!(
            !ehlo.contains("STARTTLS") && ehlo.contains("8BITMIME"),
            "{ehlo}"
        );
        send(&mut c, b"STARTTLS\r\n");
        assert_eq!(reply(&mut c), ["502 5.5.1 Error: command not implemented"]);
    }

    #[test]
    fn headers_and_addresses() {
        assert!(is_header("Subject:"));
        assert!(is_header("X-Spam:"));
        assert!(!is_header(":"));
        assert!(!is_header("MAIL"));
        assert_eq!(address("FROM:<a@b> SIZE=10").as_deref(), Some("a@b"));
        assert_eq!(address("TO: <>").as_deref(), Some(""));
        assert_eq!(address("TO:c@d").as_deref(), Some("c@d"));
        assert_eq!(address("junk"), None);
    }
}
