//! Unit tests of the restriction evaluator: list semantics, Postfix's reply texts,
//! access table actions, the relay decision and the open-relay battery.

use super::*;
use crate::client::NameStatus;
use crate::restrictions::config::{DomainList, RestrictionConfig};
use crate::restrictions::local::LocalRecipients;
use crate::restrictions::parse_list;
use std::sync::Arc;

fn open(spec: &str) -> Result<Arc<dyn rostfix_maps::Map>, String> {
    rostfix_maps::open_map(spec)
        .map(Arc::from)
        .map_err(|e| e.to_string())
}

fn list(text: &str) -> Vec<Restriction> {
    parse_list("test", text, &open).unwrap()
}

fn dest() -> Vec<String> {
    vec!["mx.test".into(), "localhost".into()]
}

fn facts<'a>(d: &'a [String], rcpt: Option<&'a str>) -> Facts<'a> {
    Facts {
        client_name: "unknown",
        reverse_client_name: "unknown",
        name_status: NameStatus::Perm,
        reverse_name_status: NameStatus::Perm,
        client_addr: "127.0.0.2".into(),
        client_ip: Some("127.0.0.2".parse().unwrap()),
        client_log: "unknown[127.0.0.2]".into(),
        helo: Some("client.test"),
        sender: Some("s@sender.test"),
        recipient: rcpt,
        mynetworks: false,
        sasl_username: None,
        mydestination: d,
        session: Default::default(),
    }
}

fn rc() -> RestrictionConfig {
    RestrictionConfig {
        relay_domains: DomainList::from_names(&["relayed.test"]),
        ..RestrictionConfig::defaults()
    }
}

fn run(l: &str, stage: Stage, f: &Facts<'_>) -> (Verdict, Vec<Note>) {
    let mut notes = Vec::new();
    let v = evaluate(&list(l), stage, f, &rc(), &mut notes);
    (v, notes)
}

fn rejected(v: &Verdict) -> String {
    match v {
        Verdict::Reject(r) => r.log_text(),
        other => panic!("not rejected: {other:?}"),
    }
}

#[test]
fn default_relay_list() {
    let d = dest();
    let r = rc();
    let mut notes = Vec::new();
    let mut f = facts(&d, Some("u@victim.test"));
    assert_eq!(
        rejected(&evaluate(&r.relay, Stage::Relay, &f, &r, &mut notes)),
        "454 4.7.1 <u@victim.test>: Relay access denied"
    );
    f.mynetworks = true;
    assert_eq!(
        evaluate(&r.relay, Stage::Relay, &f, &r, &mut notes),
        Verdict::Permit
    );
    f.mynetworks = false;
    f.sasl_username = Some("alice");
    assert_eq!(
        evaluate(&r.relay, Stage::Relay, &f, &r, &mut notes),
        Verdict::Permit
    );
    f.sasl_username = None;
    f.recipient = Some("u@mx.test");
    assert_eq!(
        evaluate(&r.relay, Stage::Relay, &f, &r, &mut notes),
        Verdict::Dunno
    );
    f.recipient = Some("u@sub.relayed.test");
    assert_eq!(
        evaluate(&r.relay, Stage::Relay, &f, &r, &mut notes),
        Verdict::Dunno
    );
}

#[test]
fn open_relay_battery_is_refused() {
    let d = dest();
    for rcpt in [
        "u@victim.test",
        "u%victim.test@mx.test",
        "victim.test!u@mx.test",
        "\"u@victim.test\"@mx.test",
        "u@victim.test@mx.test",
        "u@VICTIM.test",
        "u@victim.test.",
        "u@mx.test.victim.test",
        "u@[127.0.0.1]",
        "u%victim.test",
        "victim.test!u",
        "u%victim.test@relayed.test",
    ] {
        let f = facts(&d, Some(rcpt));
        let (v, _) = run(
            "permit_sasl_authenticated reject_unauth_destination",
            Stage::Relay,
            &f,
        );
        assert_eq!(
            rejected(&v),
            format!("554 5.7.1 <{rcpt}>: Relay access denied"),
            "{rcpt}"
        );
        let mut f = f;
        f.sasl_username = Some("alice");
        let (v, _) = run(
            "permit_sasl_authenticated reject_unauth_destination",
            Stage::Relay,
            &f,
        );
        assert_eq!(v, Verdict::Permit, "{rcpt}");
    }
}

