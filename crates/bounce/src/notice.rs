//! Builds RFC 3464 delivery status notifications: a multipart/report with a
//! human-readable explanation, a message/delivery-status part, and the returned message
//! (text/rfc822-headers for its headers, message/rfc822 for the whole of it, RET=FULL
//! within bounce_size_limit). Three kinds, as Postfix sends them: non-delivery
//! (Action: failed), delay warning (Action: delayed) and success (Action: delivered or
//! relayed); and the double bounce to the postmaster. Pure (all inputs given, LF line
//! endings as stored in the queue), so the structure is unit-tested. Text from delivery agents and addresses is cleaned
//! of control characters and length-capped so it can never break the MIME structure.

use rostfix_maillog::date::{compact_timestamp, format_rfc5322};
use rostfix_proto::{BouncedRecipient, NoticeKind};

/// Longest diagnostic text carried (a header line must stay under 998 bytes).
const MAX_TEXT: usize = 800;
/// Longest header block returned to the sender (Postfix's header_size_limit).
pub const MAX_RETURNED_HEADERS: usize = 102_400;

/// Everything a notice says.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    pub myhostname: &'a str,
    /// The undeliverable message's queue id.
    pub queue_id: &'a str,
    /// The notice's own queue id (for its Message-Id).
    pub new_id: &'a str,
    /// The original envelope sender: the notice goes to this address.
    pub sender: &'a str,
    /// Arrival of the original message, seconds since the epoch.
    pub arrival: i64,
    /// Now, seconds since the epoch.
    pub now: i64,
    pub recipients: &'a [BouncedRecipient],
    /// The original header block, None if the message could not be read.
    pub original_headers: Option<&'a [u8]>,
    /// Which notice.
    pub kind: NoticeKind,
    /// Who gets it: the sender, or the postmaster for a double bounce.
    pub to: &'a str,
    /// A double bounce (a notice to the null sender failed): goes to the postmaster.
    pub postmaster: bool,
    /// RFC 3461 ENVID of the original, for Original-Envelope-Id.
    pub envid: Option<&'a str>,
    /// Return the whole message as message/rfc822 (RET=FULL within bounce_size_limit)
    /// instead of its headers; `original_headers` then holds the whole message.
    pub full: bool,
}

/// Control characters become spaces; long text is cut at a character boundary.
fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > max {
        let mut cut = max;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// The RFC 3463 status for a failed recipient: the agent's code if well formed
/// (class 4 for expired mail, 5 for hard failures), else 5.0.0.
pub fn dsn_status(dsn: &str) -> String {
    status_of_class(dsn, &["4", "5"], "5.0.0")
}

/// `dsn` if well formed with a class in `classes`, else `fallback`.
pub fn status_of_class(dsn: &str, classes: &[&str], fallback: &str) -> String {
    let parts: Vec<&str> = dsn.split('.').collect();
    let ok = parts.len() == 3
        && classes.contains(&parts[0])
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        dsn.to_string()
    } else {
        fallback.to_string()
    }
}

