//! Postfix 3's showq protocol, for the tools written against Postfix's own showq
//! socket (Debian's prometheus-postfix-exporter reads it for its queue metrics). A
//! showq service with `rostfix_showq_protocol = postfix` speaks this instead of our
//! framed JSON (docs/ipc.md, "Queue listing in Postfix's format").
//!
//! The format is Postfix's attr_print0 stream as its showq writes it: `name\0value\0`
//! pairs, a lone `\0` ending each group. First the protocol announcement
//! (`protocol` = `mail_queue_list_protocol`, ended); then per message the queue
//! attributes and the sender, one group of four attributes per recipient, and the end
//! marker; finally one more end marker for the whole listing. Postfix's readers take
//! values as C strings, so a NUL inside a value (never in a queue file we wrote, but
//! the queue is disk input) is sent as `?`, as Postfix's printable() would.

use crate::scan::Listed;
use std::io::{self, BufWriter, Write};

/// Postfix's `MAIL_ATTR_PROTO_SHOWQ`: the value of the opening `protocol` attribute.
const PROTOCOL: &str = "mail_queue_list_protocol";

/// Writes the whole listing in Postfix 3's format and flushes it.
pub fn send_postfix_listing<W: Write>(out: &mut W, messages: &[Listed]) -> io::Result<()> {
    let mut w = BufWriter::new(out);
    attr(&mut w, "protocol", PROTOCOL)?;
    end(&mut w)?;
    for m in messages {
        attr(&mut w, "queue_name", m.queue.as_str())?;
        attr(&mut w, "queue_id", m.id.as_str())?;
        attr(&mut w, "time", &m.arrival.to_string())?;
        attr(&mut w, "size", &m.size.to_string())?;
        attr(
            &mut w,
            "forced_expire",
            if m.forced_expire { "1" } else { "0" },
        )?;
        attr(&mut w, "sender", &m.sender)?;
        for r in &m.recipients {
            attr(&mut w, "original_recipient", &r.orig_address)?;
            attr(&mut w, "recipient", &r.address)?;
            // Postfix names the log the reason came from; ours come from defer/ID.
            let (class, why) = match &r.reason {
                Some(why) => ("defer", why.as_str()),
                None => ("", ""),
            };
            attr(&mut w, "log_class", class)?;
            attr(&mut w, "reason", why)?;
        }
        end(&mut w)?;
    }
    end(&mut w)?;
    w.flush()
}

fn attr<W: Write>(w: &mut W, name: &str, value: &str) -> io::Result<()> {
    w.write_all(name.as_bytes())?;
    w.write_all(b"\0")?;
    w.write_all(value.replace('\0', "?").as_bytes())?;
    w.write_all(b"\0")
}

fn end<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(b"\0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::ListedRecipient;
    use rostfix_queue::{QueueId, QueueName};

    fn listed(reason: Option<&str>) -> Listed {
        Listed {
            queue: QueueName::Deferred,
            id: QueueId::new("4F2A1B3C9D0").expect("valid id"),
            arrival: 1_700_000_000,
            size: 1234,
            sender: "a@example.org".into(),
            forced_expire: false,
            recipients: vec![ListedRecipient {
                address: "b@example.com".into(),
                orig_address: "B@example.com".into(),
                reason: reason.map(str::to_string),
            }],
        }
    }

    /// Splits the stream the way Postfix's attr_scan0 readers do.
    fn fields(bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
        assert!(text.ends_with('\0'), "every field is NUL-terminated");
        text[..text.len() - 1]
            .split('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn empty_queue_is_announcement_and_final_end() {
        let mut out = Vec::new();
        send_postfix_listing(&mut out, &[]).expect("write");
        assert_eq!(out, b"protocol\0mail_queue_list_protocol\0\0\0");
    }

    #[test]
    fn message_with_deferred_recipient() {
        let mut out = Vec::new();
        send_postfix_listing(&mut out, &[listed(Some("connection refused"))]).expect("write");
        let want = [
            "protocol",
            "mail_queue_list_protocol",
            "",
            "queue_name",
            "deferred",
            "queue_id",
            "4F2A1B3C9D0",
            "time",
            "1700000000",
            "size",
            "1234",
            "forced_expire",
            "0",
            "sender",
            "a@example.org",
            "original_recipient",
            "B@example.com",
            "recipient",
            "b@example.com",
            "log_class",
            "defer",
            "reason",
            "connection refused",
            "",
            "",
        ];
        assert_eq!(fields(&out), want);
    }

    #[test]
    fn nul_in_a_value_cannot_split_the_stream() {
        let mut m = listed(None);
        m.sender = "evil\0queue_name\0x".into();
        let mut out = Vec::new();
        send_postfix_listing(&mut out, &[m]).expect("write");
        let f = fields(&out);
        let sender = f
            .iter()
            .position(|s| s == "sender")
            .expect("sender attribute");
        assert_eq!(f[sender + 1], "evil?queue_name?x");
        assert_eq!(f.iter().filter(|s| *s == "queue_name").count(), 1);
    }
}