#[test]
fn plain_actions_and_warn_if_reject() {
    let d = dest();
    let f = facts(&d, Some("u@mx.test"));
    assert_eq!(
        rejected(&run("reject", Stage::Recipient, &f).0),
        "554 5.7.1 <u@mx.test>: Recipient address rejected: Access denied"
    );
    assert_eq!(
        rejected(&run("defer", Stage::Sender, &f).0),
        "450 4.7.1 <s@sender.test>: Sender address rejected: Try again later"
    );
    assert_eq!(
        rejected(&run("reject", Stage::Client, &f).0),
        "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied"
    );
    assert_eq!(
        rejected(&run("reject", Stage::Data, &f).0),
        "554 5.7.1 <DATA>: Data command rejected: Access denied"
    );
    assert_eq!(run("permit reject", Stage::Client, &f).0, Verdict::Permit);
    assert_eq!(run("", Stage::Client, &f).0, Verdict::Dunno);
    let (v, notes) = run("warn_if_reject reject permit", Stage::Helo, &f);
    assert_eq!(v, Verdict::Permit);
    assert_eq!(notes.len(), 1);
    assert!(
        matches!(&notes[0], Note::RejectWarning(r) if r.log_text().starts_with("554 5.7.1 <client.test>: Helo command rejected"))
    );
    // warn_if_reject applies to the next restriction only.
    let (v, _) = run("warn_if_reject permit_mynetworks reject", Stage::Helo, &f);
    assert!(matches!(v, Verdict::Reject(_)));
}

#[test]
fn fqdn_and_helo_syntax() {
    let d = dest();
    let mut f = facts(&d, Some("u@localhost"));
    assert_eq!(
        rejected(&run("reject_non_fqdn_recipient", Stage::Recipient, &f).0),
        "504 5.5.2 <u@localhost>: Recipient address rejected: need fully-qualified address"
    );
    f.recipient = Some("u@mx.test");
    assert_eq!(
        run("reject_non_fqdn_recipient", Stage::Recipient, &f).0,
        Verdict::Dunno
    );
    f.sender = Some("");
    assert_eq!(
        run("reject_non_fqdn_sender", Stage::Sender, &f).0,
        Verdict::Dunno
    );
    f.sender = Some("s@host");
    assert!(matches!(
        run("reject_non_fqdn_sender", Stage::Sender, &f).0,
        Verdict::Reject(_)
    ));
    f.helo = Some("localhost");
    assert_eq!(
        rejected(&run("reject_non_fqdn_helo_hostname", Stage::Helo, &f).0),
        "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname"
    );
    assert_eq!(
        run("reject_invalid_helo_hostname", Stage::Helo, &f).0,
        Verdict::Dunno
    );
    f.helo = Some("bad_host!name");
    assert_eq!(
        rejected(&run("reject_invalid_helo_hostname", Stage::Helo, &f).0),
        "501 5.5.2 <bad_host!name>: Helo command rejected: Invalid name"
    );
    f.helo = Some("[127.0.0.2]");
    assert_eq!(
        run(
            "reject_invalid_helo_hostname reject_non_fqdn_helo_hostname",
            Stage::Helo,
            &f
        )
        .0,
        Verdict::Dunno
    );
    f.helo = Some("[300.1.1.1]");
    assert!(matches!(
        run("reject_invalid_helo_hostname", Stage::Helo, &f).0,
        Verdict::Reject(_)
    ));
    assert!(valid_hostname("mx-1.example.com."));
    assert!(!valid_hostname("-a.example"));
    assert!(!valid_hostname("1.2.3.4"));
    assert!(is_address_literal("[IPv6:::1]"));
}

