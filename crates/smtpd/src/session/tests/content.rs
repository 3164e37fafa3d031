//! Content inspection in a whole session: the verdict of header_checks/body_checks
//! answers the DATA command and decides where the message goes.

use super::*;
use rostfix_inspect::ContentChecks;
use std::sync::Arc;

/// Settings whose header_checks and body_checks are these regexp tables.
fn with_checks(header: &str, body: &str) -> Settings {
    let dir = std::env::temp_dir().join(format!(
        "smtpd-content-{}-{}",
        std::process::id(),
        header.len() * 1000 + body.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("h"), header).unwrap();
    std::fs::write(dir.join("b"), body).unwrap();
    let table =
        |f: &str| rostfix_maps::open_map(&format!("regexp:{}", dir.join(f).display())).unwrap();
    let mut cfg = settings();
    cfg.content_checks = Some(Arc::new(ContentChecks {
        header: vec![table("h")],
        mime: vec![table("h")],
        nested: vec![],
        body: vec![table("b")],
        body_size_limit: 51200,
        mime_processing: true,
        header_cap: 102_400,
    }));
    cfg
}

fn send(cfg: &Settings, content: &str) -> (Vec<String>, FakeSink) {
    let input =
        format!("MAIL FROM:<s@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\n{content}.\r\nQUIT\r\n");
    let (lines, _, sink) = session(cfg, inside(), input.as_bytes());
    (lines, sink)
}

#[test]
fn reject_answers_data() {
    let cfg = with_checks(
        "/^Subject: .*viagra/ REJECT no pills here\n",
        "/^x$/ DUNNO\n",
    );
    let (lines, sink) = send(&cfg, "Subject: cheap viagra\r\n\r\nhi\r\n");
    assert!(
        lines.contains(&"550 5.7.1 no pills here".to_string()),
        "{lines:?}"
    );
    assert!(sink.0.borrow().queued.is_empty());
    let cfg = with_checks("/^x$/ DUNNO\n", "/^later/ DEFER 4.7.0 come back\n");
    let (lines, _) = send(&cfg, "Subject: a\r\n\r\nlater please\r\n");
    assert!(
        lines.contains(&"451 4.7.0 come back".to_string()),
        "{lines:?}"
    );
}

#[test]
fn discard_answers_250_and_queues_nothing() {
    let cfg = with_checks("/^Subject: junk/ DISCARD\n", "/^x$/ DUNNO\n");
    let (lines, sink) = send(&cfg, "Subject: junk\r\n\r\nhi\r\n");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("250 2.0.0 Ok: queued as ")),
        "{lines:?}"
    );
    assert!(sink.0.borrow().queued.is_empty());
    assert_eq!(sink.0.borrow().aborted, 1);
}

#[test]
fn hold_redirect_and_edits_reach_the_queue() {
    let cfg = with_checks(
        "/^Subject: h/ HOLD\n/^X-To:/ REDIRECT r@example.org\n/^X-Drop:/ IGNORE\n",
        "/^secret/ REPLACE [removed]\n",
    );
    let (_, sink) = send(
        &cfg,
        "Subject: h\r\nX-To: x\r\nX-Drop: y\r\n\r\nsecret stuff\r\n",
    );
    let shared = sink.0.borrow();
    assert_eq!(shared.queued.len(), 1);
    let m = &shared.queued[0];
    assert_eq!(shared.held, std::slice::from_ref(&m.id));
    // A held message does not wake qmgr.
    assert!(shared.woken.is_empty());
    assert_eq!(m.envelope.recipients.len(), 1);
    assert_eq!(m.envelope.recipients[0].address, "r@example.org");
    assert_eq!(m.envelope.recipients[0].orig_address, "a@localhost");
    let content = String::from_utf8_lossy(&m.content);
    assert!(!content.contains("X-Drop"), "{content}");
    assert!(
        content.ends_with("\nSubject: h\nX-To: x\n\n[removed]\n"),
        "{content}"
    );
}

#[test]
fn our_received_header_is_inspected_too() {
    let cfg = with_checks(
        "/^Received: from .*mx\\.example\\.com/ PREPEND X-Seen: ours\n",
        "/^x$/ DUNNO\n",
    );
    let (_, sink) = send(&cfg, "Subject: a\r\n\r\nb\r\n");
    let content = String::from_utf8_lossy(&sink.0.borrow().queued[0].content).to_string();
    assert!(
        content.starts_with("X-Seen: ours\nReceived: from "),
        "{content}"
    );
}

#[test]
fn reject_answers_the_last_bdat() {
    let cfg = with_checks("/^Subject: no/ REJECT not this\n", "/^x$/ DUNNO\n");
    let body = "Subject: no\r\n\r\nhi\r\n";
    let input = format!(
        "EHLO c\r\nMAIL FROM:<s@c>\r\nRCPT TO:<a@localhost>\r\nBDAT {} LAST\r\n{body}QUIT\r\n",
        body.len()
    );
    let (lines, _, sink) = session(&cfg, inside(), input.as_bytes());
    assert!(
        lines.contains(&"550 5.7.1 not this".to_string()),
        "{lines:?}"
    );
    assert!(sink.0.borrow().queued.is_empty());
}
