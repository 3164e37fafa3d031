//! Rewriter tests: parameters from a main.cf text, tables inline.

use super::*;
use std::path::Path;

fn rw(text: &str) -> Rewriter {
    let base = "myorigin = example.com\nmydestination = example.com, localhost\n";
    let cf = MainCf::parse(&format!("{base}{text}"), Path::new("/etc/rostfix/main.cf"))
        .expect("main.cf");
    Rewriter::from_config(&cf).expect("rewriter")
}

#[test]
fn sender_and_recipient_tables_apply_to_their_class() {
    let r = rw(
        "sender_canonical_maps = inline:{ joe@example.com=joe.smith@example.com }\n\
         recipient_canonical_maps = inline:{ info@example.com=sales@example.com }\n\
         canonical_maps = inline:{ sales@example.com=team@example.com }\n",
    );
    assert_eq!(
        r.rewrite_sender("joe@example.com").expect("ok"),
        "joe.smith@example.com"
    );
    assert_eq!(
        r.rewrite_sender("info@example.com").expect("ok"),
        "info@example.com"
    );
    // recipient_canonical first, then canonical_maps on its result.
    assert_eq!(
        r.rewrite_recipient("info@example.com").expect("ok"),
        "team@example.com"
    );
    assert_eq!(
        r.rewrite_recipient("joe@example.com").expect("ok"),
        "joe@example.com"
    );
    assert_eq!(r.rewrite_sender("").expect("ok"), "");
}

#[test]
fn canonical_classes_limit_the_rewriting() {
    let r = rw(
        "canonical_maps = inline:{ joe@example.com=js@example.com }\n\
         canonical_classes = envelope_sender, envelope_recipient\n",
    );
    assert_eq!(
        r.rewrite_sender("joe@example.com").expect("ok"),
        "js@example.com"
    );
    let h = r
        .rewrite_header("From: Joe <joe@example.com>", &HeaderContext::Local)
        .expect("ok");
    assert_eq!(h, None);
    let bad = MainCf::parse(
        "canonical_classes = envelope_sender, bogus\n",
        Path::new("m"),
    )
    .expect("parse");
    assert!(matches!(
        Rewriter::from_config(&bad),
        Err(RewriteError::Unknown { word, .. }) if word == "bogus"
    ));
}

#[test]
fn masquerading_follows_its_classes() {
    let r = rw("masquerade_domains = !mail.example.com, example.com\n\
         masquerade_exceptions = root\n");
    assert_eq!(
        r.rewrite_sender("joe@host.example.com").expect("ok"),
        "joe@example.com"
    );
    assert_eq!(
        r.rewrite_sender("joe@mail.example.com").expect("ok"),
        "joe@mail.example.com"
    );
    assert_eq!(
        r.rewrite_sender("root@host.example.com").expect("ok"),
        "root@host.example.com"
    );
    // envelope_recipient is not in the default masquerade_classes.
    assert_eq!(
        r.rewrite_recipient("joe@host.example.com").expect("ok"),
        "joe@host.example.com"
    );
    let h = r
        .rewrite_header("To: a@h.example.com, b@other.test", &HeaderContext::Local)
        .expect("ok");
    assert_eq!(h.as_deref(), Some("To: a@example.com, b@other.test"));
}

#[test]
fn headers_by_role_and_context() {
    let r = rw(
        "sender_canonical_maps = inline:{ joe@example.com=js@example.com }\n\
         recipient_canonical_maps = inline:{ ann@example.com=anne@example.com }\n",
    );
    let local = HeaderContext::Local;
    let from = r
        .rewrite_header("From: Joe <joe@example.com>", &local)
        .expect("ok");
    assert_eq!(from.as_deref(), Some("From: Joe <js@example.com>"));
    // Sender tables do not apply to recipient headers, and Return-Path is kept.
    assert_eq!(
        r.rewrite_header("To: joe@example.com", &local).expect("ok"),
        None
    );
    assert_eq!(
        r.rewrite_header("Return-Path: <joe@example.com>", &local)
            .expect("ok"),
        None
    );
    let cc = r.rewrite_header("Cc: ann", &local).expect("ok");
    assert_eq!(cc.as_deref(), Some("Cc: anne@example.com"));
    let remote = HeaderContext::Remote("remote.test".into());
    let cc = r.rewrite_header("Cc: ann", &remote).expect("ok");
    assert_eq!(cc.as_deref(), Some("Cc: ann@remote.test"));
}

