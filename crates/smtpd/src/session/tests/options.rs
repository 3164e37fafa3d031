//! Whole-session tests of the session settings (session_options.rs): HELO required,
//! forbidden commands, discarded EHLO keywords, SASL security options, XCLIENT and
//! XFORWARD (a child of session/tests/mod.rs, using its fake queue and helpers).

use super::*;
use crate::session_options::{OptionsError, SessionOptions};
use crate::settings::test_config;

/// `settings()` with the session options of a main.cf holding `pairs`.
fn with_options(pairs: &[(&str, &str)]) -> Settings {
    let mut s = settings();
    s.session = options(pairs).unwrap();
    s
}

fn options(pairs: &[(&str, &str)]) -> Result<SessionOptions, OptionsError> {
    SessionOptions::from_config(&test_config(pairs).unwrap(), &mut Vec::new())
}

#[test]
fn helo_required_refuses_mail_before_helo() {
    let cfg = with_options(&[("smtpd_helo_required", "yes")]);
    let (lines, _, _) = session(
        &cfg,
        outside(),
        b"MAIL FROM:<a@c.example>\r\nHELO c.example\r\nMAIL FROM:<a@c.example>\r\nQUIT\r\n",
    );
    assert_eq!(lines[1], "503 5.5.1 Error: send HELO/EHLO first");
    assert_eq!(codes(&lines[2..]), ["250 ", "250 ", "221 "]);
    // The default lets MAIL come first.
    let (lines, _, _) = session(&settings(), outside(), b"MAIL FROM:<a@c>\r\nQUIT\r\n");
    assert_eq!(lines[1], "250 2.1.0 Ok");
}

#[test]
fn forbidden_commands_are_configurable() {
    let cfg = with_options(&[("smtpd_forbidden_commands", "XYZZY")]);
    let (lines, end, _) = session(&cfg, outside(), b"GET / HTTP/1.1\r\nxyzzy\r\nQUIT\r\n");
    // GET is no longer forbidden here: an unknown command.
    assert_eq!(lines[1], "502 5.5.2 Error: command not recognized");
    assert_eq!(
        lines[2],
        "221 2.7.0 Error: I can break rules, too. Goodbye."
    );
    assert_eq!(end, SessionEnd::Forbidden);
    // The default's inline regexp: a verb that does not start with a letter.
    let (lines, end, _) = session(&settings(), outside(), b"\"hello\r\nQUIT\r\n");
    assert_eq!(end, SessionEnd::Forbidden, "{lines:?}");
}

#[test]
fn discarded_ehlo_keywords() {
    let cfg = with_options(&[("smtpd_discard_ehlo_keywords", "chunking, PIPELINING, dsn")]);
    let (lines, _, _) = session(&cfg, outside(), b"EHLO c\r\nQUIT\r\n");
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("CHUNKING") || l.contains("PIPELINING") || l.contains("DSN")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("8BITMIME")), "{lines:?}");
    // The last line keeps the final-line form.
    let ehlo: Vec<&String> = lines.iter().filter(|l| l.starts_with("250")).collect();
    assert!(ehlo.last().unwrap().starts_with("250 "), "{lines:?}");
    assert!(ehlo[..ehlo.len() - 1].iter().all(|l| l.starts_with("250-")));
}

#[test]
fn sasl_noplaintext_hides_plain_before_tls() {
    let mut cfg = auth_settings_for_options();
    cfg.session = options(&[
        ("smtpd_sasl_security_options", "noanonymous, noplaintext"),
        ("smtpd_sasl_tls_security_options", "noanonymous"),
    ])
    .unwrap();
    let (lines, _, _) = session(
        &cfg,
        outside(),
        b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHg=\r\nQUIT\r\n",
    );
    assert!(!lines.iter().any(|l| l.contains("AUTH")), "{lines:?}");
    assert_eq!(
        lines
            .iter()
            .find(|l| l.starts_with("535"))
            .map(String::as_str),
        Some("535 5.7.8 Error: authentication failed: Invalid authentication mechanism: 'PLAIN'")
    );
}

fn auth_settings_for_options() -> Settings {
    use crate::sasl::passwd::PasswdDb;
    use crate::sasl::SaslConfig;
    let mut s = settings();
    s.auth.backend = Some(SaslConfig::Rostfix(std::sync::Arc::new(
        PasswdDb::from_text("alice:{PLAIN}x\n"),
    )));
    s.auth.failure_delay = std::time::Duration::ZERO;
    s
}

#[test]
fn xclient_from_an_authorized_host_replaces_the_client() {
    let cfg = with_options(&[("smtpd_authorized_xclient_hosts", "127.0.0.0/8")]);
    let (lines, _, sink) = session(
        &cfg,
        inside(),
        b"EHLO proxy\r\nXCLIENT NAME=mx.example.org ADDR=192.0.2.9 HELO=real.example\r\nMAIL FROM:<a@c>\r\nRCPT TO:<x@far.example>\r\nRCPT TO:<u@localhost>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
    );
    assert!(
        lines.iter().any(|l| l.contains("XCLIENT NAME ADDR")),
        "{lines:?}"
    );
    let greeting = lines.iter().filter(|l| l.starts_with("220 ")).count();
    assert_eq!(
        greeting, 2,
        "XCLIENT answers with a new greeting: {lines:?}"
    );
    // 192.0.2.9 is outside mynetworks now: relaying is refused.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("454 4.7.1 <x@far.example>")),
        "{lines:?}"
    );
    let q = sink.0.borrow();
    let content = String::from_utf8_lossy(&q.queued[0].content).to_string();
    assert!(
        content.starts_with("Received: from real.example (mx.example.org [192.0.2.9])"),
        "{content}"
    );
}

#[test]
fn xclient_and_xforward_need_authorization() {
    let (lines, _, _) = session(
        &settings(),
        inside(),
        b"EHLO c\r\nXCLIENT ADDR=192.0.2.9\r\nXFORWARD ADDR=192.0.2.9\r\nQUIT\r\n",
    );
    assert!(!lines
        .iter()
        .any(|l| l.contains("XCLIENT") || l.contains("XFORWARD")));
    let refusals: Vec<&String> = lines.iter().filter(|l| l.starts_with("550")).collect();
    assert_eq!(refusals, ["550 5.7.0 Error: insufficient authorization"; 2]);
}

#[test]
fn xforward_names_the_original_client_for_one_message() {
    let cfg = with_options(&[("smtpd_authorized_xforward_hosts", "127.0.0.1")]);
    let (lines, _, sink) = session(
        &cfg,
        inside(),
        b"EHLO filter\r\nXFORWARD NAME=orig.example ADDR=192.0.2.9 HELO=orig-helo IDENT=ABC123\r\nMAIL FROM:<a@c>\r\nRCPT TO:<u@localhost>\r\nDATA\r\nhi\r\n.\r\nMAIL FROM:<a@c>\r\nRCPT TO:<u@localhost>\r\nDATA\r\nagain\r\n.\r\nQUIT\r\n",
    );
    assert!(
        lines.iter().any(|l| l.contains("XFORWARD NAME ADDR")),
        "{lines:?}"
    );
    let q = sink.0.borrow();
    let attrs = |i: usize| q.queued[i].envelope.attrs.clone();
    assert!(attrs(0).contains(&("log_client_address".into(), "192.0.2.9".into())));
    assert!(attrs(0).contains(&("log_helo_name".into(), "orig-helo".into())));
    // The next message is the filter's own again.
    assert!(!attrs(1).iter().any(|(k, _)| k.starts_with("log_")));
}
