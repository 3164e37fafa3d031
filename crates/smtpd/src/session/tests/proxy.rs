//! smtpd_proxy_filter in a whole session, against a scripted filter on loopback: the
//! client gets the filter's replies and our queue never sees the message.

use super::*;
use crate::proxy_filter::{Endpoint, ProxySettings};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// A filter that answers with `replies` in order (greeting first) and returns every
/// line it received.
fn filter(replies: &'static [&'static str]) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut seen = Vec::new();
        let mut in_data = false;
        for (i, reply) in replies.iter().enumerate() {
            if i > 0 {
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap() == 0 {
                        return seen;
                    }
                    let line = line.trim_end().to_string();
                    let end_of_data = in_data && line == ".";
                    seen.push(line.clone());
                    if !in_data || end_of_data {
                        in_data = line == "DATA";
                        break;
                    }
                }
            }
            s.write_all(reply.as_bytes()).unwrap();
        }
        let mut rest = String::new();
        let _ = r.read_line(&mut rest);
        seen.push(rest.trim_end().to_string());
        seen
    });
    (port, handle)
}

fn with_filter(port: u16) -> Settings {
    let mut cfg = settings();
    cfg.proxy_filter = Some(ProxySettings {
        service: format!("127.0.0.1:{port}"),
        endpoint: Endpoint::Inet {
            host: "127.0.0.1".into(),
            port,
        },
        timeout: std::time::Duration::from_secs(10),
        ehlo: "front.example".into(),
    });
    cfg
}

const INPUT: &str = "EHLO c\r\nMAIL FROM:<s@c> SIZE=10\r\nRCPT TO:<a@localhost>\r\nDATA\r\n\
                     Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n";

#[test]
fn the_filter_accepts_and_our_queue_stays_empty() {
    let (port, f) = filter(&[
        "220 filter\r\n",
        "250-filter\r\n250 PIPELINING\r\n",
        "250 2.1.0 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "354 go ahead\r\n",
        "250 2.0.0 Ok: queued as BEHIND1\r\n",
    ]);
    let cfg = with_filter(port);
    let (lines, _, sink) = session(&cfg, inside(), INPUT.as_bytes());
    assert!(
        lines.contains(&"250 2.0.0 Ok: queued as BEHIND1".to_string()),
        "{lines:?}"
    );
    // No CHUNKING while a filter is set: BDAT would bypass it.
    assert!(!lines.iter().any(|l| l.contains("CHUNKING")), "{lines:?}");
    let seen = f.join().unwrap();
    assert_eq!(
        seen[..3],
        [
            "EHLO front.example",
            "MAIL FROM:<s@c> SIZE=10",
            "RCPT TO:<a@localhost>"
        ]
    );
    assert_eq!(seen[3], "DATA");
    assert!(
        seen[4].starts_with("Received: from c (unknown [127.0.0.1])"),
        "{seen:?}"
    );
    assert!(seen.contains(&"..dot".to_string()), "{seen:?}");
    assert_eq!(seen[seen.len() - 2..], [".", "QUIT"]);
    let s = sink.0.borrow();
    assert!(s.queued.is_empty() && s.aborted == 0);
}

#[test]
fn the_filters_refusals_reach_the_client() {
    let (port, f) = filter(&[
        "220 filter\r\n",
        "250 filter\r\n",
        "250 2.1.0 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "354 go ahead\r\n",
        "554 5.7.1 refused behind the filter\r\n",
    ]);
    let cfg = with_filter(port);
    let (lines, _, sink) = session(&cfg, inside(), INPUT.as_bytes());
    assert!(
        lines.contains(&"554 5.7.1 refused behind the filter".to_string()),
        "{lines:?}"
    );
    f.join().unwrap();
    assert!(sink.0.borrow().queued.is_empty());

    let (port, f) = filter(&[
        "220 filter\r\n",
        "250 filter\r\n",
        "250 2.1.0 Ok\r\n",
        "550 5.1.1 <a@localhost>: no such user\r\n",
    ]);
    let cfg = with_filter(port);
    let (lines, _, sink) = session(&cfg, inside(), INPUT.as_bytes());
    assert!(
        lines.contains(&"550 5.1.1 <a@localhost>: no such user".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"554 5.5.1 Error: no valid recipients".to_string()),
        "{lines:?}"
    );
    f.join().unwrap();
    assert!(sink.0.borrow().queued.is_empty());
}

#[test]
fn an_unreachable_filter_gives_451() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let cfg = with_filter(port);
    let (lines, _, sink) = session(&cfg, inside(), INPUT.as_bytes());
    assert!(
        lines.contains(&"451 4.3.0 Error: queue file write error".to_string()),
        "{lines:?}"
    );
    assert!(sink.0.borrow().queued.is_empty());
}

#[test]
fn a_message_too_big_never_gets_the_final_dot() {
    let (port, f) = filter(&[
        "220 filter\r\n",
        "250 filter\r\n",
        "250 2.1.0 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "354 go ahead\r\n",
    ]);
    let mut cfg = with_filter(port);
    cfg.message_size_limit = 300;
    let big = "x".repeat(400);
    let input = format!(
        "EHLO c\r\nMAIL FROM:<s@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\n{big}\r\n.\r\nQUIT\r\n"
    );
    let (lines, _, _) = session(&cfg, inside(), input.as_bytes());
    assert!(
        lines.contains(&"552 5.3.4 Error: message file too big".to_string()),
        "{lines:?}"
    );
    let seen = f.join().unwrap();
    assert!(!seen.contains(&".".to_string()), "{seen:?}");
}
