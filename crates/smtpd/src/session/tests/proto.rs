//! Session tests for the protocol completeness and abuse-limit layer: BDAT, DSN,
//! SMTPUTF8, BODY, VRFY off, bare newlines, the soft error delay, the header size
//! limit, sequencing. A child of session/tests/mod.rs, reusing its fake queue.

use super::*;
use crate::limits::BareNewline;

fn queued(sink: &FakeSink) -> Vec<Stored> {
    sink.0.borrow().queued.clone()
}

#[test]
fn bdat_delivers_chunks_intact() {
    let body = "Subject: t\r\n\r\nline one\r\n.\r\n..dots stay\r\n";
    let (a, b) = body.split_at(17);
    let input = format!(
        "EHLO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<u@localhost>\r\nBDAT {}\r\n{a}BDAT {} LAST\r\n{b}QUIT\r\n",
        a.len(),
        b.len()
    );
    let (lines, end, sink) = session(&settings(), outside(), input.as_bytes());
    assert_eq!(end, SessionEnd::Quit);
    let tail: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("250 CHUNKING"))
        .skip(1)
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            &format!("250 2.0.0 Ok: {} bytes", a.len()),
            "250 2.0.0 Ok: queued as ABC001",
            "221 2.0.0 Bye"
        ]
    );
    let q = queued(&sink);
    let content = String::from_utf8(q[0].content.clone()).unwrap();
    assert!(
        content.ends_with("Subject: t\n\nline one\n.\n..dots stay\n"),
        "{content}"
    );
}

#[test]
fn bdat_zero_last_and_sequencing() {
    // BDAT without MAIL: the chunk is still read, so "QUIT" inside it is not a command.
    let input = b"BDAT 6\r\nQUIT\r\nMAIL FROM:<a@c>\r\nBDAT 3\r\nabcRCPT TO:<u@localhost>\r\nBDAT 2\r\nhiDATA\r\nBDAT 0 LAST\r\nQUIT\r\n";
    let (lines, end, sink) = session(&settings(), outside(), input);
    assert_eq!(end, SessionEnd::Quit);
    assert_eq!(
        lines[1..],
        [
            "503 5.5.1 Error: need MAIL command",
            "250 2.1.0 Ok",
            "554 5.5.1 Error: no valid recipients",
            "250 2.1.5 Ok",
            "250 2.0.0 Ok: 2 bytes",
            "503 5.5.1 Error: BDAT and DATA cannot be mixed in one transaction",
            "250 2.0.0 Ok: queued as ABC001",
            "221 2.0.0 Bye"
        ]
    );
    assert!(queued(&sink)[0].content.ends_with(b"hi"));
}

#[test]
fn bdat_over_size_limit_and_rset() {
    let mut cfg = settings();
    cfg.message_size_limit = 600;
    let big = "x".repeat(700);
    let input = format!(
        "MAIL FROM:<a@c>\r\nRCPT TO:<u@localhost>\r\nBDAT 700\r\n{big}BDAT 1 LAST\r\nyMAIL FROM:<a@c>\r\nRCPT TO:<u@localhost>\r\nBDAT 2\r\nabRSET\r\nBDAT 1 LAST\r\nzQUIT\r\n"
    );
    let (lines, end, sink) = session(&cfg, outside(), input.as_bytes());
    assert_eq!(end, SessionEnd::Quit);
    assert_eq!(
        lines[1..],
        [
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "552 5.3.4 Error: message file too big",
            "503 5.5.1 Error: need MAIL command",
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "250 2.0.0 Ok: 2 bytes",
            "250 2.0.0 Ok",
            "503 5.5.1 Error: need MAIL command",
            "221 2.0.0 Bye"
        ]
    );
    assert!(queued(&sink).is_empty());
}