#[test]
fn header_context_from_client_rules() {
    let r = rw("");
    let inet = ClientFacts {
        own_interface: true,
        ..ClientFacts::default()
    };
    let ctx = |r: &Rewriter, f: &ClientFacts| r.header_context(f).expect("no lookup error");
    assert_eq!(ctx(&r, &inet), Some(HeaderContext::Local));
    assert_eq!(ctx(&r, &ClientFacts::default()), None);
    let r = rw(
        "local_header_rewrite_clients = permit_mynetworks, permit_sasl_authenticated\n\
         remote_header_rewrite_domain = domain.invalid\n",
    );
    assert_eq!(
        ctx(&r, &inet),
        Some(HeaderContext::Remote("domain.invalid".into()))
    );
    let sasl = ClientFacts {
        sasl_authenticated: true,
        ..ClientFacts::default()
    };
    assert_eq!(ctx(&r, &sasl), Some(HeaderContext::Local));
    // Postfix skips a word it does not know, with a warning.
    let r = rw("local_header_rewrite_clients = permit_nobody, permit_sasl_authenticated\n");
    assert_eq!(ctx(&r, &sasl), Some(HeaderContext::Local));
}

#[test]
fn client_rules_postfix_accepts() {
    let from = |ip: &str| ClientFacts {
        address: Some(ip.parse().expect("ip")),
        ..ClientFacts::default()
    };
    let r = rw(
        "local_header_rewrite_clients = check_address_map inline:{ 192.0.2.1=yes }, \
         inline:{ 198.51.100.7=ok }, permit_tls_all_clientcerts, permit_tls_clientcerts\n\
         relay_clientcerts = inline:{ AA:BB=client }\n",
    );
    let ctx = |f: &ClientFacts| r.header_context(f).expect("no lookup error");
    assert_eq!(ctx(&from("192.0.2.1")), Some(HeaderContext::Local));
    assert_eq!(ctx(&from("198.51.100.7")), Some(HeaderContext::Local));
    assert_eq!(ctx(&from("203.0.113.9")), None);
    let trusted = ClientFacts {
        ccert_trusted: true,
        ..from("203.0.113.9")
    };
    assert_eq!(ctx(&trusted), Some(HeaderContext::Local));
    let listed = ClientFacts {
        ccert_fingerprints: vec!["AA:BB".into()],
        ..from("203.0.113.9")
    };
    assert_eq!(ctx(&listed), Some(HeaderContext::Local));
    // static:all: every client, as a table that finds every key.
    let r = rw("local_header_rewrite_clients = static:all\n");
    assert_eq!(
        r.header_context(&from("203.0.113.9")).expect("ok"),
        Some(HeaderContext::Local)
    );
}

#[test]
fn quoted_local_parts_are_looked_up_unquoted_and_requoted() {
    let r = rw(
        "canonical_maps = inline:{ {john doe@example.com=jd@example.com}, \
         {jd2@example.com=\"jane q\"@example.com} }\n",
    );
    let local = HeaderContext::Local;
    let h = |text: &str| r.rewrite_header(text, &local).expect("ok");
    assert_eq!(
        h("From: John <\"john doe\"@example.com>").as_deref(),
        Some("From: John <jd@example.com>")
    );
    assert_eq!(
        h("To: jd2@example.com").as_deref(),
        Some("To: \"jane q\"@example.com")
    );
    // Unqualified: qualified, quotes kept where needed.
    assert_eq!(
        h("Cc: \"ann smith\"").as_deref(),
        Some("Cc: \"ann smith\"@example.com")
    );
    // Nothing to change: the text stays as written, quotes and all.
    assert_eq!(h("To: \"bob\"@example.com"), None);
}

#[test]
fn no_address_mappings_still_qualifies_headers() {
    let cf = MainCf::parse(
        "myorigin = example.com\ncanonical_maps = inline:{ joe@example.com=js@example.com }\n\
         always_bcc = audit@example.com\n",
        Path::new("/etc/rostfix/main.cf"),
    )
    .expect("main.cf");
    let r = Rewriter::without_mappings(&cf).expect("rewriter");
    let local = HeaderContext::Local;
    assert_eq!(
        r.rewrite_header("To: joe, ann@other.test", &local)
            .expect("ok")
            .as_deref(),
        Some("To: joe@example.com, ann@other.test")
    );
    assert_eq!(
        r.rewrite_header("From: joe@example.com", &local)
            .expect("ok"),
        None
    );
    assert_eq!(r.rewrite_recipient("joe").expect("ok"), "joe@example.com");
    assert!(r
        .bcc_recipients("joe@example.com", &[])
        .expect("ok")
        .is_empty());
}

