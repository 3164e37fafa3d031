//! Whole-session tests over in-memory streams with a fake queue.

use super::*;
use crate::cidr::NetworkList;
use crate::sink::{QueuedMessage, SinkError};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;

/// A committed message as the fake queue keeps it.
#[derive(Debug, Clone)]
struct Stored {
    id: String,
    envelope: Envelope,
    content: Vec<u8>,
}

#[derive(Debug, Default)]
struct Shared {
    next: u32,
    queued: Vec<Stored>,
    woken: Vec<String>,
    aborted: u32,
    fail_create: bool,
    fail_write: bool,
    /// What free_space reports (None: unknown).
    free: Option<u64>,
    /// Writes fail with ENOSPC.
    disk_full: bool,
    /// Ids committed into the hold queue.
    held: Vec<String>,
    /// Sites ETRN asked to flush.
    flushed: Vec<String>,
}

/// The fake queue: state shared with the messages it hands out.
#[derive(Clone, Default)]
struct FakeSink(Rc<RefCell<Shared>>);

struct FakeMessage {
    shared: Rc<RefCell<Shared>>,
    stored: Stored,
}

impl QueueSink for FakeSink {
    type Message = FakeMessage;

    fn create(&mut self, envelope: &Envelope) -> Result<FakeMessage, SinkError> {
        let mut s = self.0.borrow_mut();
        if s.fail_create {
            return Err(SinkError::Other("disk full".into()));
        }
        s.next += 1;
        let id = format!("ABC{:03}", s.next);
        Ok(FakeMessage {
            shared: self.0.clone(),
            stored: Stored {
                id,
                envelope: envelope.clone(),
                content: Vec::new(),
            },
        })
    }

    fn committed(&mut self, queue_id: &str) {
        self.0.borrow_mut().woken.push(queue_id.to_string());
    }

    fn free_space(&self) -> Option<u64> {
        self.0.borrow().free
    }

    fn flush_site(&mut self, site: &str) -> Result<(), String> {
        self.0.borrow_mut().flushed.push(site.to_string());
        Ok(())
    }
}

impl QueuedMessage for FakeMessage {
    fn queue_id(&self) -> &str {
        &self.stored.id
    }
    fn write(&mut self, data: &[u8]) -> Result<(), SinkError> {
        if self.shared.borrow().fail_write {
            return Err(SinkError::Other("i/o error".into()));
        }
        if self.shared.borrow().disk_full {
            return Err(SinkError::Queue(rostfix_queue::QueueError::Io {
                path: "incoming/ABC".into(),
                source: io::Error::from_raw_os_error(libc::ENOSPC),
            }));
        }
        self.stored.content.extend_from_slice(data);
        Ok(())
    }
    fn commit_as(mut self, hold: bool, envelope: Option<&Envelope>) -> Result<String, SinkError> {
        let id = self.stored.id.clone();
        if let Some(env) = envelope {
            self.stored.envelope = env.clone();
        }
        let mut shared = self.shared.borrow_mut();
        if hold {
            shared.held.push(id.clone());
        }
        shared.queued.push(self.stored);
        Ok(id)
    }
    fn abort(self) {
        self.shared.borrow_mut().aborted += 1;
    }
}

/// The scripts below send a whole session as one input, i.e. as one client write: the
/// pipelining guard would stop most of them at EHLO, so it is off here and tested on
/// its own in pipelining.rs.
fn settings() -> Settings {
    let mut s = Settings::defaults("mx.example.com");
    s.mynetworks = NetworkList::parse(["127.0.0.0/8", "[::1]/128"]).unwrap();
    s.proto.forbid_unauth_pipelining = false;
    s
}

fn outside() -> ClientInfo {
    ClientInfo::from_ip("192.0.2.7".parse().unwrap())
}

fn inside() -> ClientInfo {
    ClientInfo::from_ip("127.0.0.1".parse().unwrap())
}

/// Runs a session on `input`; returns the reply lines, how it ended, and the sink.
fn session(
    cfg: &Settings,
    client: ClientInfo,
    input: &[u8],
) -> (Vec<String>, SessionEnd, FakeSink) {
    let sink = FakeSink::default();
    let mut out = Vec::new();
    let end = Session::new(cfg, client, sink.clone()).run(input, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.is_empty() || text.ends_with("\r\n"));
    let lines = text.split_terminator("\r\n").map(str::to_string).collect();
    (lines, end, sink)
}