/// The header block of a message: up to (not including) the first empty line, capped at
/// `limit` bytes on a line boundary.
pub fn header_block(content: &[u8], limit: usize) -> &[u8] {
    let mut end = 0;
    let mut pos = 0;
    while pos < content.len() {
        let line_end = content[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(content.len(), |i| pos + i + 1);
        let line = &content[pos..line_end];
        if line == b"\n" || line == b"\r\n" || line_end > limit {
            break;
        }
        end = line_end;
        pos = line_end;
    }
    &content[..end]
}

/// A boundary that occurs nowhere in the parts it separates.
fn boundary(n: &Notice, parts: &[&[u8]]) -> String {
    let base = format!("{}.{}/{}", n.queue_id, n.now, clean(n.myhostname, 200));
    let mut candidate = base.clone();
    let mut i = 0u32;
    while parts.iter().any(|p| {
        p.windows(candidate.len())
            .any(|w| w == candidate.as_bytes())
    }) {
        i += 1;
        candidate = format!("{base}.{i}");
    }
    candidate
}

/// The explanation for people (part 1).
fn explanation(n: &Notice) -> String {
    let host = clean(n.myhostname, 200);
    let body = match (n.kind, n.postmaster) {
        (_, true) => "The following bounce message could not be returned to its sender;\n\
                      it is sent to the postmaster instead.\n"
            .to_string(),
        (NoticeKind::Failure, false) => {
            "I'm sorry to have to inform you that your message could not\n\
             be delivered to one or more recipients. It's attached below.\n\n\
             For further assistance, please send mail to postmaster.\n\n\
             If you do so, please include this problem report. You can\n\
             delete your own text from the attached returned message.\n"
                .to_string()
        }
        (NoticeKind::Delay, false) => {
            "####################################################################\n\
             # THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n\
             ####################################################################\n\n\
             Your message could not be delivered for more than some time.\n\
             It will be retried until it is too old.\n"
                .to_string()
        }
        (NoticeKind::Success, false) => {
            "Your message was successfully delivered to the destination(s)\n\
             listed below. If the message was delivered to mailbox you will\n\
             receive no further notifications. Otherwise you may still receive\n\
             notifications of mail delivery errors from other systems.\n"
                .to_string()
        }
    };
    let mut t = format!(
        "This is the mail system at host {host}.\n\n{body}\n\
         \x20                  The mail system\n"
    );
    for r in n.recipients {
        let addr = clean(&r.address, 500);
        let orig = clean(&r.orig_address, 500);
        let expanded = if orig.is_empty() || orig == addr {
            String::new()
        } else {
            format!(" (expanded from <{orig}>)")
        };
        t.push_str(&format!(
            "\n<{addr}>{expanded}: {}\n",
            clean(&r.text, MAX_TEXT)
        ));
    }
    t
}

/// Action and Status of one recipient for this kind of notice.
fn action_status(n: &Notice, r: &BouncedRecipient) -> (&'static str, String) {
    match n.kind {
        NoticeKind::Failure => ("failed", dsn_status(&r.dsn)),
        NoticeKind::Delay => ("delayed", status_of_class(&r.dsn, &["4"], "4.0.0")),
        NoticeKind::Success => (
            if r.action == "relayed" {
                "relayed"
            } else {
                "delivered"
            },
            status_of_class(&r.dsn, &["2"], "2.0.0"),
        ),
    }
}

/// The machine-readable report (part 2).
fn delivery_status(n: &Notice) -> String {
    let mut t = String::new();
    if let Some(envid) = n.envid.filter(|e| !e.is_empty()) {
        t.push_str(&format!("Original-Envelope-Id: {}\n", clean(envid, 100)));
    }
    t.push_str(&format!(
        "Reporting-MTA: dns; {}\nX-Rostfix-Queue-ID: {}\nX-Rostfix-Sender: rfc822; {}\nArrival-Date: {}\n",
        clean(n.myhostname, 200),
        clean(n.queue_id, 64),
        clean(n.sender, 500),
        format_rfc5322(n.arrival, 0)
    ));
    for r in n.recipients {
        let addr = clean(&r.address, 500);
        let orig = clean(&r.orig_address, 500);
        t.push_str(&format!("\nFinal-Recipient: rfc822; {addr}\n"));
        if !orig.is_empty() && orig != addr {
            t.push_str(&format!("Original-Recipient: rfc822; {orig}\n"));
        }
        let (action, status) = action_status(n, r);
        t.push_str(&format!("Action: {action}\nStatus: {status}\n"));
        let text = clean(&r.text, MAX_TEXT);
        if !text.is_empty() {
            t.push_str(&format!("Diagnostic-Code: X-Rostfix; {text}\n"));
        }
    }
    t
}

fn encoding(data: &[u8]) -> &'static str {
    if data.is_ascii() {
        "7bit"
    } else {
        "8bit"
    }
}

