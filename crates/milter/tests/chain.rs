//! Two milters in a chain, each a scripted peer on a loopback socket: the second sees
//! the header the first added at end of message (Postfix's milter8 order), and a
//! REPLYCODE at RCPT becomes the verdict with the milter's own code and text.

use rostfix_milter::codec::{encode, put_str, read_packet};
use rostfix_milter::config::{DefaultAction, Endpoint};
use rostfix_milter::{
    ConnectInfo, EnvelopeEdits, Message, MilterConfig, MilterSpec, Milters, Verdict,
};
use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// A peer answering CONTINUE to everything; at end of message it first sends
/// `eom_edits` (packets), at RCPT it answers `rcpt_reply` when given. The header
/// names it was sent go to `seen`.
fn peer(
    eom_edits: Vec<Vec<u8>>,
    rcpt_reply: Option<&'static str>,
    seen: mpsc::Sender<String>,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        while let Ok((code, data)) = read_packet(&mut conn) {
            let mut out = Vec::new();
            match code {
                b'O' => {
                    let mut d = 6u32.to_be_bytes().to_vec();
                    d.extend_from_slice(&0x01u32.to_be_bytes()); // SMFIF_ADDHDRS
                    d.extend_from_slice(&0u32.to_be_bytes());
                    out = encode(b'O', &d);
                }
                b'D' | b'A' | b'Q' => {}
                b'L' => {
                    let name = data.split(|b| *b == 0).next().unwrap_or_default();
                    let _ = seen.send(String::from_utf8_lossy(name).into_owned());
                    out = encode(b'c', &[]);
                }
                b'R' if rcpt_reply.is_some() => {
                    let mut d = Vec::new();
                    put_str(&mut d, rcpt_reply.unwrap_or_default());
                    out = encode(b'y', &d);
                }
                b'E' => {
                    for e in &eom_edits {
                        out.extend_from_slice(e);
                    }
                    out.extend_from_slice(&encode(b'c', &[]));
                }
                _ => out = encode(b'c', &[]),
            }
            if !out.is_empty() && conn.write_all(&out).is_err() {
                return;
            }
        }
    });
    port
}

fn spec(port: u16) -> MilterSpec {
    MilterSpec {
        name: format!("inet:127.0.0.1:{port}"),
        endpoint: Endpoint::Inet {
            host: "127.0.0.1".into(),
            port,
        },
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        content_timeout: Duration::from_secs(5),
        default_action: DefaultAction::Tempfail,
        protocol: 6,
    }
}

fn chain(ports: &[u16]) -> Milters {
    let config = MilterConfig {
        milters: ports.iter().copied().map(spec).collect(),
        ..MilterConfig::default()
    };
    let client = ConnectInfo {
        hostname: "client.example".into(),
        addr: "192.0.2.1".parse().ok(),
        port: 0,
    };
    let (milters, verdict) = Milters::connect(&config, &client, &|_| None);
    assert_eq!(verdict, Verdict::Continue);
    milters
}

#[test]
fn later_milter_sees_earlier_milters_header() {
    let (tx1, _rx1) = mpsc::channel();
    let (tx2, rx2) = mpsc::channel();
    let mut add = Vec::new();
    put_str(&mut add, "X-First");
    put_str(&mut add, "added");
    let first = peer(vec![encode(b'h', &add)], None, tx1);
    let second = peer(Vec::new(), None, tx2);
    let mut milters = chain(&[first, second]);
    assert_eq!(
        milters.mail(&["<a@example.com>".into()], &|_| None),
        Verdict::Continue
    );
    assert_eq!(
        milters.rcpt(&["<b@example.com>".into()], &|_| None),
        Verdict::Continue
    );
    assert_eq!(milters.data(&|_| None), Verdict::Continue);
    let mut msg = Message::parse(b"Subject: hi\n\nbody\n");
    let mut edits = EnvelopeEdits::default();
    assert_eq!(
        milters.message(&mut msg, &mut edits, &|_| None),
        Verdict::Continue
    );
    milters.quit();
    let seen: Vec<String> = rx2.try_iter().collect();
    assert_eq!(seen, vec!["Subject".to_string(), "X-First".to_string()]);
    assert_eq!(
        msg.render(),
        b"Subject: hi\nX-First: added\n\nbody\n".to_vec()
    );
}

#[test]
fn replycode_at_rcpt_is_the_verdict() {
    let (tx, _rx) = mpsc::channel();
    let port = peer(Vec::new(), Some("550 5.7.9 go away"), tx);
    let mut milters = chain(&[port]);
    assert_eq!(
        milters.mail(&["<a@example.com>".into()], &|_| None),
        Verdict::Continue
    );
    assert_eq!(
        milters.rcpt(&["<b@example.com>".into()], &|_| None),
        Verdict::Reply {
            code: 550,
            text: "5.7.9 go away".into()
        }
    );
}