#[test]
fn access_tables() {
    let d = dest();
    let f = facts(&d, Some("u@mx.test"));
    let t = "check_sender_access inline:{s@sender.test=OK}";
    assert_eq!(run(t, Stage::Sender, &f).0, Verdict::Permit);
    let t = "check_sender_access inline:{ { sender.test = REJECT no spam please } }";
    assert_eq!(
        rejected(&run(t, Stage::Sender, &f).0),
        "554 5.7.1 <s@sender.test>: Sender address rejected: no spam please"
    );
    let t = "check_client_access inline:{ { 127.0.0 = 550 5.7.9 bad net } }";
    assert_eq!(
        rejected(&run(t, Stage::Client, &f).0),
        "550 5.7.9 <unknown[127.0.0.2]>: Client host rejected: bad net"
    );
    let t = "check_client_access inline:{127.0.0=DEFER}";
    assert_eq!(
        rejected(&run(t, Stage::Client, &f).0),
        "450 4.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied"
    );
    let t = "check_helo_access inline:{.test=DUNNO} check_helo_access inline:{test=450} permit";
    assert_eq!(
        rejected(&run(t, Stage::Helo, &f).0),
        "450 4.7.1 <client.test>: Helo command rejected: Access denied"
    );
    let t = "check_recipient_access inline:{u@=WARN} permit";
    let (v, notes) = run(t, Stage::Recipient, &f);
    assert_eq!(v, Verdict::Permit);
    assert_eq!(notes, vec![Note::Warn(String::new())]);
    let t = "check_recipient_access inline:{mx.test=reject_unauth_destination}";
    assert_eq!(run(t, Stage::Recipient, &f).0, Verdict::Dunno);
    let t = "check_recipient_access inline:{mx.test=bogus_restriction}";
    assert_eq!(
        rejected(&run(t, Stage::Recipient, &f).0),
        "451 4.3.5 Server configuration error"
    );
}

#[test]
fn unlisted_recipients() {
    let d = dest();
    let mut r = rc();
    r.local = LocalRecipients::fixed(&["alice"], Vec::new());
    let l = list("reject_unlisted_recipient");
    let mut notes = Vec::new();
    let f = facts(&d, Some("alice+x@mx.test"));
    assert_eq!(
        evaluate(&l, Stage::Recipient, &f, &r, &mut notes),
        Verdict::Dunno
    );
    let f = facts(&d, Some("nobody@mx.test"));
    assert_eq!(
        rejected(&evaluate(&l, Stage::Recipient, &f, &r, &mut notes)),
        "550 5.1.1 <nobody@mx.test>: Recipient address rejected: User unknown in local recipient table"
    );
    // Foreign domains are not ours to judge.
    let f = facts(&d, Some("nobody@elsewhere.test"));
    assert_eq!(
        evaluate(&l, Stage::Recipient, &f, &r, &mut notes),
        Verdict::Dunno
    );
}

/// An rc with smtpd_restriction_classes from `pairs` (name, list).
fn rc_with_classes(pairs: &[(&str, &str)]) -> RestrictionConfig {
    let names: Vec<String> = pairs.iter().map(|(n, _)| n.to_string()).collect();
    let policy = crate::restrictions::policy_service::PolicySpec::builtin();
    let ctx = crate::restrictions::ParseContext {
        open: &open,
        classes: &names,
        policy: &policy,
    };
    let mut r = rc();
    for (n, l) in pairs {
        let parsed = crate::restrictions::parse_list_in("class", l, &ctx).unwrap();
        r.classes.insert(n.to_string(), parsed);
    }
    r.class_names = names;
    r
}

#[test]
fn restriction_classes_as_names_and_table_results() {
    let d = dest();
    let r = rc_with_classes(&[
        ("strict", "reject_non_fqdn_sender, reject"),
        ("loop_a", "loop_b"),
        ("loop_b", "loop_a"),
        (
            "via_table",
            "check_sender_access inline:{s@sender.test=strict}",
        ),
    ]);
    let f = facts(&d, Some("u@mx.test"));
    let mut notes = Vec::new();
    assert_eq!(
        rejected(&evaluate(
            &r.classes["strict"],
            Stage::Recipient,
            &f,
            &r,
            &mut notes
        )),
        "554 5.7.1 <u@mx.test>: Recipient address rejected: Access denied"
    );
    // A class named by an access table result, as Postfix allows.
    assert_eq!(
        rejected(&evaluate(
            &r.classes["via_table"],
            Stage::Sender,
            &f,
            &r,
            &mut notes
        )),
        "554 5.7.1 <s@sender.test>: Sender address rejected: Access denied"
    );
    // Classes that name each other end in a 451 at the depth limit, not a crash.
    assert_eq!(
        rejected(&evaluate(
            &r.classes["loop_a"],
            Stage::Recipient,
            &f,
            &r,
            &mut notes
        )),
        "451 4.3.5 Server configuration error"
    );
}

