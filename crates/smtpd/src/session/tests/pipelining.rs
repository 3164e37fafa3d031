//! The improper-pipelining guard (pipelining.rs) over scripted clients: each chunk of
//! input stands for one client write, made after reading the replies to the previous
//! one, so legitimate RFC 2920 pipelining and commands sent too early can be told apart.

use super::*;
use crate::tls::TlsInfo;

/// Input handed out one chunk per read. From the `ready_after`th read on, the
/// transport says a read would not block, as a socket does when the client has sent
/// more (or closed its side): Some(0) is a client that wrote before the greeting.
struct Script {
    chunks: VecDeque<Vec<u8>>,
    ready_after: Option<usize>,
    reads: usize,
    out: Rc<RefCell<Vec<u8>>>,
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        match self.chunks.pop_front() {
            Some(c) => {
                let n = c.len().min(buf.len());
                buf[..n].copy_from_slice(&c[..n]);
                if n < c.len() {
                    self.chunks.push_front(c[n..].to_vec());
                }
                Ok(n)
            }
            None => Ok(0),
        }
    }
}

impl Write for Script {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.out.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Script {
    fn start_tls(&mut self) -> Result<(TlsInfo, Option<crate::ccert::ClientCert>), io::Error> {
        Err(io::Error::other("TLS not available"))
    }
    fn tls_available(&self) -> bool {
        false
    }
    fn input_ready(&mut self) -> bool {
        self.ready_after.is_some_and(|n| self.reads >= n)
    }
    fn set_read_timeout(&mut self, _: std::time::Duration) -> io::Result<()> {
        Ok(())
    }
}

struct Run {
    lines: Vec<String>,
    end: SessionEnd,
    sink: FakeSink,
    summary: String,
}

fn run(cfg: &Settings, client: ClientInfo, writes: &[&[u8]], ready_after: Option<usize>) -> Run {
    let sink = FakeSink::default();
    let out = Rc::new(RefCell::new(Vec::new()));
    let script = Script {
        chunks: writes.iter().map(|w| w.to_vec()).collect(),
        ready_after,
        reads: 0,
        out: out.clone(),
    };
    let mut session = Session::new(cfg, client, sink.clone());
    let end = session.run_over(script, false);
    let text = String::from_utf8(out.take()).unwrap();
    Run {
        lines: text.split_terminator("\r\n").map(str::to_string).collect(),
        end,
        sink,
        summary: session.stats.summary(),
    }
}

fn guarded() -> Settings {
    let mut s = settings();
    s.proto.forbid_unauth_pipelining = true;
    s
}

const IMPROPER: &str = "554 5.5.0 Error: improper command pipelining";

/// DATA refused (no valid recipient), with a second message hidden in what follows.
const HIDDEN: &[u8] = b"MAIL FROM:<a@c>\r\nRCPT TO:<y@elsewhere.example>\r\nDATA\r\n\
MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<z@mx.example.com>\r\nDATA\r\n\
Subject: hidden\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n";

#[test]
fn refused_data_with_a_hidden_message_is_cut_off() {
    let r = run(&guarded(), outside(), &[b"EHLO c\r\n", HIDDEN], None);
    assert_eq!(r.end, SessionEnd::ImproperPipelining);
    assert_eq!(
        r.lines[r.lines.len() - 3..],
        [
            "250 2.1.0 Ok",
            "454 4.7.1 <y@elsewhere.example>: Relay access denied",
            IMPROPER
        ]
    );
    assert!(r.sink.0.borrow().queued.is_empty());
    assert_eq!(r.summary, "ehlo=1 mail=1 rcpt=0/1 data=0/1 commands=2/4");
}

#[test]
fn without_the_guard_the_hidden_message_is_queued() {
    // What smtpd_forbid_unauth_pipelining = no keeps: the text after a refused DATA
    // is read as commands (RFC 5321 behaviour), so the hidden message goes through.
    let r = run(&settings(), outside(), &[b"EHLO c\r\n", HIDDEN], None);
    assert_eq!(r.end, SessionEnd::Quit);
    // The hidden MAIL is refused as nested; its RCPT and DATA complete the open
    // transaction, and the hidden text is delivered.
    let queued = &r.sink.0.borrow().queued;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].envelope.recipients[0].address, "z@mx.example.com");
    assert!(String::from_utf8_lossy(&queued[0].content).contains("smuggled"));
}

