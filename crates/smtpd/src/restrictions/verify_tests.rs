//! Tests of reject_unverified_*: the reply for each answer, and the polling of a
//! real (scripted) verify socket.

use super::*;
use rostfix_proto::{read_message, write_message};
use std::os::unix::net::UnixListener;

fn text_of(step: &Step) -> Option<String> {
    match step {
        Step::Reject(r) => Some(r.log_text()),
        _ => None,
    }
}

#[test]
fn each_answer_gets_postfixs_reply() {
    let codes = VerifyCodes {
        reject_code: 550,
        ..VerifyCodes::default()
    };
    let mut notes = Vec::new();
    let go = decide(
        "a@x.test",
        "Recipient address",
        "4.1.1",
        &codes,
        Ok((VerifyStatus::Deliverable, "250 ok".into())),
        &mut notes,
    );
    assert!(matches!(go, Step::Go) && notes.is_empty());

    let bad = decide(
        "a@x.test",
        "Recipient address",
        "4.1.1",
        &codes,
        Ok((VerifyStatus::Undeliverable, "host said: 550 no".into())),
        &mut notes,
    );
    assert_eq!(
        text_of(&bad).unwrap(),
        "550 5.1.1 <a@x.test>: Recipient address rejected: undeliverable address: host said: 550 no"
    );

    // Unknown under defer_if_permit: remembered, not a reject now.
    let pending = decide(
        "a@x.test",
        "Recipient address",
        "4.1.1",
        &codes,
        Ok((
            VerifyStatus::Unknown,
            "Address verification in progress".into(),
        )),
        &mut notes,
    );
    assert!(matches!(pending, Step::Go));
    match &notes[..] {
        [Note::DeferIfPermit(r)] => assert_eq!(
            r.log_text(),
            "450 4.1.1 <a@x.test>: Recipient address rejected: unverified address: \
             Address verification in progress"
        ),
        other => panic!("{other:?}"),
    }

    // tempfail_action = defer, and the default 450 reject code: a 4xx at once.
    let defer = VerifyCodes {
        defer_if_permit: false,
        reject_reason: "try later".into(),
        ..VerifyCodes::default()
    };
    let step = decide(
        "s@x.test",
        "Sender address",
        "4.1.7",
        &defer,
        Ok((VerifyStatus::Undeliverable, "550 no".into())),
        &mut Vec::new(),
    );
    assert_eq!(
        text_of(&step).unwrap(),
        "450 4.1.7 <s@x.test>: Sender address rejected: unverified address: try later"
    );
    let step = decide(
        "s@x.test",
        "Sender address",
        "4.1.7",
        &defer,
        Err("down".into()),
        &mut Vec::new(),
    );
    assert_eq!(
        text_of(&step).unwrap(),
        "450 4.1.7 <s@x.test>: Sender address rejected: address verification problem"
    );

    // A 2xx code lets the address through.
    let open = VerifyCodes {
        defer_code: 250,
        ..VerifyCodes::default()
    };
    let mut notes = Vec::new();
    let step = decide(
        "a@x.test",
        "Recipient address",
        "4.1.1",
        &open,
        Ok((VerifyStatus::Deferred, "connect refused".into())),
        &mut notes,
    );
    assert!(matches!(step, Step::Go) && notes.is_empty());
}

#[test]
fn queries_are_repeated_while_a_probe_is_under_way() {
    let dir = std::env::temp_dir().join(format!("rostfix-smtpd-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("private")).unwrap();
    let listener = UnixListener::bind(dir.join("private/verify")).unwrap();
    let server = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for (n, conn) in listener.incoming().take(2).enumerate() {
            let mut conn = conn.unwrap();
            let req: VerifyRequest = read_message(&mut conn).unwrap();
            seen.push(req);
            let status = if n == 0 {
                VerifyStatus::Unknown
            } else {
                VerifyStatus::Deliverable
            };
            write_message(
                &mut conn,
                &VerifyReply::Status {
                    status,
                    text: "t".into(),
                },
            )
            .unwrap();
        }
        seen
    });
    let s = VerifySettings {
        poll_count: 3,
        poll_delay: Duration::from_millis(10),
        root: dir.clone(),
        ..VerifySettings::default()
    };
    let answer = query(&s, "a@x.test").unwrap();
    assert_eq!(answer.0, VerifyStatus::Deliverable);
    let seen = server.join().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0],
        VerifyRequest::Query {
            address: "a@x.test".into()
        }
    );
    // No service at all: an error, not a hang.
    std::fs::remove_file(dir.join("private/verify")).unwrap();
    assert!(query(&s, "a@x.test").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