#[test]
fn unknown_client_hostname_follows_the_name_status() {
    let d = dest();
    let mut rc = rc();
    rc.unknown_codes.client = 550;
    let run_with = |name_status, reverse_name_status, l: &str| {
        let f = Facts {
            name_status,
            reverse_name_status,
            ..facts(&d, Some("u@mx.test"))
        };
        evaluate(&list(l), Stage::Client, &f, &rc, &mut Vec::new())
    };
    let client = "reject_unknown_client_hostname";
    assert_eq!(
        rejected(&run_with(NameStatus::Forged, NameStatus::Ok, client)),
        "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.2]"
    );
    assert_eq!(
        rejected(&run_with(
            NameStatus::Perm,
            NameStatus::Perm,
            "reject_unknown_client"
        )),
        "550 5.7.25 Client host rejected: cannot find your hostname, [127.0.0.2]"
    );
    assert_eq!(
        rejected(&run_with(NameStatus::Temp, NameStatus::Temp, client)),
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.2]"
    );
    assert_eq!(
        run_with(NameStatus::Ok, NameStatus::Ok, client),
        Verdict::Dunno
    );
    let reverse = "reject_unknown_reverse_client_hostname";
    assert_eq!(
        run_with(NameStatus::Forged, NameStatus::Ok, reverse),
        Verdict::Dunno
    );
    assert_eq!(
        rejected(&run_with(NameStatus::Perm, NameStatus::Perm, reverse)),
        "550 5.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.2]"
    );
    assert_eq!(
        rejected(&run_with(NameStatus::Temp, NameStatus::Temp, reverse)),
        "450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.2]"
    );
}

#[test]
fn defer_if_permit_and_defer_if_reject() {
    let d = dest();
    let f = facts(&d, Some("u@mx.test"));
    let (v, notes) = run("defer_if_permit, permit", Stage::Recipient, &f);
    assert_eq!(v, Verdict::Permit);
    assert!(matches!(&notes[..], [Note::DeferIfPermit(r)]
        if r.log_text() == "450 4.7.1 <u@mx.test>: Recipient address rejected: defer_if_permit requested"));
    let (v, _) = run("defer_if_reject, reject", Stage::Recipient, &f);
    assert_eq!(
        rejected(&v),
        "450 4.7.1 <u@mx.test>: Recipient address rejected: defer_if_reject requested"
    );
    // A table's DEFER_IF_PERMIT carries its text and enhanced code.
    let (_, notes) = run(
        "check_recipient_access inline:{ { u@mx.test=DEFER_IF_PERMIT 4.7.2 greylisted } }",
        Stage::Recipient,
        &f,
    );
    assert!(matches!(&notes[..], [Note::DeferIfPermit(r)]
        if r.log_text() == "450 4.7.2 <u@mx.test>: Recipient address rejected: greylisted"));
}

#[test]
fn policy_server_down_gives_the_default_action() {
    let d = dest();
    let f = facts(&d, Some("u@mx.test"));
    // A port nobody listens on: connect fails at once, try_limit=1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (v, _) = run(
        &format!("check_policy_service {{ inet:127.0.0.1:{port}, try_limit=1 }}"),
        Stage::Recipient,
        &f,
    );
    assert_eq!(
        rejected(&v),
        "451 4.3.5 <u@mx.test>: Recipient address rejected: Server configuration problem"
    );
    let (v, _) = run(
        &format!(
            "check_policy_service {{ inet:127.0.0.1:{port}, try_limit=1, default_action=DUNNO }}"
        ),
        Stage::Recipient,
        &f,
    );
    assert_eq!(v, Verdict::Dunno);
}