fn codes(lines: &[String]) -> Vec<&str> {
    lines.iter().map(|l| &l[..4]).collect()
}

mod auth;
mod content;
mod dkim;
mod etrn;
mod options;
mod pipelining;
mod proto;
mod proxy;
mod queue_actions;

#[test]
fn full_transaction_queues_the_message() {
    let input = b"EHLO client.example\r\nMAIL FROM:<alice@client.example> SIZE=100 BODY=8BITMIME\r\n\
RCPT TO:<bob@mx.example.com>\r\nDATA\r\nSubject: hi\r\nMessage-ID: <m1@client.example>\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n";
    let (lines, end, sink) = session(&settings(), outside(), input);
    assert_eq!(end, SessionEnd::Quit);
    assert_eq!(
        lines,
        vec![
            "220 mx.example.com ESMTP Rostfix",
            "250-mx.example.com",
            "250-PIPELINING",
            "250-SIZE 10240000",
            "250-VRFY",
            "250-ETRN",
            "250-ENHANCEDSTATUSCODES",
            "250-8BITMIME",
            "250-DSN",
            "250-SMTPUTF8",
            "250 CHUNKING",
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
            "250 2.0.0 Ok: queued as ABC001",
            "221 2.0.0 Bye",
        ]
    );
    let shared = sink.0.borrow();
    assert_eq!(shared.queued.len(), 1);
    assert_eq!(shared.woken, vec!["ABC001"]);
    let m = &shared.queued[0];
    assert_eq!(m.envelope.sender, "alice@client.example");
    assert_eq!(m.envelope.recipients.len(), 1);
    assert_eq!(m.envelope.recipients[0].address, "bob@mx.example.com");
    assert_eq!(m.envelope.recipients[0].orig_address, "bob@mx.example.com");
    assert_eq!(m.envelope.attr("client_name"), Some("unknown"));
    assert_eq!(m.envelope.attr("client_address"), Some("192.0.2.7"));
    assert_eq!(m.envelope.attr("helo_name"), Some("client.example"));
    assert_eq!(m.envelope.attr("protocol"), Some("ESMTP"));
    let content = String::from_utf8(m.content.clone()).unwrap();
    assert!(content.starts_with(
        "Received: from client.example (unknown [192.0.2.7])\n\tby mx.example.com (Rostfix) with ESMTP id ABC001\n\tfor <bob@mx.example.com>; "
    ), "{content}");
    assert!(
        content
            .ends_with("+0000 (UTC)\nSubject: hi\nMessage-ID: <m1@client.example>\n\n.dot\nbody\n"),
        "{content}"
    );
}

#[test]
fn content_filter_is_written_as_the_filter_attribute_only_when_set() {
    let input = b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@mx.example.com>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    let mut s = settings();
    s.content_filter =
        rostfix_queue::ContentFilter::parse("smtp-amavis:[127.0.0.1]:10024").unwrap();
    let (_, _, sink) = session(&s, outside(), input);
    let shared = sink.0.borrow();
    assert_eq!(
        shared.queued[0].envelope.attr("filter"),
        Some("smtp-amavis:[127.0.0.1]:10024")
    );
    drop(shared);
    // The re-entry smtpd (`-o content_filter=`) must not filter again: that loops.
    let (_, _, sink) = session(&settings(), outside(), input);
    assert_eq!(sink.0.borrow().queued[0].envelope.attr("filter"), None);
}

