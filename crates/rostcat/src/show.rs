//! Renders one queue file as postcat does: envelope lines, then the header and the
//! body of the content, with the `*** ... ***` marker lines only when all three
//! sections are shown.

use crate::args::Sections;
use crate::utctime::asctime_utc;
use rostfix_queue::Envelope;

/// The output for the file called `label` (`deferred/ID`, or the path given).
pub fn render(label: &str, envelope: &Envelope, content: &[u8], sections: Sections) -> Vec<u8> {
    let markers = sections.all();
    let mut out = Vec::new();
    let marker = |out: &mut Vec<u8>, what: &str| {
        if markers {
            out.extend_from_slice(format!("*** {what} {label} ***\n").as_bytes());
        }
    };
    if sections.envelope {
        marker(&mut out, "ENVELOPE RECORDS");
        out.extend_from_slice(envelope_text(envelope).as_bytes());
    }
    let (header, body) = split_content(content);
    if sections.header || sections.body {
        marker(&mut out, "MESSAGE CONTENTS");
    }
    if sections.header {
        out.extend_from_slice(header);
    }
    if sections.body {
        out.extend_from_slice(body);
        if !body.is_empty() && !body.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    marker(&mut out, "MESSAGE FILE END");
    out
}

fn envelope_text(envelope: &Envelope) -> String {
    let mut text = format!(
        "message_arrival_time: {}\nsender: {}\n",
        asctime_utc(envelope.arrival_us.div_euclid(1_000_000)),
        envelope.sender
    );
    for (name, value) in &envelope.attrs {
        text.push_str(&format!("named_attribute: {name}={value}\n"));
    }
    for rcpt in &envelope.recipients {
        if !rcpt.orig_address.is_empty() && rcpt.orig_address != rcpt.address {
            text.push_str(&format!("original_recipient: {}\n", rcpt.orig_address));
        }
        if !rcpt.notify.is_empty() {
            text.push_str(&format!("dsn_notify_flags: {}\n", rcpt.notify));
        }
        let kind = if rcpt.done {
            "done_recipient"
        } else {
            "recipient"
        };
        text.push_str(&format!("{kind}: {}\n", rcpt.address));
    }
    text
}

/// The header (through the empty line that ends it, which goes with the header, as
/// postcat -h prints it) and the body. Content without an empty line is all header;
/// content that starts with one has an empty header.
fn split_content(content: &[u8]) -> (&[u8], &[u8]) {
    if content.first() == Some(&b'\n') {
        return content.split_at(1);
    }
    match content.windows(2).position(|pair| pair == b"\n\n") {
        Some(at) => content.split_at(at + 2),
        None => (content, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_queue::Recipient;

    fn sample() -> Envelope {
        Envelope {
            sender: "root@example.org".into(),
            arrival_us: 1_606_123_512_000_000,
            attrs: vec![("rewrite_context".into(), "local".into())],
            recipients: vec![
                Recipient {
                    address: "pkguser@example.org".into(),
                    orig_address: "alias@example.org".into(),
                    notify: "FAILURE".into(),
                    ..Recipient::default()
                },
                Recipient {
                    address: "done@example.org".into(),
                    orig_address: "done@example.org".into(),
                    done: true,
                    ..Recipient::default()
                },
            ],
        }
    }

    const CONTENT: &[u8] = b"Subject: hi\nTo: x\n\nline one\nline two\n";

    #[test]
    fn everything_with_markers() {
        let all = Sections {
            envelope: true,
            header: true,
            body: true,
        };
        let text = String::from_utf8(render("deferred/ABC123", &sample(), CONTENT, all))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text,
            "*** ENVELOPE RECORDS deferred/ABC123 ***\n\
             message_arrival_time: Mon Nov 23 09:25:12 2020\n\
             sender: root@example.org\n\
             named_attribute: rewrite_context=local\n\
             original_recipient: alias@example.org\n\
             dsn_notify_flags: FAILURE\n\
             recipient: pkguser@example.org\n\
             done_recipient: done@example.org\n\
             *** MESSAGE CONTENTS deferred/ABC123 ***\n\
             Subject: hi\nTo: x\n\nline one\nline two\n\
             *** MESSAGE FILE END deferred/ABC123 ***\n"
        );
    }

    #[test]
    fn header_or_body_alone_without_markers() {
        let only = |header, body| Sections {
            envelope: false,
            header,
            body,
        };
        assert_eq!(
            render("x", &sample(), CONTENT, only(true, false)),
            b"Subject: hi\nTo: x\n\n"
        );
        assert_eq!(
            render("x", &sample(), CONTENT, only(false, true)),
            b"line one\nline two\n"
        );
        assert_eq!(render("x", &sample(), CONTENT, only(true, true)), CONTENT);
    }

    #[test]
    fn content_split_edge_cases() {
        assert_eq!(split_content(b"A: b\n"), (&b"A: b\n"[..], &b""[..]));
        assert_eq!(split_content(b"\nbody\n"), (&b"\n"[..], &b"body\n"[..]));
        assert_eq!(split_content(b""), (&b""[..], &b""[..]));
    }
}