#[test]
fn dsn_class_follows_the_code() {
    assert_eq!(fix_dsn(550, "4.7.1"), "5.7.1");
    assert_eq!(fix_dsn(450, "5.1.8"), "4.1.8");
    assert_eq!(fix_dsn(556, "4.1.10"), "5.1.10");
}

#[test]
fn unverified_restrictions_go_on() {
    let d = dest();
    let f = facts(&d, Some("u@mx.test"));
    let (v, _) = run(
        "reject_unverified_recipient, reject_unverified_sender",
        Stage::Recipient,
        &f,
    );
    assert_eq!(v, Verdict::Dunno);
}

#[test]
fn multi_recipient_bounce_and_unauth_pipelining() {
    let d = dest();
    let mut f = facts(&d, Some("u@mx.test"));
    f.sender = Some("");
    f.session.protocol_state = "RCPT";
    f.session.recipient_count = 1;
    let (v, _) = run("reject_multi_recipient_bounce", Stage::Recipient, &f);
    assert_eq!(
        rejected(&v),
        "550 5.5.3 <u@mx.test>: Recipient address rejected: Multi-recipient bounce"
    );
    f.session.recipient_count = 0;
    assert_eq!(
        run("reject_multi_recipient_bounce", Stage::Recipient, &f).0,
        Verdict::Dunno
    );
    f.session.ill_pipelining = true;
    let (v, _) = run("reject_unauth_pipelining", Stage::Recipient, &f);
    assert_eq!(
        rejected(&v),
        "503 5.5.0 <u@mx.test>: Recipient address rejected: Improper use of SMTP command pipelining"
    );
}

#[test]
fn legacy_and_session_restrictions() {
    let d = dest();
    let mut f = facts(&d, Some("u@victim.test"));
    // reject_plaintext_session: only a TLS session passes.
    assert_eq!(
        rejected(&run("reject_plaintext_session", Stage::Recipient, &f).0),
        "450 4.7.1 Session encryption is required"
    );
    f.session.encryption_protocol = Some("TLSv1.3");
    assert_eq!(
        run("reject_plaintext_session", Stage::Recipient, &f).0,
        Verdict::Dunno
    );
    // check_relay_domains acts as reject_unauth_destination.
    assert_eq!(
        rejected(&run("check_relay_domains", Stage::Recipient, &f).0),
        "554 5.7.1 <u@victim.test>: Relay access denied"
    );
    assert!(list("check_relay_domains")[0].restricts_relay());
    // permit_naked_ip_address: a bare address in HELO, not a bracketed one.
    f.helo = Some("192.0.2.7");
    assert_eq!(
        run("permit_naked_ip_address", Stage::Helo, &f).0,
        Verdict::Permit
    );
    f.helo = Some("[192.0.2.7]");
    assert_eq!(
        run("permit_naked_ip_address", Stage::Helo, &f).0,
        Verdict::Dunno
    );
    assert_eq!(run("sleep 0", Stage::Helo, &f).0, Verdict::Dunno);
}

#[test]
fn forward_client_hostname_and_reverse_name_access() {
    let d = dest();
    let mut f = facts(&d, Some("u@mx.test"));
    let rule = "reject_unknown_forward_client_hostname";
    // A PTR name whose forward lookup finds other addresses still resolves.
    f.reverse_name_status = NameStatus::Ok;
    f.name_status = NameStatus::Forged;
    assert_eq!(run(rule, Stage::Client, &f).0, Verdict::Dunno);
    f.name_status = NameStatus::Perm;
    assert_eq!(
        rejected(&run(rule, Stage::Client, &f).0),
        "450 4.7.25 Client host rejected: cannot find your hostname, [127.0.0.2]"
    );
    f.name_status = NameStatus::Temp;
    assert!(rejected(&run(rule, Stage::Client, &f).0).starts_with("450 4.7.25"));
    // check_reverse_client_hostname_access looks the unverified PTR name up.
    f.reverse_client_name = "host.spammy.test";
    assert_eq!(
        rejected(
            &run(
                "check_reverse_client_hostname_access inline:{spammy.test=REJECT}",
                Stage::Client,
                &f
            )
            .0
        ),
        "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied"
    );
}