#[test]
fn pipelined_commands_get_replies_in_order_in_one_write() {
    /// Records every write separately.
    struct Writes(Vec<Vec<u8>>);
    impl Write for Writes {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    /// Hands out one chunk per read.
    struct Chunks(VecDeque<Vec<u8>>);
    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                Some(c) => {
                    buf[..c.len()].copy_from_slice(&c);
                    Ok(c.len())
                }
                None => Ok(0),
            }
        }
    }
    let cfg = settings();
    let chunks = Chunks(VecDeque::from(vec![
        b"EHLO c\r\n".to_vec(),
        b"MAIL FROM:<a@c>\r\nRCPT TO:<x@mx.example.com>\r\nRCPT TO:<y@elsewhere.example>\r\nRCPT TO:<z@localhost>\r\nDATA\r\n".to_vec(),
        b"hello\r\n.\r\nQUIT\r\n".to_vec(),
    ]));
    let mut writes = Writes(Vec::new());
    let end = Session::new(&cfg, outside(), FakeSink::default()).run(chunks, &mut writes);
    assert_eq!(end, SessionEnd::Quit);
    let writes: Vec<String> = writes
        .0
        .into_iter()
        .map(|w| String::from_utf8(w).unwrap())
        .collect();
    assert_eq!(writes.len(), 4, "{writes:?}");
    assert!(writes[0].starts_with("220 "));
    assert!(writes[1].starts_with("250-mx.example.com"));
    assert_eq!(
        writes[2],
        "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n454 4.7.1 <y@elsewhere.example>: Relay access denied\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    assert_eq!(
        writes[3],
        "250 2.0.0 Ok: queued as ABC001\r\n221 2.0.0 Bye\r\n"
    );
}

#[test]
fn sequence_errors() {
    let input = b"RCPT TO:<a@mx.example.com>\r\nDATA\r\nMAIL FROM:<>\r\nMAIL FROM:<x@y>\r\nDATA\r\nQUIT\r\n";
    let (lines, _, sink) = session(&settings(), outside(), input);
    assert_eq!(
        lines[1..],
        [
            "503 5.5.1 Error: need MAIL command",
            "503 5.5.1 Error: need RCPT command",
            "250 2.1.0 Ok",
            "503 5.5.1 Error: nested MAIL command",
            "554 5.5.1 Error: no valid recipients",
            "221 2.0.0 Bye",
        ]
    );
    assert!(sink.0.borrow().queued.is_empty());
}

#[test]
fn relay_control() {
    let input = b"HELO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<v@victim.example>\r\nRCPT TO:<u%victim.example@mx.example.com>\r\n\
RCPT TO:<\"u@victim.example\"@mx.example.com>\r\nRCPT TO:<@mx.example.com:u@victim.example>\r\nRCPT TO:<postmaster>\r\n\
RCPT TO:<U@MX.EXAMPLE.COM.>\r\nQUIT\r\n";
    let (lines, _, _) = session(&settings(), outside(), input);
    assert_eq!(
        lines[1..],
        [
            "250 mx.example.com",
            "250 2.1.0 Ok",
            "454 4.7.1 <v@victim.example>: Relay access denied",
            "454 4.7.1 <u%victim.example@mx.example.com>: Relay access denied",
            "454 4.7.1 <\"u@victim.example\"@mx.example.com>: Relay access denied",
            "454 4.7.1 <u@victim.example>: Relay access denied",
            "250 2.1.5 Ok",
            "250 2.1.5 Ok",
            "221 2.0.0 Bye",
        ]
    );
    // The same from mynetworks is relayed.
    let (lines, _, _) = session(&settings(), inside(), input);
    assert_eq!(codes(&lines[3..8]), vec!["250 "; 5]);
}

#[test]
fn helo_gives_smtp_protocol() {
    let input = b"HELO c.example\r\nMAIL FROM:<>\r\nRCPT TO:<a@mx.example.com>\r\nRCPT TO:<b@mx.example.com>\r\nDATA\r\nx\r\n.\r\n";
    let (lines, end, sink) = session(&settings(), outside(), input);
    assert_eq!(end, SessionEnd::Lost);
    assert_eq!(lines.last().unwrap(), "250 2.0.0 Ok: queued as ABC001");
    let shared = sink.0.borrow();
    let m = &shared.queued[0];
    assert_eq!(m.envelope.sender, "");
    assert_eq!(m.envelope.attr("protocol"), Some("SMTP"));
    let content = String::from_utf8(m.content.clone()).unwrap();
    // Two recipients: no "for" clause.
    assert!(content.contains("with SMTP id ABC001;\n\t"), "{content}");
    assert!(!content.contains("for <"));
}

