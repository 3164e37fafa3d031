//! Tests of the inspector: each action's effect on the written content and outcome.

use super::*;
use rostfix_maps::open_map;

/// A regexp table in a fresh temporary file.
fn table(name: &str, text: &str) -> Box<dyn Map> {
    let dir = std::env::temp_dir().join(format!("inspect-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("t");
    std::fs::write(&path, text).expect("write table");
    open_map(&format!("regexp:{}", path.display())).expect("table opens")
}

fn checks(header: &str, body: &str) -> Arc<ContentChecks> {
    Arc::new(ContentChecks {
        header: vec![table(&format!("h{}", header.len()), header)],
        mime: vec![table(&format!("m{}", header.len()), header)],
        nested: vec![],
        body: vec![table(&format!("b{}", body.len()), body)],
        body_size_limit: 20,
        mime_processing: true,
        header_cap: 102_400,
    })
}

fn run(checks: Arc<ContentChecks>, input: &[u8]) -> (Vec<u8>, Outcome) {
    let mut insp = Inspector::new(Some(checks), LogContext::default());
    let mut out = Vec::new();
    insp.feed(input, &mut out);
    let outcome = insp.finish(&mut out);
    (out, outcome)
}

const MSG: &[u8] = b"Subject: hello\n\tworld\nX-Drop: me\nX-Change: old\n\nbody line\nspam here\n";

#[test]
fn header_edits() {
    let c = checks(
        "/^X-Drop:/ IGNORE\n/^X-Change:/ REPLACE X-Changed: new\n/^Subject: hello\\n\\tworld$/ PREPEND X-Seen: yes\n",
        "/^nothing$/ DUNNO\n",
    );
    let (out, outcome) = run(c, MSG);
    assert_eq!(
        out,
        b"X-Seen: yes\nSubject: hello\n\tworld\nX-Changed: new\n\nbody line\nspam here\n"
    );
    assert_eq!(outcome, Outcome::default());
}

#[test]
fn body_edits_and_size_limit() {
    let c = checks(
        "/^nothing$/ DUNNO\n",
        "/^body/ REPLACE corps\n/^spam/ IGNORE\n",
    );
    let (out, _) = run(c, MSG);
    assert_eq!(
        out,
        b"Subject: hello\n\tworld\nX-Drop: me\nX-Change: old\n\ncorps\n"
    );
    // Past body_checks_size_limit (20 bytes) a line is not inspected.
    let c = checks("/^nothing$/ DUNNO\n", "/^spam/ IGNORE\n");
    let (out, _) = run(c, b"S: x\n\n0123456789012345678901\nspam\n");
    assert!(out.ends_with(b"spam\n"));
}

#[test]
fn reject_stops_inspection() {
    let c = checks(
        "/^Subject:/ REJECT no thanks\n/^X-Drop/ IGNORE\n",
        "/^spam/ DISCARD\n",
    );
    let (out, outcome) = run(c, MSG);
    assert_eq!(outcome.reject.as_deref(), Some("5.7.1 no thanks"));
    assert!(!outcome.discard);
    // Nothing after the REJECT was acted on.
    assert!(out.windows(6).any(|w| w == b"X-Drop"));
    let c = checks("/^Subject:/ DEFER\n", "/^x/ DUNNO\n");
    assert_eq!(
        run(c, MSG).1.reject.as_deref(),
        Some("4.7.1 service unavailable")
    );
    let c = checks("/^Subject:/ REJECT\n", "/^x/ DUNNO\n");
    assert_eq!(
        run(c, MSG).1.reject.as_deref(),
        Some("5.7.1 message content rejected")
    );
}

#[test]
fn collected_actions() {
    let c = checks(
        "/^Subject:/ HOLD\n/^X-Drop:/ REDIRECT r@example\n/^X-Change:/ FILTER smtp:[127.0.0.1]:10025\n",
        "/^body/ BCC b@example\n/^spam/ FILTER nocolon\n",
    );
    let (out, outcome) = run(c, MSG);
    assert_eq!(out, MSG);
    assert!(outcome.hold);
    assert_eq!(outcome.redirect.as_deref(), Some("r@example"));
    assert_eq!(outcome.filter.as_deref(), Some("smtp:[127.0.0.1]:10025"));
    assert_eq!(outcome.bcc, ["b@example"]);
}

#[test]
fn mime_part_header_goes_to_mime_header_checks() {
    let c = Arc::new(ContentChecks {
        header: vec![],
        mime: vec![table(
            "mimeonly",
            "/^Content-Disposition:.*filename=\"?.*\\.exe/ REJECT no exe\n",
        )],
        nested: vec![],
        body: vec![],
        body_size_limit: 51200,
        mime_processing: true,
        header_cap: 102_400,
    });
    let msg = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"x.exe\"\n\nAAAA\n--b--\n";
    assert_eq!(run(c, msg).1.reject.as_deref(), Some("5.7.1 no exe"));
}

#[test]
fn no_tables_pass_everything() {
    let mut insp = Inspector::new(None, LogContext::default());
    let mut out = Vec::new();
    insp.feed(MSG, &mut out);
    assert_eq!(insp.finish(&mut out), Outcome::default());
    assert_eq!(out, MSG);
}