#[test]
fn a_bare_table_is_the_access_check_of_its_stage() {
    let d = dest();
    let f = facts(&d, Some("u@mx.test"));
    // modoboa's `check_recipient_access pgsql:a pgsql:b`: the second table is read as
    // a recipient access table too.
    let t = "check_recipient_access inline:{x@y=OK} inline:{ { u@mx.test = REJECT gone } }";
    assert_eq!(
        rejected(&run(t, Stage::Recipient, &f).0),
        "554 5.7.1 <u@mx.test>: Recipient address rejected: gone"
    );
    // The same table in the sender list is keyed by the sender.
    let t = "inline:{ { sender.test = REJECT no } }";
    assert_eq!(
        rejected(&run(t, Stage::Sender, &f).0),
        "554 5.7.1 <s@sender.test>: Sender address rejected: no"
    );
    assert_eq!(run(t, Stage::Recipient, &f).0, Verdict::Dunno);
    let t = "inline:{ { 127.0.0.2 = REJECT } }";
    assert_eq!(
        rejected(&run(t, Stage::Client, &f).0),
        "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied"
    );
    // No access check belongs to DATA: Postfix's server configuration error.
    assert_eq!(
        rejected(&run(t, Stage::Data, &f).0),
        "451 4.3.5 Server configuration error"
    );
    // A class takes the stage of the list that names it.
    let r = rc_with_classes(&[("by_stage", "inline:{ { sender.test = REJECT no } }")]);
    let mut notes = Vec::new();
    let class = list_in("by_stage", &r);
    assert!(matches!(
        evaluate(&class, Stage::Sender, &f, &r, &mut notes),
        Verdict::Reject(_)
    ));
    assert_eq!(
        evaluate(&class, Stage::Recipient, &f, &r, &mut notes),
        Verdict::Dunno
    );
}

/// A list of one class name, parsed knowing `r`'s classes.
fn list_in(text: &str, r: &RestrictionConfig) -> Vec<Restriction> {
    let policy = crate::restrictions::policy_service::PolicySpec::builtin();
    let ctx = crate::restrictions::ParseContext {
        open: &open,
        classes: &r.class_names,
        policy: &policy,
    };
    crate::restrictions::parse_list_in("test", text, &ctx).unwrap()
}

#[test]
fn virtual_domains_are_authorized_destinations() {
    let d = dest();
    let cf = rostfix_config::MainCf::parse(
        "virtual_mailbox_domains = inline:{ mbox.test=OK }\nvirtual_alias_domains = alias.test\n",
        std::path::Path::new("/etc/rostfix/main.cf"),
    )
    .unwrap();
    let mut r = rc();
    r.virtual_domains =
        crate::restrictions::virtual_domains::VirtualDomains::from_config(&cf).unwrap();
    let mut notes = Vec::new();
    let l = list("reject_unauth_destination");
    for rcpt in ["u@mbox.test", "u@alias.test", "u@relayed.test", "u@mx.test"] {
        let f = facts(&d, Some(rcpt));
        assert_eq!(
            evaluate(&l, Stage::Recipient, &f, &r, &mut notes),
            Verdict::Dunno,
            "{rcpt}"
        );
    }
    // Elsewhere, or routed through a virtual domain: relaying.
    for rcpt in ["u@far.test", "u%far.test@mbox.test"] {
        let f = facts(&d, Some(rcpt));
        assert_eq!(
            rejected(&evaluate(&l, Stage::Recipient, &f, &r, &mut notes)),
            format!("554 5.7.1 <{rcpt}>: Relay access denied")
        );
    }
    let f = facts(&d, Some("u@alias.test"));
    assert_eq!(
        evaluate(
            &list("permit_auth_destination"),
            Stage::Recipient,
            &f,
            &r,
            &mut notes
        ),
        Verdict::Permit
    );
}