/// The whole notice: headers and body, LF line endings.
pub fn build(n: &Notice) -> Vec<u8> {
    let text = explanation(n);
    let report = delivery_status(n);
    let headers = n.original_headers.map(|h| {
        if n.full {
            h
        } else {
            header_block(h, MAX_RETURNED_HEADERS)
        }
    });
    let subject = match (n.kind, n.postmaster) {
        (_, true) => "Postmaster Copy: Undelivered Mail",
        (NoticeKind::Failure, false) => "Undelivered Mail Returned to Sender",
        (NoticeKind::Delay, false) => "Delayed Mail (still being retried)",
        (NoticeKind::Success, false) => "Successful Mail Delivery Report",
    };
    let b = boundary(
        n,
        &[
            text.as_bytes(),
            report.as_bytes(),
            headers.unwrap_or_default(),
        ],
    );
    let host = clean(n.myhostname, 200);
    let top_encoding =
        if headers.is_some_and(|h| !h.is_ascii()) || !text.is_ascii() || !report.is_ascii() {
            "8bit"
        } else {
            "7bit"
        };

    let mut out = Vec::new();
    out.extend_from_slice(
        format!(
            "Date: {}\n\
             From: MAILER-DAEMON@{host} (Mail Delivery System)\n\
             Subject: {subject}\n\
             To: {}\n\
             Auto-Submitted: auto-replied\n\
             MIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=delivery-status;\n\
             \tboundary=\"{b}\"\n\
             Content-Transfer-Encoding: {top_encoding}\n\
             Message-Id: <{}.{}@{host}>\n\
             \n\
             This is a MIME-encapsulated message.\n\
             \n",
            format_rfc5322(n.now, 0),
            clean(n.to, 500),
            compact_timestamp(n.now, 0),
            clean(n.new_id, 64),
        )
        .as_bytes(),
    );
    out.extend_from_slice(
        format!(
            "--{b}\n\
             Content-Description: Notification\n\
             Content-Type: text/plain; charset=utf-8\n\
             Content-Transfer-Encoding: {}\n\
             \n\
             {text}\n",
            encoding(text.as_bytes())
        )
        .as_bytes(),
    );
    out.extend_from_slice(
        format!(
            "--{b}\n\
             Content-Description: Delivery report\n\
             Content-Type: message/delivery-status\n\
             \n\
             {report}\n"
        )
        .as_bytes(),
    );
    if let Some(h) = headers {
        let (description, ctype) = match (n.full, n.kind) {
            (true, NoticeKind::Failure) => ("Undelivered Message", "message/rfc822"),
            (true, NoticeKind::Delay) => ("Delayed Message", "message/rfc822"),
            (true, NoticeKind::Success) => ("Message", "message/rfc822"),
            (false, NoticeKind::Failure) => ("Undelivered Message Headers", "text/rfc822-headers"),
            (false, NoticeKind::Delay) => ("Delayed Message Headers", "text/rfc822-headers"),
            (false, NoticeKind::Success) => ("Message Headers", "text/rfc822-headers"),
        };
        out.extend_from_slice(
            format!(
                "--{b}\n\
                 Content-Description: {description}\n\
                 Content-Type: {ctype}\n\
                 Content-Transfer-Encoding: {}\n\
                 \n",
                encoding(h)
            )
            .as_bytes(),
        );
        out.extend_from_slice(h);
        if !h.ends_with(b"\n") && !h.is_empty() {
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out.extend_from_slice(format!("--{b}--\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &[u8] =
        b"Received: from x\n\tby y\nFrom: alice@example.org\nSubject: hello\nMessage-Id: <m1@example.org>\n\nbody line\nmore\n";

    fn rcpts() -> Vec<BouncedRecipient> {
        vec![
            BouncedRecipient {
                address: "bob@example.org".into(),
                orig_address: "bob@example.org".into(),
                dsn: "5.1.1".parse().unwrap(),
                text: "unknown user: \"bob\"".into(),
                relay: "local".into(),
                notify: String::new(),
                action: String::new(),
            },
            BouncedRecipient {
                address: "carol@example.org".into(),
                orig_address: "info@example.org".into(),
                dsn: "4.4.7".parse().unwrap(),
                text: "message delivery timed out: mailbox full".into(),
                relay: "none".into(),
                notify: String::new(),
                action: String::new(),
            },
        ]
    }

    fn notice<'a>(rcpts: &'a [BouncedRecipient], headers: Option<&'a [u8]>) -> Notice<'a> {
        Notice {
            myhostname: "mail.example.org",
            queue_id: "3F2A81C0D4E",
            new_id: "4B1C0000AA",
            sender: "alice@example.org",
            arrival: 1_700_731_000,
            now: 1_700_731_712,
            recipients: rcpts,
            original_headers: headers,
            kind: NoticeKind::Failure,
            to: "alice@example.org",
            postmaster: false,
            envid: None,
            full: false,
        }
    }

    #[test]
    fn structure_parses_as_a_delivery_report() {
        let r = rcpts();
        let msg = build(&notice(&r, Some(ORIGINAL)));
        let parsed = mailparse::parse_mail(&msg).expect("notice parses");
        use mailparse::MailHeaderMap;
        let h = &parsed.headers;
        assert_eq!(
            h.get_first_value("From").as_deref(),
            Some("MAILER-DAEMON@mail.example.org (Mail Delivery System)")
        );
        assert_eq!(
            h.get_first_value("To").as_deref(),
            Some("alice@example.org")
        );
        assert_eq!(
            h.get_first_value("Subject").as_deref(),
            Some("Undelivered Mail Returned to Sender")
        );
        assert_eq!(
            h.get_first_value("Auto-Submitted").as_deref(),
            Some("auto-replied")
        );
        assert_eq!(h.get_first_value("MIME-Version").as_deref(), Some("1.0"));
        assert_eq!(
            h.get_first_value("Date").as_deref(),
            Some("Thu, 23 Nov 2023 09:28:32 +0000")
        );
        assert_eq!(
            h.get_first_value("Message-Id").as_deref(),
            Some("<20231123092832.4B1C0000AA@mail.example.org>")
        );
        assert_eq!(parsed.ctype.mimetype, "multipart/report");
        assert_eq!(
            parsed.ctype.params.get("report-type").map(String::as_str),
            Some("delivery-status")
        );
        assert_eq!(parsed.subparts.len(), 3);

        let text = parsed.subparts[0].get_body().expect("part 1");
        assert_eq!(parsed.subparts[0].ctype.mimetype, "text/plain");
        assert!(text.contains("This is the mail system at host mail.example.org."));
        assert!(text.contains("<bob@example.org>: unknown user: \"bob\""));
        assert!(text.contains(
            "<carol@example.org> (expanded from <info@example.org>): message delivery timed out"
        ));

        assert_eq!(parsed.subparts[1].ctype.mimetype, "message/delivery-status");
        let report =
            String::from_utf8(parsed.subparts[1].get_body_raw().expect("part 2")).expect("utf8");
        assert!(report.starts_with(
            "Reporting-MTA: dns; mail.example.org\nX-Rostfix-Queue-ID: 3F2A81C0D4E\n\
             X-Rostfix-Sender: rfc822; alice@example.org\nArrival-Date: Thu, 23 Nov 2023 09:16:40 +0000\n"
        ));
        assert!(report.contains(
            "\nFinal-Recipient: rfc822; bob@example.org\nAction: failed\nStatus: 5.1.1\n\
             Diagnostic-Code: X-Rostfix; unknown user: \"bob\"\n"
        ));
        assert!(report.contains(
            "\nFinal-Recipient: rfc822; carol@example.org\nOriginal-Recipient: rfc822; info@example.org\n\
             Action: failed\nStatus: 4.4.7\n"
        ));

        assert_eq!(parsed.subparts[2].ctype.mimetype, "text/rfc822-headers");
        let returned = parsed.subparts[2].get_body_raw().expect("part 3");
        let returned = String::from_utf8(returned).expect("utf8");
        assert!(returned.contains("Subject: hello\n"));
        assert!(returned.contains("Received: from x\n\tby y\n"));
        assert!(!returned.contains("body line"), "only headers are returned");
    }

    #[test]
    fn full_return_envid_and_kinds() {
        let r = rcpts();
        let mut n = notice(&r, Some(ORIGINAL));
        n.full = true;
        n.envid = Some("QQ314159");
        let msg = build(&n);
        let parsed = mailparse::parse_mail(&msg).expect("parses");
        assert_eq!(parsed.subparts[2].ctype.mimetype, "message/rfc822");
        let returned =
            String::from_utf8_lossy(&parsed.subparts[2].get_body_raw().unwrap()).into_owned();
        assert!(returned.contains("body line"), "the whole message");
        let report = String::from_utf8(parsed.subparts[1].get_body_raw().unwrap()).unwrap();
        assert!(report
            .starts_with("Original-Envelope-Id: QQ314159\nReporting-MTA: dns; mail.example.org\n"));

        let mut ok = rcpts();
        ok[0].dsn = "2.0.0".parse().unwrap();
        ok[0].action = "relayed".into();
        ok.truncate(1);
        let mut s = notice(&ok, Some(ORIGINAL));
        s.kind = NoticeKind::Success;
        let msg = build(&s);
        let parsed = mailparse::parse_mail(&msg).expect("parses");
        use mailparse::MailHeaderMap;
        assert_eq!(
            parsed.headers.get_first_value("Subject").as_deref(),
            Some("Successful Mail Delivery Report")
        );
        let report = String::from_utf8(parsed.subparts[1].get_body_raw().unwrap()).unwrap();
        assert!(report.contains("Action: relayed\nStatus: 2.0.0\n"));

        let mut d = notice(&r, Some(ORIGINAL));
        d.kind = NoticeKind::Delay;
        let report = build(&d);
        let text = String::from_utf8_lossy(&report);
        assert!(text.contains("Subject: Delayed Mail (still being retried)"));
        assert!(
            text.contains("Action: delayed\nStatus: 4.0.0\n"),
            "a 5.x code is not a delay status"
        );
    }

    #[test]
    fn without_original_there_are_two_parts() {
        let r = rcpts();
        let msg = build(&notice(&r, None));
        let parsed = mailparse::parse_mail(&msg).expect("notice parses");
        assert_eq!(parsed.subparts.len(), 2);
    }

    #[test]
    fn hostile_text_cannot_break_the_structure() {
        let mut r = rcpts();
        r[0].text = "evil\n\n--3F2A81C0D4E.1700731712/mail.example.org--\nX-Injected: yes".into();
        r[0].address = "x@y\nBcc: victim@example.net".into();
        // Headers that contain the natural boundary force a different one.
        let headers = b"Subject: hi\n--3F2A81C0D4E.1700731712/mail.example.org\n\nbody";
        let msg = build(&notice(&r, Some(headers)));
        let parsed = mailparse::parse_mail(&msg).expect("notice parses");
        assert_eq!(parsed.subparts.len(), 3);
        let s = String::from_utf8_lossy(&msg);
        assert!(!s.contains("\nBcc:"));
        assert!(!s.contains("\nX-Injected:"));
        assert!(s.contains("boundary=\"3F2A81C0D4E.1700731712/mail.example.org.1\""));
    }

    #[test]
    fn status_codes_are_validated() {
        assert_eq!(dsn_status("5.1.1"), "5.1.1");
        assert_eq!(dsn_status("4.4.7"), "4.4.7");
        assert_eq!(dsn_status("2.0.0"), "5.0.0");
        assert_eq!(dsn_status("5.1"), "5.0.0");
        assert_eq!(dsn_status("5.1.1\nX: y"), "5.0.0");
        assert_eq!(dsn_status(""), "5.0.0");
    }

    #[test]
    fn header_block_stops_at_blank_line_and_limit() {
        let blank = ORIGINAL
            .windows(2)
            .position(|w| w == b"\n\n")
            .expect("test data has a blank line");
        assert_eq!(header_block(ORIGINAL, 10_000), &ORIGINAL[..=blank]);
        assert_eq!(header_block(b"A: 1\r\n\r\nbody", 100), b"A: 1\r\n");
        assert_eq!(header_block(b"A: 1\nB: 2\n\n", 6), b"A: 1\n");
        assert_eq!(header_block(b"", 100), b"");
        assert_eq!(header_block(b"A: no newline", 100), b"A: no newline");
    }

    #[test]
    fn long_text_is_capped_on_char_boundary() {
        let long = "é".repeat(1000);
        let c = clean(&long, MAX_TEXT);
        assert!(c.len() <= MAX_TEXT);
        assert!(c.chars().all(|ch| ch == 'é'));
    }
}
