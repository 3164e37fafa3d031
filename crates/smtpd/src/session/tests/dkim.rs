//! Native DKIM signing in the session: mail from mynetworks is queued with a
//! DKIM-Signature: first, mail from an outside client is not (docs/dkim.md; the
//! signature's validity is checked end to end with dkimpy in tests/e2e/test_dkim.py).

use super::*;
use std::sync::Arc;

/// Settings signing *@example.com with a fresh Ed25519 key in a temporary directory.
fn signing_settings(tag: &str) -> (Settings, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("smtpd-dkim-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("ed.private");
    let _ = std::fs::remove_file(&key);
    rostfix_dkim::keygen::write_key(&key, &rostfix_dkim::keygen::ed25519_pem().unwrap()).unwrap();
    std::fs::write(
        dir.join("KeyTable"),
        format!("k example.com:ed:{}\n", key.display()),
    )
    .unwrap();
    std::fs::write(dir.join("SigningTable"), "*@example.com k\n").unwrap();
    let signer = rostfix_dkim::Signer::load(
        &dir.join("KeyTable").display().to_string(),
        &format!("refile:{}", dir.join("SigningTable").display()),
    )
    .unwrap()
    .unwrap();
    let mut s = settings();
    s.dkim = Some(Arc::new(signer));
    (s, dir)
}

const INPUT: &[u8] =
    b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@mx.example.com>\r\n\
DATA\r\nFrom: A <a@example.com>\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n";

#[test]
fn mynetworks_mail_is_signed_first_in_the_queue_file() {
    let (cfg, dir) = signing_settings("in");
    let (lines, _, sink) = session(&cfg, inside(), INPUT);
    assert!(
        lines.iter().any(|l| l.starts_with("250 2.0.0 Ok: queued")),
        "{lines:?}"
    );
    let content = String::from_utf8(sink.0.borrow().queued[0].content.clone()).unwrap();
    assert!(
        content.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; s=ed; d=example.com;"),
        "{content}"
    );
    // Our Received: header and the message follow, unchanged.
    assert!(content.contains("\nReceived: from "), "{content}");
    assert!(
        content.ends_with("From: A <a@example.com>\nSubject: s\n\nbody\n"),
        "{content}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn reinjection_with_no_milters_is_not_signed() {
    let (mut cfg, dir) = signing_settings("reinject");
    cfg.receive_overrides.no_milters = true;
    let (_, _, sink) = session(&cfg, inside(), INPUT);
    let content = String::from_utf8(sink.0.borrow().queued[0].content.clone()).unwrap();
    assert!(!content.contains("DKIM-Signature"), "{content}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn outside_mail_is_not_signed() {
    let (cfg, dir) = signing_settings("out");
    let (_, _, sink) = session(&cfg, outside(), INPUT);
    let content = String::from_utf8(sink.0.borrow().queued[0].content.clone()).unwrap();
    assert!(content.starts_with("Received: "), "{content}");
    assert!(!content.contains("DKIM-Signature"), "{content}");
    std::fs::remove_dir_all(dir).unwrap();
}
