//! Unit tests of the hygiene checks: which mail counts as campaign mail, each check's
//! pass and failure texts, the DMARC tree walk, and the configuration parser.

use super::*;
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;

struct Fake {
    signs_for: Vec<&'static str>,
    txt: HashMap<String, TxtAnswer>,
    asked: RefCell<Vec<String>>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            signs_for: Vec::new(),
            txt: HashMap::new(),
            asked: RefCell::new(Vec::new()),
        }
    }
}

impl Lookups for Fake {
    fn will_sign(&self, from_address: &str) -> bool {
        self.signs_for.contains(&from_address)
    }
    fn txt(&self, name: &str) -> TxtAnswer {
        self.asked.borrow_mut().push(name.to_string());
        self.txt.get(name).cloned().unwrap_or(TxtAnswer::None)
    }
}

fn fields(message: &str) -> Vec<(String, String)> {
    header_fields(header_block(message.as_bytes()))
}

const GOOD: &str = "From: News <news@mail.example.com>\n\
List-Unsubscribe: <mailto:u@example.com?subject=u>, <https://example.com/u/123>\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\n\
DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1;\n h=from:list-unsubscribe; b=abc\n\
Subject: news\n\nbody\n";

fn all() -> Policy {
    Policy::parse("dkim, one_click_unsubscribe, dmarc", "warn").unwrap()
}

#[test]
fn campaign_mail_is_recognised() {
    assert!(is_campaign(Some("spring-sale"), &[]));
    assert!(!is_campaign(Some(""), &[]));
    assert!(is_campaign(None, &fields("Precedence: Bulk\n\n")));
    assert!(is_campaign(None, &fields("Precedence: list\n\n")));
    assert!(is_campaign(
        None,
        &fields("List-Id: <news.example.com>\n\n")
    ));
    assert!(is_campaign(
        None,
        &fields("List-Unsubscribe: <https://x>\n\n")
    ));
    assert!(!is_campaign(
        None,
        &fields("Precedence: junk\nSubject: hi\n\n")
    ));
    assert!(!is_campaign(
        None,
        &fields("From: a@b\nTo: c@d\n\nList-Id: <x>\n")
    ));
}

#[test]
fn a_well_formed_campaign_passes_every_check() {
    let mut dns = Fake::new();
    dns.txt.insert(
        "_dmarc.example.com".into(),
        TxtAnswer::Records(vec!["v=DMARC1; p=none; rua=mailto:d@example.com".into()]),
    );
    assert_eq!(check(&all(), &fields(GOOD), &dns), vec![]);
    // The tree walk asked the From: domain first, then its parent.
    assert_eq!(
        *dns.asked.borrow(),
        vec!["_dmarc.mail.example.com", "_dmarc.example.com"]
    );
}

#[test]
fn each_failure_is_named() {
    let dns = Fake::new();
    let msg = "From: news@example.org\nList-Unsubscribe: <mailto:u@example.org>\n\n";
    let found = check(&all(), &fields(msg), &dns);
    let checks: Vec<Check> = found.iter().map(|f| f.check).collect();
    assert_eq!(
        checks,
        vec![Check::Dkim, Check::OneClickUnsubscribe, Check::Dmarc]
    );
    assert!(
        found[0].text.contains("not DKIM-signed for example.org"),
        "{found:?}"
    );
    assert!(found[1].text.contains("no <https:...> URI"), "{found:?}");
    assert_eq!(
        found[2].text,
        "From: domain example.org publishes no DMARC record"
    );
}

#[test]
fn dkim_passes_with_the_native_signer_or_an_aligned_signature_only() {
    let mut dns = Fake::new();
    let only = Policy::parse("dkim", "reject").unwrap();
    let msg = "From: a@news.example.com\nDKIM-Signature: v=1; d=other.example; b=x\n\n";
    assert_eq!(check(&only, &fields(msg), &dns).len(), 1);
    dns.signs_for.push("a@news.example.com");
    assert!(check(&only, &fields(msg), &dns).is_empty());
    let parent = "From: a@news.example.com\nDKIM-Signature: v=1; d=Example.COM.; b=x\n\n";
    assert!(check(&only, &fields(parent), &Fake::new()).is_empty());
    // A look-alike suffix is not a parent.
    let lookalike = "From: a@badexample.com\nDKIM-Signature: v=1; d=example.com; b=x\n\n";
    assert_eq!(check(&only, &fields(lookalike), &Fake::new()).len(), 1);
    let two_froms = "From: a@example.com\nFrom: b@example.com\n\n";
    assert_eq!(
        check(&only, &fields(two_froms), &dns)[0].text,
        "no single From: address to sign for"
    );
}