#[test]
fn rfc2920_pipelining_is_left_alone() {
    let r = run(
        &guarded(),
        outside(),
        &[
            b"EHLO c\r\n",
            b"MAIL FROM:<a@c>\r\nRCPT TO:<x@mx.example.com>\r\nRCPT TO:<y@mx.example.com>\r\nDATA\r\n",
            b"Subject: ok\r\n\r\nbody\r\n.\r\nRSET\r\nMAIL FROM:<b@c>\r\nRCPT TO:<x@mx.example.com>\r\nDATA\r\n",
            b"second\r\n.\r\n",
            b"QUIT\r\n",
        ],
        None,
    );
    assert_eq!(r.end, SessionEnd::Quit, "{:?}", r.lines);
    assert_eq!(r.sink.0.borrow().queued.len(), 2);
    assert!(!r.lines.iter().any(|l| l == IMPROPER));
}

#[test]
fn commands_that_end_a_group_must_be_waited_for() {
    for (first, last) in [
        (&b"EHLO c\r\nMAIL FROM:<a@c>\r\n"[..], "ehlo=0/1"),
        (b"HELO c\r\nMAIL FROM:<a@c>\r\n", "helo=0/1"),
        (b"NOOP\r\nNOOP\r\n", "noop=0/1"),
        (b"VRFY x\r\nQUIT\r\n", "vrfy=0/1"),
        (b"QUIT\r\nMAIL FROM:<a@c>\r\n", "quit=0/1"),
        (b"STARTTLS\r\nMAIL FROM:<a@c>\r\n", "unknown=0/1"),
    ] {
        let r = run(&guarded(), outside(), &[first], None);
        assert_eq!(r.end, SessionEnd::ImproperPipelining, "{first:?}");
        assert_eq!(r.lines[1..], [IMPROPER], "{first:?}");
        assert!(r.summary.starts_with(last), "{first:?}: {}", r.summary);
    }
}

#[test]
fn input_still_in_the_socket_counts_too() {
    // The first read got only the EHLO line; the MAIL behind it waits in the socket.
    let r = run(
        &guarded(),
        outside(),
        &[b"EHLO c\r\n", b"MAIL FROM:<a@c>\r\n"],
        Some(1),
    );
    assert_eq!(r.end, SessionEnd::ImproperPipelining);
    assert_eq!(r.lines[1..], [IMPROPER]);
    assert_eq!(r.summary, "ehlo=0/1 commands=0/1");
}

#[test]
fn talking_before_the_greeting_is_refused() {
    let r = run(&guarded(), outside(), &[b"EHLO c\r\n"], Some(0));
    assert_eq!(r.end, SessionEnd::ImproperPipelining);
    // No greeting: the only reply is the refusal.
    assert_eq!(r.lines, [IMPROPER]);
    assert_eq!(r.summary, "unknown=0/1 commands=0/1");
}

#[test]
fn authenticated_and_local_clients_and_the_no_setting_are_exempt() {
    let input: &[&[u8]] = &[b"EHLO c\r\nNOOP\r\nQUIT\r\n"];
    let r = run(&guarded(), ClientInfo::local_socket(), input, None);
    assert_eq!(r.end, SessionEnd::Quit);
    let r = run(&settings(), outside(), input, None);
    assert_eq!(r.end, SessionEnd::Quit);
    let p = &guarded().proto;
    let ip = outside().ip;
    assert!(p.forbids_pipelining(ip, false));
    assert!(!p.forbids_pipelining(ip, true));
    assert!(!p.forbids_pipelining(None, false));
}

#[test]
fn end_of_input_after_quit_is_not_pipelining() {
    // A client that sends QUIT and closes its side at once has not pipelined anything,
    // though its socket reads as ready (at EOF).
    let r = run(
        &guarded(),
        outside(),
        &[b"EHLO c\r\n", b"QUIT\r\n"],
        Some(2),
    );
    assert_eq!(r.end, SessionEnd::Quit, "{:?}", r.lines);
    assert_eq!(r.lines.last().map(String::as_str), Some("221 2.0.0 Bye"));
}
