//! The SMTP client side of smtpd_proxy_filter: one connection to the before-queue
//! filter per mail transaction (Postfix's smtpd_proxy.c). [`ProxyConn::open`]
//! connects within smtpd_proxy_timeout, reads the greeting, sends EHLO and, when the
//! filter announces XFORWARD, the original client's attributes; then commands go one at
//! a time and each reply comes back whole. The message content goes as SMTP DATA
//! (CRLF line endings, dot-stuffed) from the LF-ended text the session stores.
//!
//! Trouble with the filter is logged as Postfix logs it (`warning: connect to proxy
//! filter X: ...`, `warning: lost connection with proxy X`, `warning: timeout talking
//! to proxy X`, `warning: proxy X rejected "CMD": "REPLY"`) and answered with Postfix's
//! generic `451 4.3.0 Error: queue file write error`.

use crate::proxy_filter::{Endpoint, ProxySettings};
use crate::reply::Reply;
use rostfix_maps::netio::Stream;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;

/// Longest reply line kept, and most reply text kept (Postfix's line_length_limit).
const LINE_LIMIT: usize = 2048;

/// The reply Postfix makes up when the filter cannot be used (cleanup's
/// CLEANUP_STAT_PROXY detail).
pub fn proxy_failure() -> Reply {
    Reply::new(451, "4.3.0", "Error: queue file write error")
}

/// Why the filter conversation failed; the variants log as Postfix does.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("connect to proxy filter {service}: {source}")]
    Connect { service: String, source: io::Error },
    #[error("lost connection with proxy {0}")]
    Lost(String),
    #[error("timeout talking to proxy {0}")]
    Timeout(String),
    #[error("received garbage from proxy {service}: {line}")]
    Garbage { service: String, line: String },
}

/// A whole reply of the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyReply {
    pub code: u16,
    /// The text of each line, after `NNN-` / `NNN `.
    pub lines: Vec<String>,
}

impl ProxyReply {
    /// As our reply to the client, word for word.
    pub fn to_reply(&self) -> Reply {
        Reply::plain(self.code, self.lines.clone())
    }

    /// `250 2.0.0 Ok: queued as X` (the first line), for log lines.
    pub fn log_text(&self) -> String {
        format!(
            "{} {}",
            self.code,
            self.lines.first().map(String::as_str).unwrap_or("")
        )
    }

    fn class(&self) -> u16 {
        self.code / 100
    }
}

/// What the filter is told about the original client (XFORWARD).
#[derive(Debug, Clone, Default)]
pub struct ClientAttrs {
    pub name: Option<String>,
    pub addr: Option<String>,
    pub port: Option<String>,
    pub proto: Option<String>,
    pub helo: Option<String>,
    pub ident: Option<String>,
    /// `LOCAL` or `REMOTE`.
    pub source: &'static str,
}

/// One open conversation with the filter.
pub struct ProxyConn {
    io: BufReader<Stream>,
    service: String,
    /// The next content byte starts a line (for dot-stuffing across pieces).
    line_start: bool,
    out: Vec<u8>,
}

/// The outcome of a command whose reply was not the one wanted.
#[derive(Debug)]
pub enum Refused {
    /// Pass this reply of the filter to the client.
    Reply(ProxyReply),
    /// The filter failed (logged): answer [`proxy_failure`].
    Failed,
}

impl ProxyConn {
    /// Connects, reads the greeting, sends EHLO and XFORWARD, then `mail` (the
    /// client's MAIL FROM command as received).
    pub fn open(
        settings: &ProxySettings,
        client: &ClientAttrs,
        mail: &str,
    ) -> Result<ProxyConn, Refused> {
        let mut conn = ProxyConn::connect(settings).map_err(|e| {
            log::warn!("{e}");
            Refused::Failed
        })?;
        // A refused greeting, EHLO or XFORWARD is ours to explain (the client is
        // waiting for a RCPT reply): only MAIL's own refusal goes back as it is.
        let ehlo = conn
            .expect("", 2)
            .and_then(|_| conn.expect(&format!("EHLO {}", settings.ehlo), 2))
            .map_err(|_| Refused::Failed)?;
        let offered = xforward_offer(&ehlo.lines);
        for line in xforward_commands(client, &offered) {
            conn.expect(&line, 2).map_err(|_| Refused::Failed)?;
        }
        conn.expect(mail, 2)?;
        Ok(conn)
    }