#[test]
fn size_limits() {
    let mut cfg = settings();
    cfg.message_size_limit = 1000;
    let big = "x".repeat(1200);
    let input = format!(
        "EHLO c\r\nMAIL FROM:<a@c> SIZE=5000\r\nMAIL FROM:<a@c> SIZE=abc\r\nMAIL FROM:<a@c> SIZE=99999999999999999999999\r\n\
MAIL FROM:<a@c> SIZE=500\r\nRCPT TO:<a@mx.example.com>\r\nDATA\r\n{big}\r\n.\r\nNOOP\r\nQUIT\r\n"
    );
    let (lines, end, sink) = session(&cfg, outside(), input.as_bytes());
    assert_eq!(end, SessionEnd::Quit);
    assert!(lines.contains(&"250-SIZE 1000".to_string()));
    let tail: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("250 CHUNKING"))
        .skip(1)
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "552 5.3.4 Message size exceeds fixed limit",
            "501 5.5.4 Bad message size syntax",
            "552 5.3.4 Message size exceeds fixed limit",
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
            "552 5.3.4 Error: message file too big",
            "250 2.0.0 Ok",
            "221 2.0.0 Bye",
        ]
    );
    let shared = sink.0.borrow();
    assert!(shared.queued.is_empty());
    assert_eq!(shared.aborted, 1);
}

#[test]
fn mail_parameters() {
    let input = b"EHLO c\r\nMAIL FROM:<a@c> BODY=7BIT\r\nRSET\r\nMAIL FROM:<a@c> BODY=BINARYMIME\r\nMAIL FROM:<a@c> AUTH=<>\r\nRSET\r\n\
MAIL FROM:<a b>\r\nMAIL FROM:<a@c>\r\nRCPT TO:<a@mx.example.com> NOTIFY=NEVER\r\nRCPT TO:<>\r\nRCPT TO:<a@>\r\nQUIT\r\n";
    let (lines, _, _) = session(&settings(), outside(), input);
    let tail: Vec<&str> = lines.iter().skip(11).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "250 2.1.0 Ok",
            "250 2.0.0 Ok",
            "501 5.5.4 Unsupported BODY parameter value",
            "250 2.1.0 Ok",
            "250 2.0.0 Ok",
            "501 5.1.7 Bad sender address syntax",
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "501 5.1.3 Bad recipient address syntax",
            "501 5.1.3 Bad recipient address syntax",
            "221 2.0.0 Bye",
        ]
    );
}

#[test]
fn misc_commands() {
    let input = b"noop\r\nhelp\r\nvrfy root\r\nVRFY\r\nXYZZY\r\n\r\nHELO\r\nDATA x\r\nquit\r\n";
    let (lines, _, _) = session(&settings(), outside(), input);
    assert_eq!(
        lines[1..],
        [
            "250 2.0.0 Ok",
            "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT STARTTLS",
            "252 2.0.0 root",
            "501 5.5.4 Syntax: VRFY address",
            "502 5.5.2 Error: command not recognized",
            "500 5.5.2 Error: bad syntax",
            "501 5.5.4 Syntax: HELO hostname",
            "501 5.5.4 Syntax: DATA",
            "221 2.0.0 Bye",
        ]
    );
}

#[test]
fn recipient_limit() {
    let mut cfg = settings();
    cfg.recipient_limit = 2;
    let input = b"MAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nRCPT TO:<b@localhost>\r\nRCPT TO:<c@localhost>\r\nQUIT\r\n";
    let (lines, _, _) = session(&cfg, outside(), input);
    assert_eq!(lines[4], "452 4.5.3 Error: too many recipients");
}

#[test]
fn long_line_and_resync() {
    let mut cfg = settings();
    cfg.line_length_limit = 100;
    let input = [
        b"NOOP ".to_vec(),
        vec![b'a'; 10_000],
        b"\r\nNOOP\r\nQUIT\r\n".to_vec(),
    ]
    .concat();
    let (lines, end, _) = session(&cfg, outside(), &input);
    assert_eq!(end, SessionEnd::Quit);
    assert_eq!(
        lines[1..],
        [
            "500 5.5.2 Error: line too long",
            "250 2.0.0 Ok",
            "221 2.0.0 Bye"
        ]
    );
}

#[test]
fn too_many_errors() {
    let input = "BOGUS\r\n".repeat(50);
    let (lines, end, _) = session(&settings(), outside(), input.as_bytes());
    assert_eq!(end, SessionEnd::TooManyErrors);
    assert_eq!(lines.len(), 1 + 20 + 1);
    assert_eq!(
        lines.last().unwrap(),
        "421 4.7.0 mx.example.com Error: too many errors"
    );
}