#[test]
fn automatic_bcc() {
    let r = rw(
        "sender_bcc_maps = inline:{ boss@example.com=archive-out }\n\
         recipient_bcc_maps = inline:{ @example.com=archive-in@example.com }\n\
         always_bcc = audit@example.com\n\
         recipient_canonical_maps = inline:{ audit@example.com=auditors@example.com }\n",
    );
    let rcpts = vec!["a@example.com".to_string(), "b@other.test".to_string()];
    let bcc = r.bcc_recipients("boss@example.com", &rcpts).expect("ok");
    assert_eq!(
        bcc,
        [
            "archive-out@example.com",
            "archive-in@example.com",
            "auditors@example.com"
        ]
    );
    // An existing recipient is not added again.
    let rcpts = vec!["auditors@example.com".to_string()];
    let bcc = r.bcc_recipients("x@other.test", &rcpts).expect("ok");
    assert_eq!(bcc, ["archive-in@example.com"]);
    assert!(rw("").bcc_recipients("a@b", &rcpts).expect("ok").is_empty());
}

#[test]
fn envelope_addresses_are_canonical_before_the_tables() {
    let r = rw("recipient_canonical_maps = inline:{ joe@site.test=jo@site.test }\n");
    // allow_percent_hack and swap_bangpath (Postfix's defaults: yes), then the table.
    assert_eq!(
        r.rewrite_recipient("joe%site.test").expect("ok"),
        "jo@site.test"
    );
    assert_eq!(
        r.rewrite_recipient("site.test!joe").expect("ok"),
        "jo@site.test"
    );
    assert_eq!(r.rewrite_sender("ann").expect("ok"), "ann@example.com");
    let h = r.rewrite_header("To: joe%site.test", &HeaderContext::Local);
    assert_eq!(h.expect("ok").as_deref(), Some("To: jo@site.test"));
    let off = rw("allow_percent_hack = no\nswap_bangpath = no\n");
    assert_eq!(
        off.rewrite_recipient("joe%site.test").expect("ok"),
        "joe%site.test@example.com"
    );
    assert_eq!(
        off.rewrite_recipient("site.test!joe").expect("ok"),
        "site.test!joe@example.com"
    );
}

#[test]
fn each_table_has_its_own_classes() {
    // canonical_classes does not limit sender_canonical_maps; its own list does.
    let r = rw(
        "sender_canonical_maps = inline:{ joe@example.com=js@example.com }\n\
         canonical_classes = envelope_sender\n",
    );
    let h = r.rewrite_header("From: joe@example.com", &HeaderContext::Local);
    assert_eq!(h.expect("ok").as_deref(), Some("From: js@example.com"));
    let r = rw(
        "sender_canonical_maps = inline:{ joe@example.com=js@example.com }\n\
         sender_canonical_classes = envelope_sender\n",
    );
    let h = r.rewrite_header("From: joe@example.com", &HeaderContext::Local);
    assert_eq!(h.expect("ok"), None);
    assert_eq!(
        r.rewrite_sender("joe@example.com").expect("ok"),
        "js@example.com"
    );
}

#[test]
fn envelope_rewritten_in_place() {
    let r = rw(
        "recipient_canonical_maps = inline:{ info@example.com=sales@example.com }\n\
         always_bcc = audit\n",
    );
    let mut env = rostfix_queue::Envelope {
        sender: "joe".into(),
        recipients: vec![rostfix_queue::Recipient {
            address: "info@example.com".into(),
            orig_address: "info@example.com".into(),
            ..rostfix_queue::Recipient::default()
        }],
        ..rostfix_queue::Envelope::default()
    };
    r.rewrite_envelope(&mut env).expect("ok");
    assert_eq!(env.sender, "joe@example.com");
    assert_eq!(env.recipients[0].address, "sales@example.com");
    assert_eq!(env.recipients[0].orig_address, "info@example.com");
    assert_eq!(env.recipients[1].address, "audit@example.com");
    assert_eq!(env.recipients[1].notify, "NEVER");
}

#[test]
fn mailer_daemon_is_the_null_sender() {
    let r = rw("");
    assert_eq!(r.rewrite_sender("MAILER-DAEMON").expect("ok"), "");
    assert_eq!(
        r.rewrite_sender("mailer-daemon@Example.com").expect("ok"),
        ""
    );
    assert_eq!(
        r.rewrite_sender("mailer-daemon@other.test").expect("ok"),
        "mailer-daemon@other.test"
    );
}