    fn connect(settings: &ProxySettings) -> Result<ProxyConn, ProxyError> {
        let service = settings.service.clone();
        let fail = |source| ProxyError::Connect {
            service: service.clone(),
            source,
        };
        let stream = match &settings.endpoint {
            Endpoint::Unix(path) => {
                let s = UnixStream::connect(path).map_err(fail)?;
                s.set_read_timeout(Some(settings.timeout)).map_err(fail)?;
                s.set_write_timeout(Some(settings.timeout)).map_err(fail)?;
                Stream::Unix(s)
            }
            Endpoint::Inet { host, port } => {
                let addrs = (host.as_str(), *port).to_socket_addrs().map_err(fail)?;
                let mut last = io::Error::new(io::ErrorKind::NotFound, "host not found");
                let mut found = None;
                for a in addrs {
                    match TcpStream::connect_timeout(&a, settings.timeout) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let s = found.ok_or_else(|| fail(last))?;
                s.set_read_timeout(Some(settings.timeout)).map_err(fail)?;
                s.set_write_timeout(Some(settings.timeout)).map_err(fail)?;
                if let Err(e) = s.set_nodelay(true) {
                    log::debug!("proxy {service}: TCP_NODELAY: {e}");
                }
                Stream::Tcp(s)
            }
        };
        Ok(ProxyConn {
            io: BufReader::new(stream),
            service: settings.service.clone(),
            line_start: true,
            out: Vec::new(),
        })
    }

    /// Sends `command` (nothing when empty: the greeting) and wants a reply of class
    /// `want` (2 or 3). A 4xx/5xx goes back to the client as it is; an unexpected
    /// 2xx/3xx, or trouble, becomes [`Refused::Failed`] (Postfix 2.6 and later).
    pub fn expect(&mut self, command: &str, want: u16) -> Result<ProxyReply, Refused> {
        let reply = self.command(command).map_err(|e| {
            log::warn!("{e}");
            Refused::Failed
        })?;
        if reply.class() == want {
            return Ok(reply);
        }
        let what = if command.is_empty() {
            "connection request"
        } else {
            command
        };
        log::warn!(
            "proxy {} rejected \"{what}\": \"{}\"",
            self.service,
            reply.log_text()
        );
        if reply.class() == 2 || reply.class() == 3 {
            Err(Refused::Failed)
        } else {
            Err(Refused::Reply(reply))
        }
    }

    /// Sends one command line and reads the whole reply.
    pub fn command(&mut self, command: &str) -> Result<ProxyReply, ProxyError> {
        if !command.is_empty() {
            let mut line = command.as_bytes().to_vec();
            line.extend_from_slice(b"\r\n");
            self.write(&line)?;
        }
        self.read_reply()
    }

    /// Sends content (LF line endings, as the session stores it) as SMTP DATA text.
    pub fn content(&mut self, data: &[u8]) -> Result<(), ProxyError> {
        self.out.clear();
        encode_data(data, &mut self.line_start, &mut self.out);
        let out = std::mem::take(&mut self.out);
        let r = self.write(&out);
        self.out = out;
        r
    }

    /// Ends the content with `.` and returns the filter's final reply, whatever it is.
    pub fn finish(&mut self) -> Result<ProxyReply, ProxyError> {
        let end: &[u8] = if self.line_start {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        };
        self.write(end)?;
        self.line_start = true;
        self.read_reply()
    }

    /// Says QUIT without waiting for the reply, and closes (Postfix's proxy close).
    pub fn quit(mut self) {
        if let Err(e) = self.write(b"QUIT\r\n") {
            log::debug!("proxy {}: QUIT: {e}", self.service);
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), ProxyError> {
        let stream = self.io.get_mut();
        stream
            .write_all(data)
            .and_then(|()| stream.flush())
            .map_err(|e| self.io_error(e))
    }

    fn io_error(&self, e: io::Error) -> ProxyError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                ProxyError::Timeout(self.service.clone())
            }
            _ => ProxyError::Lost(self.service.clone()),
        }
    }

    fn read_reply(&mut self) -> Result<ProxyReply, ProxyError> {
        let mut lines = Vec::new();
        let mut kept = 0usize;
        loop {
            let mut raw = Vec::new();
            let n = (&mut self.io)
                .take(LINE_LIMIT as u64)
                .read_until(b'\n', &mut raw)
                .map_err(|e| self.io_error(e))?;
            if n == 0 {
                return Err(ProxyError::Lost(self.service.clone()));
            }
            if raw.last() != Some(&b'\n') {
                // Over-long: skip the rest of the line.
                let mut rest = Vec::new();
                self.io
                    .read_until(b'\n', &mut rest)
                    .map_err(|e| self.io_error(e))?;
            }
            let text = String::from_utf8_lossy(&raw);
            let text = text.trim_end_matches(['\r', '\n']);
            let (code, sep, rest) = split_reply_line(text).ok_or_else(|| ProxyError::Garbage {
                service: self.service.clone(),
                line: text.chars().take(100).collect(),
            })?;
            if kept < LINE_LIMIT {
                kept += rest.len();
                lines.push(rest.to_string());
            }
            if sep != '-' {
                return Ok(ProxyReply { code, lines });
            }
        }
    }
}

