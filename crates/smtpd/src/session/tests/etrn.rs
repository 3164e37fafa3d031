//! ETRN in a whole session: Postfix's replies, smtpd_etrn_restrictions with
//! check_etrn_access, fast_flush_domains, and the flush request reaching the queue.

use super::*;
use crate::settings::test_config;

fn etrn_settings(extra: &[(&str, &str)]) -> Settings {
    let mut pairs = vec![
        ("myhostname", "mx.example.com"),
        ("local_recipient_maps", ""),
        ("relay_domains", "example.org"),
        (
            "smtpd_etrn_restrictions",
            "check_etrn_access inline:{{bad.example.org=REJECT}}, permit",
        ),
    ];
    pairs.extend_from_slice(extra);
    let cf = test_config(&pairs).unwrap();
    let mut s = Settings::from_config(&cf, None).unwrap().0;
    s.proto.forbid_unauth_pipelining = false;
    s
}

#[test]
fn etrn_flushes_listed_sites_and_refuses_the_rest() {
    let cfg = etrn_settings(&[]);
    let input = b"ETRN example.org\r\nEHLO c.test\r\nETRN\r\nETRN a b\r\nETRN -bad-\r\n\
ETRN @example.org\r\nETRN #mx.example.org\r\nETRN bad.example.org\r\nETRN other.test\r\n\
MAIL FROM:<a@c.test>\r\nETRN example.org\r\nQUIT\r\n";
    let (lines, _, sink) = session(&cfg, outside(), input);
    let ehlo_end = lines.iter().position(|l| l == "250 CHUNKING").unwrap();
    assert!(
        lines[..ehlo_end].iter().any(|l| l == "250-ETRN"),
        "{lines:?}"
    );
    let replies: Vec<&str> = std::iter::once(lines[1].as_str())
        .chain(lines[ehlo_end + 1..].iter().map(String::as_str))
        .collect();
    assert_eq!(
        replies,
        [
            // Without HELO: fine unless smtpd_helo_required.
            "250 Queuing started",
            "500 Syntax: ETRN domain",
            "500 Syntax: ETRN domain",
            "501 Error: invalid parameter syntax",
            "250 Queuing started",
            "250 Queuing started",
            "554 5.7.1 <bad.example.org>: Etrn command rejected: Access denied",
            "459 <other.test>: service unavailable",
            "250 2.1.0 Ok",
            "503 Error: MAIL transaction in progress",
            "221 2.0.0 Bye",
        ],
        "{lines:?}"
    );
    // fast_flush_domains defaults to $relay_domains, which matches subdomains.
    assert_eq!(
        sink.0.borrow().flushed,
        ["example.org", "example.org", "mx.example.org"]
    );
}

#[test]
fn etrn_honours_helo_required_and_an_empty_flush_list() {
    let cfg = etrn_settings(&[("smtpd_helo_required", "yes"), ("fast_flush_domains", "")]);
    let input = b"ETRN example.org\r\nHELO c.test\r\nETRN example.org\r\nQUIT\r\n";
    let (lines, _, sink) = session(&cfg, outside(), input);
    assert_eq!(
        lines[1..],
        [
            "503 Error: send HELO/EHLO first",
            "250 mx.example.com",
            "459 <example.org>: service unavailable",
            "221 2.0.0 Bye",
        ]
    );
    assert!(sink.0.borrow().flushed.is_empty());
}