#[test]
fn one_click_needs_https_and_the_exact_post_value() {
    let only = Policy::parse("one_click_unsubscribe", "warn").unwrap();
    let dns = Fake::new();
    let text = |m: &str| {
        check(&only, &fields(m), &dns)
            .first()
            .map(|f| f.text.clone())
    };
    assert_eq!(
        text("List-Unsubscribe: <https://x/u>\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n\n"),
        None
    );
    assert_eq!(
        text("Precedence: bulk\n\n").as_deref(),
        Some("no List-Unsubscribe header")
    );
    assert_eq!(
        text("List-Unsubscribe: <https://x/u>\n\n").as_deref(),
        Some("no List-Unsubscribe-Post: List-Unsubscribe=One-Click header")
    );
    assert_eq!(
        text("List-Unsubscribe: <https://x/u>\nList-Unsubscribe-Post: yes\n\n").as_deref(),
        Some("List-Unsubscribe-Post is not exactly List-Unsubscribe=One-Click")
    );
    assert!(text(
        "List-Unsubscribe: https://x/u\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n\n"
    )
    .is_some_and(|t| t.contains("https")));
}

#[test]
fn dmarc_walk_is_bounded_and_a_dns_failure_never_fails_the_check() {
    let only = Policy::parse("dmarc", "reject").unwrap();
    let deep = format!("From: a@{}example.com\n\n", "x.".repeat(20));
    let dns = Fake::new();
    assert_eq!(check(&only, &fields(&deep), &dns).len(), 1);
    // The domain itself and at most MAX_WALK - 1 parents' worth of names.
    assert!(
        dns.asked.borrow().len() <= MAX_WALK,
        "{:?}",
        dns.asked.borrow()
    );
    assert_eq!(
        dns.asked.borrow().last().map(String::as_str),
        Some("_dmarc.example.com")
    );
    let mut failing = Fake::new();
    failing
        .txt
        .insert("_dmarc.example.net".into(), TxtAnswer::TempFail);
    assert!(check(&only, &fields("From: a@example.net\n\n"), &failing).is_empty());
    let mut spf_only = Fake::new();
    spf_only.txt.insert(
        "_dmarc.example.net".into(),
        TxtAnswer::Records(vec!["v=spf1 -all".into()]),
    );
    assert_eq!(
        check(&only, &fields("From: a@example.net\n\n"), &spf_only).len(),
        1
    );
    assert_eq!(
        check(&only, &fields("From: a@localhost\n\n"), &Fake::new())[0].text,
        "From: domain localhost is not a public domain"
    );
}

#[test]
fn configuration() {
    assert_eq!(
        Policy::parse("", "warn").unwrap(),
        Policy {
            checks: vec![],
            action: Action::Warn
        }
    );
    assert!(Policy::parse("", "warn").unwrap().is_off());
    assert_eq!(
        Policy::parse("DMARC dmarc,dkim", "Reject").unwrap().checks,
        vec![Check::Dmarc, Check::Dkim]
    );
    assert_eq!(
        Policy::parse("spf", "warn"),
        Err(HygieneError::UnknownCheck("spf".into()))
    );
    assert_eq!(
        Policy::parse("dkim", "hold"),
        Err(HygieneError::UnknownAction("hold".into()))
    );
}

proptest! {
    #[test]
    fn any_header_block_is_checked_without_panic(head in "[ -~\n]{0,400}") {
        let all = all();
        let f = fields(&head);
        let _ = is_campaign(None, &f);
        let _ = check(&all, &f, &Fake::new());
    }
}