/// `250-text` -> (250, '-', "text"); `250` -> (250, ' ', "").
fn split_reply_line(line: &str) -> Option<(u16, char, &str)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !matches!(code.as_bytes()[0], b'2'..=b'5') {
        return None;
    }
    let code = code.parse().ok()?;
    match line.as_bytes().get(3) {
        None => Some((code, ' ', "")),
        Some(b'-') => Some((code, '-', &line[4..])),
        Some(b' ') => Some((code, ' ', &line[4..])),
        Some(_) => None,
    }
}

/// The XFORWARD attribute names of an EHLO reply (upper case), empty without one.
fn xforward_offer(ehlo_lines: &[String]) -> Vec<String> {
    ehlo_lines
        .iter()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            words
                .next()
                .filter(|w| w.eq_ignore_ascii_case("XFORWARD"))
                .map(|_| words.map(str::to_ascii_uppercase).collect())
        })
        .unwrap_or_default()
}

/// The XFORWARD lines for what the filter offered, under 512 bytes each.
fn xforward_commands(client: &ClientAttrs, offered: &[String]) -> Vec<String> {
    const MAX: usize = 510;
    let values = [
        ("NAME", client.name.as_deref()),
        ("ADDR", client.addr.as_deref()),
        ("PORT", client.port.as_deref()),
        ("HELO", client.helo.as_deref()),
        ("IDENT", client.ident.as_deref()),
        ("PROTO", client.proto.as_deref()),
        ("SOURCE", Some(client.source)),
    ];
    let mut out = Vec::new();
    let mut line = String::from("XFORWARD");
    for (name, value) in values {
        if !offered.iter().any(|o| o == name) {
            continue;
        }
        let value = value
            .filter(|v| !v.is_empty())
            .map(xtext)
            .unwrap_or_else(|| "[UNAVAILABLE]".to_string());
        let item = format!(" {name}={value}");
        if line.len() + item.len() > MAX && line.len() > "XFORWARD".len() {
            out.push(std::mem::replace(&mut line, String::from("XFORWARD")));
        }
        if line.len() + item.len() <= MAX {
            line.push_str(&item);
        } else {
            log::warn!(
                "XFORWARD command payload {name}={:.10}... exceeds SMTP protocol limit",
                value
            );
        }
    }
    if line.len() > "XFORWARD".len() {
        out.push(line);
    }
    out
}

use rostfix_proto::xtext;

