//! The incoming/ envelope made from a maildrop/ file: pure, so it is tested without a
//! queue. The file owner's uid is the only trusted identity (the `uid` attribute was
//! written by the submitter's own rostdrop run and is believed only when it agrees);
//! sender and recipients are qualified with `@$myorigin`; the Received: header Postfix's
//! cleanup adds to local submissions is built here too.

use crate::qualify::qualify;
use rostfix_queue::{Envelope, Recipient};

/// The new envelope, and a warning when the `uid` attribute disagreed with the owner.
pub fn incoming_envelope(
    drop: &Envelope,
    owner_uid: u32,
    myorigin: &str,
) -> (Envelope, Option<String>) {
    let claimed = drop.attr("uid");
    let warning = match claimed {
        Some(c) if c == owner_uid.to_string() => None,
        Some(c) => Some(format!(
            "uid attribute {c} differs from file owner {owner_uid}; using the owner"
        )),
        None => Some(format!(
            "no uid attribute; using the file owner {owner_uid}"
        )),
    };
    let mut attrs: Vec<(String, String)> = vec![("uid".into(), owner_uid.to_string())];
    attrs.extend(drop.attrs.iter().filter(|(n, _)| n != "uid").cloned());
    if !attrs.iter().any(|(n, _)| n == "rewrite_context") {
        attrs.push(("rewrite_context".into(), "local".into()));
    }
    let recipients = drop
        .recipients
        .iter()
        .filter(|r| !r.done)
        .map(|r| {
            let address = qualify(&r.address, myorigin);
            let orig = if r.orig_address.is_empty() {
                &r.address
            } else {
                &r.orig_address
            };
            Recipient {
                address,
                orig_address: qualify(orig, myorigin),
                notify: r.notify.clone(),
                ..Recipient::default()
            }
        })
        .collect();
    let env = Envelope {
        sender: qualify(&drop.sender, myorigin),
        arrival_us: drop.arrival_us,
        attrs,
        recipients,
    };
    (env, warning)
}

/// `Received: by HOST (Rostfix, from userid UID)\n\tid ID; DATE\n`, as Postfix writes
/// for mail picked up from maildrop.
pub fn received_header(myhostname: &str, uid: u32, queue_id: &str, date: &str) -> String {
    format!("Received: by {myhostname} (Rostfix, from userid {uid})\n\tid {queue_id}; {date}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop_env(uid: Option<&str>) -> Envelope {
        let mut attrs = vec![("rewrite_context".to_string(), "local".to_string())];
        if let Some(u) = uid {
            attrs.insert(0, ("uid".into(), u.into()));
        }
        Envelope {
            sender: "joe".into(),
            arrival_us: 42,
            attrs,
            recipients: vec![
                Recipient {
                    address: "amy".into(),
                    orig_address: "amy".into(),
                    ..Recipient::default()
                },
                Recipient {
                    address: "bob@x.org".into(),
                    orig_address: String::new(),
                    ..Recipient::default()
                },
                Recipient {
                    address: "old".into(),
                    done: true,
                    ..Recipient::default()
                },
            ],
        }
    }

    #[test]
    fn qualifies_and_keeps_arrival() {
        let (e, w) = incoming_envelope(&drop_env(Some("1000")), 1000, "example.org");
        assert!(w.is_none());
        assert_eq!(e.sender, "joe@example.org");
        assert_eq!(e.arrival_us, 42);
        let addrs: Vec<_> = e
            .recipients
            .iter()
            .map(|r| (r.address.as_str(), r.orig_address.as_str()))
            .collect();
        assert_eq!(
            addrs,
            vec![
                ("amy@example.org", "amy@example.org"),
                ("bob@x.org", "bob@x.org")
            ]
        );
        assert_eq!(e.attr("uid"), Some("1000"));
        assert_eq!(e.attr("rewrite_context"), Some("local"));
    }

    #[test]
    fn owner_wins_over_claimed_uid() {
        let (e, w) = incoming_envelope(&drop_env(Some("0")), 1000, "example.org");
        assert_eq!(e.attr("uid"), Some("1000"));
        assert_eq!(e.attrs.iter().filter(|(n, _)| n == "uid").count(), 1);
        assert!(w.unwrap().contains("differs from file owner 1000"));
        let (e, w) = incoming_envelope(&drop_env(None), 1000, "example.org");
        assert_eq!(e.attr("uid"), Some("1000"));
        assert!(w.is_some());
    }

    #[test]
    fn null_sender_stays_null() {
        let mut d = drop_env(Some("5"));
        d.sender.clear();
        d.attrs.retain(|(n, _)| n != "rewrite_context");
        let (e, _) = incoming_envelope(&d, 5, "example.org");
        assert_eq!(e.sender, "");
        assert_eq!(e.attr("rewrite_context"), Some("local"));
    }

    #[test]
    fn received_shape() {
        assert_eq!(
            received_header("mail.example.org", 1000, "3F2A81C0D4E", "Thu, 1 Jan 1970 00:00:00 +0000"),
            "Received: by mail.example.org (Rostfix, from userid 1000)\n\tid 3F2A81C0D4E; Thu, 1 Jan 1970 00:00:00 +0000\n"
        );
    }
}