#[test]
fn junk_command_flood_ends_in_errors() {
    let mut cfg = settings();
    cfg.junk_command_limit = 5;
    cfg.hard_error_limit = 3;
    let input = "NOOP\r\n".repeat(20);
    let (lines, end, _) = session(&cfg, outside(), input.as_bytes());
    assert_eq!(end, SessionEnd::TooManyErrors);
    assert_eq!(lines.len(), 1 + 8 + 1);
}

#[test]
fn forbidden_commands_hang_up() {
    let (lines, end, _) = session(&settings(), outside(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(end, SessionEnd::Forbidden);
    assert_eq!(
        lines[1],
        "221 2.7.0 Error: I can break rules, too. Goodbye."
    );
    assert_eq!(lines.len(), 2);
}

#[test]
fn timeout_gives_421() {
    struct Slow(bool);
    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 {
                return Err(io::Error::new(io::ErrorKind::WouldBlock, "timed out"));
            }
            self.0 = true;
            let data = b"HELO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\npartial";
            buf[..data.len()].copy_from_slice(data);
            Ok(data.len())
        }
    }
    let cfg = settings();
    let sink = FakeSink::default();
    let mut out = Vec::new();
    let end = Session::new(&cfg, outside(), sink.clone()).run(Slow(false), &mut out);
    assert_eq!(end, SessionEnd::Timeout);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n421 4.4.2 mx.example.com Error: timeout exceeded\r\n"), "{text}");
    assert_eq!(sink.0.borrow().aborted, 1);
    assert!(sink.0.borrow().queued.is_empty());
}

