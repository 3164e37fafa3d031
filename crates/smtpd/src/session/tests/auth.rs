//! Whole-session tests of AUTH and the restriction hooks (a child of session/tests/mod.rs,
//! using its fake queue and helpers).

use super::*;
use crate::auth::AuthSettings;
use crate::restrictions::config::RestrictionConfig;
use crate::restrictions::parse_list;
use crate::sasl::passwd::PasswdDb;
use crate::sasl::SaslConfig;
use std::sync::Arc;
use std::time::Duration;

// "secret1" as SHA512-CRYPT.
const ALICE: &str = "alice:$6$saltsalt$jCP90RmSIIja2o9FRs25ASQaR1lMN6uKHmNcHaoNCpAXgV3n5NfAlQdZQcvMVQO1BTCOFF0LzoHFZBt9E45NW0\n";

fn b64(s: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn auth_settings() -> Settings {
    let mut s = settings();
    s.auth = AuthSettings {
        backend: Some(SaslConfig::Rostfix(Arc::new(PasswdDb::from_text(ALICE)))),
        authenticated_header: false,
        tls_auth_only: false,
        failure_delay: Duration::ZERO,
    };
    s
}

fn with_lists(mut s: Settings, pairs: &[(&'static str, &str)]) -> Settings {
    let mut rc = RestrictionConfig::defaults();
    for (name, value) in pairs {
        let l = parse_list(name, value, &|spec| {
            rostfix_maps::open_map(spec)
                .map(Arc::from)
                .map_err(|e| e.to_string())
        })
        .unwrap();
        match *name {
            "smtpd_client_restrictions" => rc.client = l,
            "smtpd_helo_restrictions" => rc.helo = l,
            "smtpd_sender_restrictions" => rc.sender = l,
            "smtpd_recipient_restrictions" => rc.recipient = l,
            "smtpd_data_restrictions" => rc.data = l,
            "smtpd_end_of_data_restrictions" => rc.end_of_data = l,
            _ => rc.relay = l,
        }
    }
    s.restrictions = Arc::new(rc);
    s
}

#[test]
fn auth_plain_lets_an_outside_client_relay() {
    let input = format!(
        "EHLO c.example\r\nAUTH PLAIN {}\r\nMAIL FROM:<alice@c.example>\r\nRCPT TO:<x@far.example>\r\nDATA\r\nSubject: t\r\n\r\nhi\r\n.\r\nAUTH PLAIN {}\r\nQUIT\r\n",
        b64(b"\0alice\0secret1"),
        b64(b"\0alice\0secret1")
    );
    let (lines, _, sink) = session(&auth_settings(), outside(), input.as_bytes());
    assert!(
        lines.contains(&"250-AUTH PLAIN LOGIN".to_string()),
        "{lines:?}"
    );
    let rest: Vec<&str> = lines
        .iter()
        .skip_while(|l| l.starts_with("250-") || l.starts_with("220"))
        .skip(1)
        .map(String::as_str)
        .collect();
    assert_eq!(
        rest,
        [
            "235 2.7.0 Authentication successful",
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
            "250 2.0.0 Ok: queued as ABC001",
            "503 5.5.1 Error: already authenticated",
            "221 2.0.0 Bye"
        ]
    );
    let q = &sink.0.borrow().queued[0];
    let attrs = &q.envelope.attrs;
    assert!(attrs.contains(&("sasl_method".into(), "PLAIN".into())));
    assert!(attrs.contains(&("sasl_username".into(), "alice".into())));
    assert!(attrs.contains(&("protocol".into(), "ESMTPA".into())));
    let text = String::from_utf8_lossy(&q.content);
    assert!(text.contains("with ESMTPA id"), "{text}");
    // smtpd_sasl_authenticated_header = no (default): the name is not shown.
    assert!(!text.contains("Authenticated sender"), "{text}");
}

#[test]
fn authenticated_header_when_asked() {
    let mut s = auth_settings();
    s.auth.authenticated_header = true;
    let input = format!(
        "EHLO c\r\nAUTH PLAIN {}\r\nMAIL FROM:<a@c>\r\nRCPT TO:<b@mx.example.com>\r\nDATA\r\n\r\nx\r\n.\r\nQUIT\r\n",
        b64(b"\0alice\0secret1")
    );
    let (_, _, sink) = session(&s, outside(), input.as_bytes());
    let text = String::from_utf8_lossy(&sink.0.borrow().queued[0].content).into_owned();
    assert!(
        text.contains("\t(Authenticated sender: alice)\n\tby mx.example.com"),
        "{text}"
    );
}

#[test]
fn auth_login_failures_cancel_and_syntax() {
    let input = format!(
        "EHLO c\r\nAUTH LOGIN\r\n{}\r\n{}\r\nAUTH LOGIN\r\n*\r\nAUTH LOGIN\r\n%%%\r\nAUTH PLAIN !!\r\nAUTH CRAM-MD5\r\nAUTH PLAIN\r\n{}\r\nMAIL FROM:<a@c>\r\nAUTH PLAIN =\r\nQUIT\r\n",
        b64(b"alice"),
        b64(b"wrong-password"),
        b64(b"\0alice\0secret1"),
    );
    let (lines, _, _) = session(&auth_settings(), outside(), input.as_bytes());
    let rest: Vec<&str> = lines
        .iter()
        .skip_while(|l| l.starts_with("250-") || l.starts_with("220"))
        .skip(1)
        .map(String::as_str)
        .collect();
    assert_eq!(
        rest,
        [
            "334 VXNlcm5hbWU6",
            "334 UGFzc3dvcmQ6",
            "535 5.7.8 Error: authentication failed: authentication failure",
            "334 VXNlcm5hbWU6",
            "501 5.7.0 Authentication aborted",
            "334 VXNlcm5hbWU6",
            "501 5.5.2 Error: authentication failed: Invalid base64 data in continued response",
            "501 5.5.2 Error: authentication failed: Invalid base64 data in initial response",
            "535 5.7.8 Error: authentication failed: Invalid authentication mechanism",
            "334 ",
            "235 2.7.0 Authentication successful",
            "250 2.1.0 Ok",
            "503 5.5.1 Error: already authenticated",
            "221 2.0.0 Bye"
        ]
    );
}

#[test]
fn auth_refused_when_off_before_ehlo_or_before_tls() {
    let (lines, _, _) = session(
        &settings(),
        outside(),
        b"EHLO c\r\nAUTH PLAIN =\r\nQUIT\r\n",
    );
    assert!(!lines.iter().any(|l| l.contains("AUTH")), "{lines:?}");
    assert!(lines.contains(&"503 5.5.1 Error: authentication not enabled".to_string()));
    let (lines, _, _) = session(
        &auth_settings(),
        outside(),
        b"HELO c\r\nAUTH PLAIN =\r\nQUIT\r\n",
    );
    assert_eq!(lines[2], "503 5.5.1 Error: send EHLO first");
    let mut s = auth_settings();
    s.auth.tls_auth_only = true;
    let (lines, _, _) = session(&s, outside(), b"EHLO c\r\nAUTH PLAIN =\r\nQUIT\r\n");
    assert!(!lines
        .iter()
        .any(|l| l.starts_with("250-AUTH") || l == "250 AUTH PLAIN LOGIN"));
    assert!(lines.contains(&"503 5.5.1 Error: authentication not enabled".to_string()));
}

#[test]
fn failed_auth_counts_toward_the_hard_error_limit() {
    let mut s = auth_settings();
    s.hard_error_limit = 3;
    let bad = b64(b"\0alice\0nope");
    let input = format!("EHLO c\r\nAUTH PLAIN {bad}\r\nAUTH PLAIN {bad}\r\nAUTH PLAIN {bad}\r\nAUTH PLAIN {bad}\r\n");
    let (lines, end, _) = session(&s, outside(), input.as_bytes());
    assert_eq!(end, SessionEnd::TooManyErrors);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("535 5.7.8")).count(),
        3
    );
    assert!(lines.last().unwrap().starts_with("421 4.7.0"));
}

#[test]
fn delayed_client_reject_happens_at_rcpt() {
    let s = with_lists(
        settings(),
        &[(
            "smtpd_client_restrictions",
            "check_client_access inline:{192.0.2.7=REJECT}",
        )],
    );
    let (lines, _, _) = session(
        &s,
        outside(),
        b"HELO c\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@mx.example.com>\r\nQUIT\r\n",
    );
    assert_eq!(
        lines[1..],
        [
            "250 mx.example.com",
            "250 2.1.0 Ok",
            "554 5.7.1 <unknown[192.0.2.7]>: Client host rejected: Access denied",
            "221 2.0.0 Bye"
        ]
    );
}

#[test]
fn immediate_rejects_without_delay_reject() {
    let mut s = with_lists(
        settings(),
        &[
            ("smtpd_helo_restrictions", "reject_invalid_helo_hostname"),
            ("smtpd_sender_restrictions", "reject_non_fqdn_sender"),
        ],
    );
    let mut rc = (*s.restrictions).clone();
    rc.delay_reject = false;
    s.restrictions = Arc::new(rc);
    let (lines, _, _) = session(
        &s,
        outside(),
        b"HELO bad!name\r\nHELO ok.example\r\nMAIL FROM:<a@nodot>\r\nMAIL FROM:<a@x.example>\r\nQUIT\r\n",
    );
    assert_eq!(
        lines[1..],
        [
            "501 5.5.2 <bad!name>: Helo command rejected: Invalid name",
            "250 ok.example"
                .replace("ok.example", "mx.example.com")
                .as_str(),
            "504 5.5.2 <a@nodot>: Sender address rejected: need fully-qualified address",
            "250 2.1.0 Ok",
            "221 2.0.0 Bye"
        ]
    );
}

#[test]
fn data_and_end_of_data_restrictions() {
    let s = with_lists(settings(), &[("smtpd_data_restrictions", "reject")]);
    let (lines, _, sink) = session(
        &s,
        inside(),
        b"HELO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<b@mx.example.com>\r\nDATA\r\nQUIT\r\n",
    );
    assert_eq!(
        lines[4],
        "554 5.7.1 <DATA>: Data command rejected: Access denied"
    );
    assert!(sink.0.borrow().queued.is_empty());
    let s = with_lists(settings(), &[("smtpd_end_of_data_restrictions", "defer")]);
    let (lines, _, sink) = session(
        &s,
        inside(),
        b"HELO c\r\nMAIL FROM:<a@c>\r\nRCPT TO:<b@mx.example.com>\r\nDATA\r\n\r\nx\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(
        lines[5],
        "450 4.7.1 <END-OF-MESSAGE>: End-of-data rejected: Try again later"
    );
    assert!(sink.0.borrow().queued.is_empty());
}
