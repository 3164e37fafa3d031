//! Sending a probe: a queue file in incoming/ with the `verify_probe=1` attribute
//! (docs/queue-format.md), one recipient (the address asked about), the sender
//! address_verify_sender, and a minimal header-only content. qmgr routes it like
//! mail and hands it to the delivery agent as a probe (docs/ipc.md): nothing is ever
//! delivered, and the result comes back here as an `Update` (never as a bounce).
//!
//! The file is written with the queue library directly, not through smtpd's intake
//! (header checks, milters, DKIM): a probe has no content worth inspecting, as
//! Postfix's cleanup skips those for probes too.

use rostfix_queue::{Envelope, QueueError, QueueName, QueueWriter, Recipient};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes and commits one probe for `address` under `root` (queue_directory) and
/// wakes qmgr; returns the queue id.
pub fn send(
    root: &Path,
    sender: &str,
    address: &str,
    myhostname: &str,
) -> Result<String, QueueError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let envelope = Envelope {
        sender: sender.to_string(),
        arrival_us: now,
        attrs: vec![
            ("verify_probe".to_string(), "1".to_string()),
            ("rewrite_context".to_string(), "local".to_string()),
        ],
        recipients: vec![Recipient {
            address: address.to_string(),
            orig_address: address.to_string(),
            notify: String::new(),
            done: false,
            offset: 0,
        }],
    };
    let mut w = QueueWriter::create(root, QueueName::Incoming, &envelope)?;
    let content = format!(
        "From: {sender_shown}\nTo: <{address}>\nSubject: probe\nMessage-Id: <{id}.verify@{myhostname}>\n\n",
        sender_shown = if sender.is_empty() {
            "MAILER-DAEMON".to_string()
        } else {
            format!("<{sender}>")
        },
        id = w.queue_id(),
    );
    w.write_content(content.as_bytes())?;
    let id = w.commit()?;
    if let Err(e) = rostfix_proto::wake_qmgr(root) {
        // qmgr scans incoming/ on its own timer: only a delay.
        log::debug!("cannot wake qmgr: {e}");
    }
    Ok(id)
}

/// address_verify_sender as the envelope sender of probes: `<>` (or empty) is the
/// null sender; an address without a domain gets `@$myorigin`, as Postfix's
/// rewriting of the probe's sender would give it.
pub fn probe_sender(setting: &str, myorigin: &str) -> String {
    let s = setting.trim();
    if s.is_empty() || s == "<>" {
        return String::new();
    }
    if s.contains('@') || myorigin.is_empty() {
        s.to_string()
    } else {
        format!("{s}@{myorigin}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_is_qualified_or_null() {
        assert_eq!(
            probe_sender("double-bounce", "example.org"),
            "double-bounce@example.org"
        );
        assert_eq!(probe_sender("<>", "example.org"), "");
        assert_eq!(probe_sender("", "example.org"), "");
        assert_eq!(
            probe_sender("pm@other.example", "example.org"),
            "pm@other.example"
        );
    }

    #[test]
    fn a_probe_is_a_queue_file_marked_as_one() {
        let root =
            std::env::temp_dir().join(format!("rostfix-verify-probe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("incoming")).unwrap();
        let id = send(
            &root,
            "double-bounce@example.org",
            "user@example.com",
            "mx.example.org",
        )
        .unwrap();
        let qf = rostfix_queue::QueueFile::open(&root, QueueName::Incoming, &id).unwrap();
        assert_eq!(qf.envelope.attr("verify_probe"), Some("1"));
        assert_eq!(qf.envelope.sender, "double-bounce@example.org");
        assert_eq!(qf.envelope.recipients.len(), 1);
        assert_eq!(qf.envelope.recipients[0].address, "user@example.com");
        let _ = std::fs::remove_dir_all(&root);
    }
}