#[test]
fn queue_errors_give_451() {
    let cfg = settings();
    let input = b"MAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\nMAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
    let sink = FakeSink::default();
    sink.0.borrow_mut().fail_create = true;
    let mut out = Vec::new();
    Session::new(&cfg, outside(), sink.clone()).run(&input[..], &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(
            "250 2.1.5 Ok\r\n451 4.3.0 Error: queue file write error\r\n250 2.1.0 Ok\r\n"
        ),
        "{text}"
    );

    let sink = FakeSink::default();
    sink.0.borrow_mut().fail_write = true;
    let input = b"MAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
    let mut out = Vec::new();
    Session::new(&cfg, outside(), sink.clone()).run(&input[..], &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n451 4.3.0 Error: queue file write error\r\n221 2.0.0 Bye\r\n"), "{text}");
    assert_eq!(sink.0.borrow().aborted, 1);
    assert!(sink.0.borrow().woken.is_empty());
}

#[test]
fn hop_count_limit() {
    let mut cfg = settings();
    cfg.hopcount_limit = 3;
    let ok = "Received: a\r\nReceived: b\r\n\r\nbody\r\n";
    let loop_ = "Received: a\r\nReceived: b\r\nReceived: c\r\n\r\nbody\r\n";
    let input = format!(
        "MAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\n{ok}.\r\nMAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\n{loop_}.\r\nQUIT\r\n"
    );
    let (lines, _, sink) = session(&cfg, outside(), input.as_bytes());
    assert!(lines.contains(&"250 2.0.0 Ok: queued as ABC001".to_string()));
    assert!(lines.contains(&"554 5.4.0 Error: too many hops".to_string()));
    assert_eq!(sink.0.borrow().queued.len(), 1);
}

#[test]
fn smuggled_end_of_data_stays_content() {
    let input = b"MAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\nhello\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<b@localhost>\r\nDATA\r\nbad\r\n.\r\nQUIT\r\n";
    // smtpd_forbid_bare_newline = normalize: the bare LFs are kept as line ends (the
    // default, yes, is tested in proto.rs).
    let mut cfg = settings();
    cfg.proto.bare_newline = crate::limits::BareNewline::Normalize;
    let (lines, end, sink) = session(&cfg, outside(), input);
    assert_eq!(end, SessionEnd::Quit);
    assert_eq!(
        lines[1..],
        [
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
            "250 2.0.0 Ok: queued as ABC001",
            "221 2.0.0 Bye"
        ]
    );
    let shared = sink.0.borrow();
    let content = String::from_utf8(shared.queued[0].content.clone()).unwrap();
    assert!(
        content.ends_with("hello\n\nMAIL FROM:<evil@x>\nRCPT TO:<b@localhost>\nDATA\nbad\n"),
        "{content}"
    );
}

#[test]
fn ehlo_resets_transaction() {
    let input = b"MAIL FROM:<a@c>\r\nEHLO x\r\nRCPT TO:<a@localhost>\r\nQUIT\r\n";
    let (lines, _, _) = session(&settings(), outside(), input);
    assert!(lines.contains(&"503 5.5.1 Error: need MAIL command".to_string()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_input_never_panics_and_replies_are_well_formed(
        input in proptest::collection::vec(any::<u8>(), 0..2048)
    ) {
        let (lines, _, _) = session(&settings(), outside(), &input);
        for l in &lines {
            let b = l.as_bytes();
            prop_assert!(b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && (b[3] == b' ' || b[3] == b'-'), "{l:?}");
        }
    }

    #[test]
    fn command_soup_never_panics(
        cmds in proptest::collection::vec(prop_oneof![
            Just("EHLO x".to_string()), Just("HELO y".to_string()), Just("MAIL FROM:<a@b>".to_string()),
            Just("RCPT TO:<u@localhost>".to_string()), Just("RCPT TO:<u@far.example>".to_string()),
            Just("DATA".to_string()), Just(".".to_string()), Just("RSET".to_string()), Just("NOOP".to_string()),
            "[ -~]{0,40}",
        ], 0..40),
        ends in proptest::collection::vec(prop_oneof![Just("\r\n"), Just("\n"), Just("\r")], 40),
    ) {
        let mut input = String::new();
        for (c, e) in cmds.iter().zip(ends.iter()) {
            input.push_str(c);
            input.push_str(e);
        }
        let (lines, _, _) = session(&settings(), outside(), input.as_bytes());
        for l in &lines {
            let b = l.as_bytes();
            prop_assert!(b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && (b[3] == b' ' || b[3] == b'-'), "{l:?}");
        }
    }
}

#[test]
fn real_socket_timeout_and_pipelining() {
    use std::io::{BufRead, BufReader};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, peer) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let cfg = settings();
        let sink = FakeSink::default();
        let end =
            Session::new(&cfg, ClientInfo::from_ip(peer.ip()), sink.clone()).run(&stream, &stream);
        let queued = sink.0.borrow().queued.len();
        (end, queued)
    });
    let mut client = TcpStream::connect(addr).unwrap();
    client
        .write_all(b"EHLO t\r\nMAIL FROM:<a@t>\r\nRCPT TO:<x@far.example>\r\nDATA\r\nhi\r\n.\r\n")
        .unwrap();
    let mut lines = Vec::new();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l).unwrap() == 0 {
            break;
        }
        lines.push(l.trim_end().to_string());
    }
    let (end, queued) = server.join().unwrap();
    assert_eq!(end, SessionEnd::Timeout);
    // 127.0.0.1 is in mynetworks: the foreign recipient is relayed.
    assert_eq!(queued, 1);
    assert!(
        lines.contains(&"250 2.0.0 Ok: queued as ABC001".to_string()),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "421 4.4.2 mx.example.com Error: timeout exceeded"
    );
}

/// A transport whose input arrives in the given chunks (one per read) and which can
/// "start TLS": it writes a `<TLS>` marker into the output so tests can tell the
/// replies sent before the handshake from those after it.
struct FakeTls {
    chunks: VecDeque<Vec<u8>>,
    out: Rc<RefCell<Vec<u8>>>,
    available: bool,
}

impl Read for FakeTls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.chunks.pop_front() {
            None => Ok(0),
            Some(c) => {
                assert!(c.len() <= buf.len());
                buf[..c.len()].copy_from_slice(&c);
                Ok(c.len())
            }
        }
    }
}