/// LF-ended text to SMTP DATA text: CRLF, and a `.` doubled at the start of a line.
fn encode_data(data: &[u8], line_start: &mut bool, out: &mut Vec<u8>) {
    for &b in data {
        if *line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' {
            out.extend_from_slice(b"\r\n");
            *line_start = true;
        } else {
            out.push(b);
            *line_start = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        assert_eq!(split_reply_line("250-a b"), Some((250, '-', "a b")));
        assert_eq!(split_reply_line("354 go"), Some((354, ' ', "go")));
        assert_eq!(split_reply_line("221"), Some((221, ' ', "")));
        assert_eq!(split_reply_line("25x ok"), None);
        assert_eq!(split_reply_line("250x"), None);
        assert_eq!(split_reply_line("hello"), None);
    }

    #[test]
    fn data_is_dot_stuffed_across_pieces() {
        let mut start = true;
        let mut out = Vec::new();
        encode_data(b".a\nb.\n", &mut start, &mut out);
        encode_data(b".", &mut start, &mut out);
        encode_data(b"c\nx", &mut start, &mut out);
        encode_data(b".y\n", &mut start, &mut out);
        assert_eq!(out, b"..a\r\nb.\r\n..c\r\nx.y\r\n");
        assert!(start);
    }

    #[test]
    fn xforward_only_what_is_offered() {
        let client = ClientAttrs {
            name: Some("mail.example".into()),
            addr: Some("192.0.2.1".into()),
            helo: Some("we are".into()),
            proto: Some("ESMTP".into()),
            source: "REMOTE",
            ..ClientAttrs::default()
        };
        let offered = xforward_offer(&[
            "filter.example".into(),
            "XFORWARD NAME ADDR PROTO HELO IDENT".into(),
        ]);
        assert_eq!(
            xforward_commands(&client, &offered),
            ["XFORWARD NAME=mail.example ADDR=192.0.2.1 HELO=we+20are IDENT=[UNAVAILABLE] PROTO=ESMTP"]
        );
        assert!(xforward_commands(&client, &xforward_offer(&["PIPELINING".into()])).is_empty());
    }

    #[test]
    fn conversation_with_a_scripted_filter() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut seen = Vec::new();
            let mut line = String::new();
            s.write_all(b"220 filter ESMTP\r\n").unwrap();
            for reply in [
                "250-filter\r\n250 XFORWARD NAME ADDR\r\n",
                "250 2.0.0 Ok\r\n",
                "250 2.1.0 Ok\r\n",
                "550 5.1.1 <x@y>: unknown\r\n",
            ] {
                line.clear();
                r.read_line(&mut line).unwrap();
                seen.push(line.trim_end().to_string());
                s.write_all(reply.as_bytes()).unwrap();
            }
            seen
        });
        let settings = ProxySettings {
            service: format!("127.0.0.1:{port}"),
            endpoint: Endpoint::Inet {
                host: "127.0.0.1".into(),
                port,
            },
            timeout: std::time::Duration::from_secs(5),
            ehlo: "mx.example".into(),
        };
        let client = ClientAttrs {
            addr: Some("192.0.2.1".into()),
            source: "REMOTE",
            ..ClientAttrs::default()
        };
        let mut conn = ProxyConn::open(&settings, &client, "MAIL FROM:<a@b>").unwrap();
        match conn.expect("RCPT TO:<x@y>", 2) {
            Err(Refused::Reply(r)) => assert_eq!(r.log_text(), "550 5.1.1 <x@y>: unknown"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            server.join().unwrap(),
            [
                "EHLO mx.example",
                "XFORWARD NAME=[UNAVAILABLE] ADDR=192.0.2.1",
                "MAIL FROM:<a@b>",
                "RCPT TO:<x@y>"
            ]
        );
    }

    #[test]
    fn refused_connection_is_a_failure() {
        let settings = ProxySettings {
            service: "127.0.0.1:9".into(),
            endpoint: Endpoint::Inet {
                host: "127.0.0.1".into(),
                port: 9,
            },
            timeout: std::time::Duration::from_secs(2),
            ehlo: "mx".into(),
        };
        assert!(matches!(
            ProxyConn::open(&settings, &ClientAttrs::default(), "MAIL FROM:<>"),
            Err(Refused::Failed)
        ));
        assert_eq!(
            proxy_failure().log_text(),
            "451 4.3.0 Error: queue file write error"
        );
    }
}
