//! Access-table actions on the whole message (HOLD, DISCARD, FILTER, REDIRECT, BCC)
//! in a whole session: they reach the queue file the transaction writes.

use super::*;
use crate::settings::test_config;

/// Settings whose sender restrictions are `check_sender_access inline:{TABLE}`.
fn with_sender_table(table: &str) -> Settings {
    let list = format!("check_sender_access inline:{{{table}}}");
    let cf = test_config(&[
        ("myhostname", "mx.example.com"),
        ("local_recipient_maps", ""),
        ("smtpd_sender_restrictions", &list),
    ])
    .unwrap();
    let mut s = Settings::from_config(&cf, None).unwrap().0;
    s.mynetworks = NetworkList::parse(["127.0.0.0/8"]).unwrap();
    s.proto.forbid_unauth_pipelining = false;
    s
}

fn send_from(cfg: &Settings, sender: &str, rcpts: &[&str]) -> (Vec<String>, FakeSink) {
    let mut input = format!("MAIL FROM:<{sender}>\r\n");
    for r in rcpts {
        input.push_str(&format!("RCPT TO:<{r}>\r\n"));
    }
    input.push_str("DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n");
    let (lines, _, sink) = session(cfg, inside(), input.as_bytes());
    (lines, sink)
}

const TABLE: &str = "h@c=HOLD, {d@c=DISCARD spam source}, {f@c=FILTER scan:[127.0.0.1]:10026}, \
                     {r@c=REDIRECT boss@example.org}, {b@c=BCC archive@example.org}, \
                     {bad@c=REDIRECT nobody}, {x@c=FILTER nocolon}";

#[test]
fn hold_commits_into_the_hold_queue() {
    let cfg = with_sender_table(TABLE);
    let (lines, sink) = send_from(&cfg, "h@c", &["a@localhost"]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("250 2.0.0 Ok: queued as")),
        "{lines:?}"
    );
    let s = sink.0.borrow();
    assert_eq!(s.queued.len(), 1);
    assert_eq!(s.held, [s.queued[0].id.clone()]);
    assert!(s.woken.is_empty());
}

#[test]
fn discard_answers_as_queued_and_skips_later_restrictions() {
    let cfg = with_sender_table(TABLE);
    // The second recipient would be refused as relaying: DISCARD ended the checks.
    let (lines, sink) = send_from(&cfg, "d@c", &["a@localhost", "x@elsewhere.example"]);
    assert!(!lines.iter().any(|l| l.starts_with("554")), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("250 2.0.0 Ok: queued as")),
        "{lines:?}"
    );
    let s = sink.0.borrow();
    assert!(s.queued.is_empty());
    assert_eq!(s.aborted, 1);
}

#[test]
fn filter_redirect_and_bcc_rewrite_the_envelope() {
    let cfg = with_sender_table(TABLE);
    let (_, sink) = send_from(&cfg, "f@c", &["a@localhost"]);
    let env = sink.0.borrow().queued[0].envelope.clone();
    assert_eq!(env.attr("filter"), Some("scan:[127.0.0.1]:10026"));

    let (_, sink) = send_from(&cfg, "r@c", &["a@localhost", "b@localhost"]);
    let env = sink.0.borrow().queued[0].envelope.clone();
    let to: Vec<_> = env.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(to, ["boss@example.org"]);

    let (_, sink) = send_from(&cfg, "b@c", &["a@localhost"]);
    let env = sink.0.borrow().queued[0].envelope.clone();
    let to: Vec<_> = env.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(to, ["a@localhost", "archive@example.org"]);
}

#[test]
fn malformed_targets_change_nothing() {
    let cfg = with_sender_table(TABLE);
    for sender in ["bad@c", "x@c"] {
        let (_, sink) = send_from(&cfg, sender, &["a@localhost"]);
        let s = sink.0.borrow();
        let env = &s.queued[0].envelope;
        assert_eq!(env.recipients[0].address, "a@localhost");
        assert_eq!(env.attr("filter"), None);
    }
}

#[test]
fn actions_belong_to_one_transaction() {
    let cfg = with_sender_table(TABLE);
    let input = "MAIL FROM:<h@c>\r\nRCPT TO:<a@localhost>\r\nRSET\r\n\
                 MAIL FROM:<ok@c>\r\nRCPT TO:<a@localhost>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n";
    let (_, _, sink) = session(&cfg, inside(), input.as_bytes());
    let s = sink.0.borrow();
    assert_eq!(s.queued.len(), 1);
    assert!(s.held.is_empty());
}