impl Write for FakeTls {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.out.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for FakeTls {
    fn start_tls(&mut self) -> Result<(TlsInfo, Option<crate::ccert::ClientCert>), io::Error> {
        if !self.available {
            return Err(io::Error::other("no TLS"));
        }
        self.available = false;
        self.out.borrow_mut().extend_from_slice(b"<TLS>\r\n");
        let info = TlsInfo {
            protocol: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            bits: 256,
        };
        Ok((info, None))
    }
    fn tls_available(&self) -> bool {
        self.available
    }
    fn input_ready(&mut self) -> bool {
        false
    }
    fn set_read_timeout(&mut self, _: std::time::Duration) -> io::Result<()> {
        Ok(())
    }
}

/// Runs a session over FakeTls; returns (reply lines before `<TLS>`, lines after, sink).
fn tls_session(
    cfg: &Settings,
    chunks: &[&[u8]],
    available: bool,
    wrapper: bool,
) -> (Vec<String>, Vec<String>, FakeSink) {
    let sink = FakeSink::default();
    let out = Rc::new(RefCell::new(Vec::new()));
    let t = FakeTls {
        chunks: chunks.iter().map(|c| c.to_vec()).collect(),
        out: out.clone(),
        available,
    };
    Session::new(cfg, inside(), sink.clone()).run_over(t, wrapper);
    let text = String::from_utf8(out.borrow().clone()).unwrap();
    let (before, after) = text.split_once("<TLS>\r\n").unwrap_or((&text, ""));
    let split = |s: &str| s.split_terminator("\r\n").map(str::to_string).collect();
    (split(before), split(after), sink)
}

fn tls_cfg(level: SecurityLevel) -> Settings {
    let mut cfg = settings();
    cfg.tls.level = level;
    cfg
}

#[test]
fn starttls_advertised_only_before_tls_and_state_resets() {
    let cfg = tls_cfg(SecurityLevel::May);
    let (before, after, _) = tls_session(
        &cfg,
        &[
            b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nSTARTTLS\r\n",
            b"RCPT TO:<u@localhost>\r\nEHLO c.example\r\nSTARTTLS\r\nQUIT\r\n",
        ],
        true,
        false,
    );
    assert!(before.contains(&"250-STARTTLS".to_string()), "{before:?}");
    assert_eq!(before.last().unwrap(), "220 2.0.0 Ready to start TLS");
    // The transaction started before TLS is gone.
    assert_eq!(after[0], "503 5.5.1 Error: need MAIL command");
    assert!(!after.iter().any(|l| l.contains("STARTTLS")), "{after:?}");
    assert!(after.contains(&"554 5.5.1 Error: TLS already active".to_string()));
    assert_eq!(after.last().unwrap(), "221 2.0.0 Bye");
}

#[test]
fn pipelined_plaintext_after_starttls_is_discarded() {
    let cfg = tls_cfg(SecurityLevel::May);
    // RSET and a MAIL ride in the same packet as STARTTLS: an attacker's injection.
    let (before, after, _) = tls_session(
        &cfg,
        &[
            b"EHLO c\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<evil@x>\r\n",
            b"NOOP\r\nQUIT\r\n",
        ],
        true,
        false,
    );
    assert_eq!(before.last().unwrap(), "220 2.0.0 Ready to start TLS");
    assert_eq!(after, ["250 2.0.0 Ok", "221 2.0.0 Bye"]);
}

#[test]
fn starttls_refusals() {
    let (_, _, _) = tls_session(&settings(), &[], false, false);
    let (lines, _, _) = session(&settings(), inside(), b"EHLO c\r\nSTARTTLS\r\nQUIT\r\n");
    assert!(!lines.iter().any(|l| l.contains("STARTTLS")));
    assert_eq!(
        lines[lines.len() - 2],
        "502 5.5.1 Error: command not implemented"
    );
    let cfg = tls_cfg(SecurityLevel::Encrypt);
    let (lines, _, _) = session(&cfg, inside(), b"EHLO c\r\nSTARTTLS\r\nQUIT\r\n");
    assert!(!lines.iter().any(|l| l.contains("STARTTLS")));
    assert_eq!(lines[lines.len() - 2], "454 4.7.0 TLS not available");
    let cfg = tls_cfg(SecurityLevel::May);
    let (before, after, _) = tls_session(&cfg, &[b"STARTTLS now\r\nQUIT\r\n"], true, false);
    assert_eq!(before[1..], ["501 5.5.4 Syntax: STARTTLS", "221 2.0.0 Bye"]);
    assert!(after.is_empty());
}

#[test]
fn encrypt_requires_starttls_first() {
    let mut cfg = tls_cfg(SecurityLevel::Encrypt);
    cfg.session.tls_received_header = true;
    let (before, after, sink) = tls_session(
        &cfg,
        &[
            b"EHLO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<u@localhost>\r\nDATA\r\nVRFY u\r\nNOOP\r\nRSET\r\nHELP\r\nSTARTTLS\r\n",
            b"EHLO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<u@localhost>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
        ],
        true,
        false,
    );
    let must = "530 5.7.0 Must issue a STARTTLS command first";
    let n = before.len();
    assert_eq!(before[n - 8..n - 4], [must, must, must, must]);
    assert!(before[n - 4..n - 1].iter().all(|l| l.starts_with("2")));
    let codes: Vec<&str> = after.iter().map(|l| &l[..4]).collect();
    assert!(
        codes.ends_with(&["250 ", "250 ", "354 ", "250 ", "221 "]),
        "{after:?}"
    );
    let q = sink.0.borrow();
    let content = String::from_utf8_lossy(&q.queued[0].content).to_string();
    assert!(
        content.contains(
            "\n\t(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384 (256/256 bits))\n\t(No client certificate requested)\n\tby mx.example.com (Rostfix) with ESMTPS id"
        ),
        "{content}"
    );
}

/// smtpd_tls_received_header = no (the default): the cipher stays out of Received.
#[test]
fn no_cipher_in_received_by_default() {
    let cfg = tls_cfg(SecurityLevel::May);
    let (_, after, sink) = tls_session(
        &cfg,
        &[
            b"EHLO c\r\nSTARTTLS\r\n",
            b"EHLO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<u@localhost>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
        ],
        true,
        false,
    );
    assert!(
        after.iter().any(|l| l.starts_with("250 2.0.0 Ok: queued")),
        "{after:?}"
    );
    let q = sink.0.borrow();
    let content = String::from_utf8_lossy(&q.queued[0].content).to_string();
    assert!(!content.contains("(using "), "{content}");
    assert!(content.contains(") with ESMTPS id"), "{content}");
}

#[test]
fn wrapper_mode_handshakes_before_the_banner() {
    let cfg = tls_cfg(SecurityLevel::None);
    let (before, after, _) = tls_session(&cfg, &[b"EHLO c\r\nQUIT\r\n"], true, true);
    assert!(before.is_empty());
    assert!(after[0].starts_with("220 mx.example.com"));
    assert!(!after.iter().any(|l| l.contains("STARTTLS")));
    // No certificate: the connection is closed without a banner.
    let (before, after, _) = tls_session(&cfg, &[b"EHLO c\r\n"], false, true);
    assert!(before.is_empty() && after.is_empty());
}

#[test]
fn mail_is_refused_with_452_while_the_queue_is_short_of_space() {
    let mut cfg = settings();
    cfg.queue_minfree = 5_000_000;
    cfg.message_size_limit = 1_000_000;
    let input = b"MAIL FROM:<a@c>\r\nQUIT\r\n";
    let run = |cfg: &Settings, free: u64| {
        let sink = FakeSink::default();
        sink.0.borrow_mut().free = Some(free);
        let mut out = Vec::new();
        Session::new(cfg, outside(), sink).run(&input[..], &mut out);
        String::from_utf8(out).unwrap()
    };
    let text = run(&cfg, 5_000_000);
    assert!(
        text.contains("\r\n452 4.3.1 Insufficient system storage\r\n"),
        "{text}"
    );
    let text = run(&cfg, 5_000_001);
    assert!(text.contains("\r\n250 2.1.0 Ok\r\n"), "{text}");
    // 1.5 times message_size_limit must be free even without queue_minfree.
    cfg.queue_minfree = 0;
    let text = run(&cfg, 1_400_000);
    assert!(
        text.contains("\r\n452 4.3.1 Insufficient system storage\r\n"),
        "{text}"
    );
}

#[test]
fn a_full_disk_during_data_answers_452_4_3_1() {
    let cfg = settings();
    let sink = FakeSink::default();
    sink.0.borrow_mut().disk_full = true;
    let input = b"MAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
    let mut out = Vec::new();
    Session::new(&cfg, outside(), sink.clone()).run(&input[..], &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("\r\n452 4.3.1 Insufficient system storage\r\n221"),
        "{text}"
    );
    assert!(sink.0.borrow().queued.is_empty());
}