#[test]
fn dsn_and_smtputf8_land_in_the_envelope() {
    let input = "EHLO c\r\nMAIL FROM:<a@c> RET=HDRS ENVID=ab+2Bc SMTPUTF8 BODY=8BITMIME\r\n\
RCPT TO:<u@localhost> NOTIFY=NEVER\r\nRCPT TO:<müller@localhost> NOTIFY=failure,delay ORCPT=rfc822;orig+40x.example\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n";
    let (lines, _, sink) = session(&settings(), outside(), input.as_bytes());
    assert!(
        lines.iter().any(|l| l.starts_with("250 2.0.0 Ok: queued")),
        "{lines:?}"
    );
    let env = &queued(&sink)[0].envelope;
    let attr = |n: &str| {
        env.attrs
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(attr("dsn_ret"), Some("HDRS"));
    assert_eq!(attr("dsn_envid"), Some("ab+c"));
    assert_eq!(attr("smtputf8"), Some("1"));
    assert_eq!(attr("body_type"), Some("8BITMIME"));
    assert_eq!(env.recipients[0].notify, "NEVER");
    assert_eq!(env.recipients[0].orig_address, "u@localhost");
    assert_eq!(env.recipients[1].notify, "FAILURE,DELAY");
    assert_eq!(env.recipients[1].orig_address, "orig@x.example");
}

#[test]
fn utf8_addresses_need_smtputf8() {
    let input = "MAIL FROM:<müller@c>\r\nMAIL FROM:<a@c>\r\nRCPT TO:<jörg@localhost>\r\nRCPT TO:<a@localhost> NOTIFY=SOMETIMES\r\nQUIT\r\n";
    let (lines, _, _) = session(&settings(), outside(), input.as_bytes());
    assert_eq!(
        lines[1..],
        [
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
            "250 2.1.0 Ok",
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
            "501 5.5.4 Bad NOTIFY parameter syntax",
            "221 2.0.0 Bye"
        ]
    );
}

#[test]
fn postmaster_null_sender_quoted_and_routes() {
    let input = b"MAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<\"john doe\"@localhost>\r\nRCPT TO:<@relay.example,@b.example:u@localhost>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
    let (lines, _, sink) = session(&settings(), outside(), input);
    assert_eq!(
        codes(&lines[1..6]),
        ["250 ", "250 ", "250 ", "250 ", "250 "],
        "{lines:?}"
    );
    let env = &queued(&sink)[0].envelope;
    assert_eq!(env.sender, "");
    let rcpts: Vec<&str> = env.recipients.iter().map(|r| r.address.as_str()).collect();
    // Queued as cleanup writes them: envelope addresses are completed with
    // @$myorigin (the local rewriting context, crates/rewrite) and lose their route.
    assert_eq!(
        rcpts,
        [
            "postmaster@mx.example.com",
            "Postmaster@mx.example.com",
            "\"john doe\"@localhost",
            "u@localhost"
        ]
    );
}

#[test]
fn vrfy_can_be_disabled() {
    let mut cfg = settings();
    cfg.proto.disable_vrfy = true;
    let (lines, _, _) = session(&cfg, outside(), b"EHLO c\r\nVRFY root\r\nQUIT\r\n");
    assert!(!lines
        .iter()
        .any(|l| l.contains("VRFY") && l.starts_with("250")));
    assert!(lines.contains(&"502 5.5.1 VRFY command is disabled".to_string()));
}

#[test]
fn bare_lf_in_data_is_refused_and_ends_the_session() {
    let input = b"MAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\nhello\n.\nMAIL FROM:<evil@x>\r\n.\r\nQUIT\r\n";
    let (lines, end, sink) = session(&settings(), outside(), input);
    assert_eq!(end, SessionEnd::BareNewline);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("550 5.5.2 mx.example.com Error: bare <LF> received")
    );
    assert!(queued(&sink).is_empty());
    assert_eq!(sink.0.borrow().aborted, 1);
    // mynetworks is excluded by default: the same input is one message from inside.
    let (lines, end, sink) = session(&settings(), inside(), input);
    assert_eq!(end, SessionEnd::Quit, "{lines:?}");
    assert_eq!(queued(&sink).len(), 1);
}

#[test]
fn bare_lf_in_a_command_is_refused() {
    let (lines, end, _) = session(&settings(), outside(), b"EHLO c\nQUIT\r\n");
    assert_eq!(end, SessionEnd::BareNewline);
    assert_eq!(
        lines[1..],
        ["550 5.5.2 mx.example.com Error: bare <LF> received"]
    );
    let mut cfg = settings();
    cfg.proto.bare_newline = BareNewline::No;
    let (_, end, _) = session(&cfg, outside(), b"EHLO c\nQUIT\r\n");
    assert_eq!(end, SessionEnd::Quit);
}

#[test]
fn nul_bytes_never_desynchronize() {
    let input = b"NO\0OP\r\nMAIL FROM:<a\0@c>\r\nMAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\nx\0y\r\n.\r\nQUIT\r\n";
    let (lines, end, sink) = session(&settings(), outside(), input);
    assert_eq!(end, SessionEnd::Quit);
    assert_eq!(codes(&lines[1..3]), ["500 ", "500 "]);
    assert!(queued(&sink)[0].content.ends_with(b"x\0y\n"));
}

#[test]
fn errors_past_the_soft_limit_are_delayed() {
    let mut cfg = settings();
    cfg.proto.soft_error_limit = 1;
    cfg.proto.error_sleep_time = std::time::Duration::from_millis(200);
    let started = std::time::Instant::now();
    let (lines, _, _) = session(&cfg, outside(), b"XX\r\nXX\r\nXX\r\nQUIT\r\n");
    assert_eq!(codes(&lines[1..4]), ["502 ", "502 ", "502 "]);
    // Errors 2 and 3 are past the soft limit of 1.
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
}

#[test]
fn header_size_limit_refuses_huge_headers() {
    let mut cfg = settings();
    cfg.proto.header_size_limit = 100;
    let input = format!(
        "MAIL FROM:<a@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\nSubject: {}\r\n\r\nbody\r\n.\r\nQUIT\r\n",
        "x".repeat(200)
    );
    let (lines, _, sink) = session(&cfg, outside(), input.as_bytes());
    assert!(
        lines.contains(&"552 5.6.0 Error: message header too long".to_string()),
        "{lines:?}"
    );
    assert!(queued(&sink).is_empty());
}
