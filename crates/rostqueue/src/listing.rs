//! The traditional `mailq` listing, byte for byte as postqueue -p prints it for short
//! queue ids (Postfix's showq_compat): heading, one block per message, a summary.

use rostfix_queue::QueueName;
use rostfix_showq::Listed;
use std::io::{self, Write};

/// showq_compat's headings through its "%-11s %7s %-20s %s" format.
const HEADING: &str = "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------";

/// Postfix's printable(): control characters become `?` so an address cannot drive
/// the terminal.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Writes the listing; `time` formats an arrival time like asctime(3).
pub fn write_listing(
    out: &mut dyn Write,
    messages: &[Listed],
    time: &dyn Fn(i64) -> String,
) -> io::Result<()> {
    if messages.is_empty() {
        return out.write_all(b"Mail queue is empty\n");
    }
    let mut total: u64 = 0;
    for (n, m) in messages.iter().enumerate() {
        if n == 0 {
            writeln!(out, "{HEADING}")?;
        } else {
            writeln!(out)?;
        }
        let mark = match m.queue {
            QueueName::Active => "*",
            QueueName::Hold => "!",
            _ => "",
        };
        writeln!(
            out,
            "{:<11} {:>7} {:>20.20} {}",
            format!("{}{mark}", m.id),
            m.size,
            time(m.arrival),
            printable(&m.sender)
        )?;
        // A "(reason)" line whenever the reason changes from the previous recipient's;
        // "(reason unavailable)" when a reason is followed by none.
        let mut saved = "";
        for r in &m.recipients {
            let why = r.reason.as_deref().unwrap_or("");
            if why != saved {
                saved = why;
                let shown = if why.is_empty() {
                    "reason unavailable".to_string()
                } else {
                    printable(why)
                };
                let pad = 76usize.saturating_sub(shown.len());
                writeln!(out, "{:pad$}({shown})", "")?;
            }
            writeln!(
                out,
                "{:<11} {:>7} {:<20} {}",
                "",
                "",
                "",
                printable(&r.address)
            )?;
        }
        total += m.size;
    }
    let n = messages.len();
    writeln!(
        out,
        "\n-- {} Kbytes in {} Request{}.",
        total / 1024,
        n,
        if n == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_showq::ListedRecipient;

    fn fake_time(_: i64) -> String {
        "Mon Nov 23 09:35:12 2020\n".to_string()
    }

    fn rcpt(a: &str, reason: Option<&str>) -> ListedRecipient {
        ListedRecipient {
            address: a.into(),
            orig_address: a.into(),
            reason: reason.map(String::from),
        }
    }

    fn render(messages: &[Listed]) -> String {
        let mut out = Vec::new();
        write_listing(&mut out, messages, &fake_time).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn empty_queue() {
        assert_eq!(render(&[]), "Mail queue is empty\n");
    }

    #[test]
    fn messages_in_postfix_format() {
        let messages = vec![
            Listed {
                queue: QueueName::Active,
                id: "3F2A81C0D4E".parse().unwrap(),
                arrival: 0,
                size: 1234,
                sender: "alice@example.org".into(),
                forced_expire: false,
                recipients: vec![rcpt("bob@example.org", None)],
            },
            Listed {
                queue: QueueName::Deferred,
                id: "1E2401C0D4F".parse().unwrap(),
                arrival: 0,
                size: 2048,
                sender: "MAILER-DAEMON".into(),
                forced_expire: false,
                recipients: vec![
                    rcpt("a@x", Some("connect to x[1.2.3.4]:25: Connection refused")),
                    rcpt("b@x", Some("connect to x[1.2.3.4]:25: Connection refused")),
                    rcpt("c@y", None),
                ],
            },
            Listed {
                queue: QueueName::Hold,
                id: "ABCDEF".parse().unwrap(),
                arrival: 0,
                size: 10,
                sender: "s@x".into(),
                forced_expire: false,
                recipients: vec![],
            },
        ];
        // Widths from showq_compat: "%-11s %7ld %20.20s %s" for the message line,
        // 11+1+7+1+20+1 = 41 blanks before a recipient, reasons right-aligned to 76.
        let rcpt_indent = " ".repeat(41);
        let reason = "connect to x[1.2.3.4]:25: Connection refused";
        let expected = [
            "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------".to_string(),
            "3F2A81C0D4E*    1234 Mon Nov 23 09:35:12  alice@example.org".to_string(),
            format!("{rcpt_indent}bob@example.org"),
            String::new(),
            "1E2401C0D4F    2048 Mon Nov 23 09:35:12  MAILER-DAEMON".to_string(),
            format!("{}({reason})", " ".repeat(76 - reason.len())),
            format!("{rcpt_indent}a@x"),
            format!("{rcpt_indent}b@x"),
            format!("{}(reason unavailable)", " ".repeat(76 - 18)),
            format!("{rcpt_indent}c@y"),
            String::new(),
            "ABCDEF!          10 Mon Nov 23 09:35:12  s@x".to_string(),
            String::new(),
            "-- 3 Kbytes in 3 Requests.".to_string(),
        ]
        .map(|l| l + "\n")
        .concat();
        assert_eq!(render(&messages), expected);
    }

    #[test]
    fn one_request_and_long_reason_and_control_chars() {
        let long = "x".repeat(100);
        let m = Listed {
            queue: QueueName::Incoming,
            id: "ABCDEF1".parse().unwrap(),
            arrival: 0,
            size: 999,
            sender: "s\u{1b}[31m@x".into(),
            forced_expire: false,
            recipients: vec![rcpt("r@x", Some(&long))],
        };
        let got = render(&[m]);
        assert!(got.contains(&format!("\n({long})\n")), "{got}");
        assert!(got.contains("s?[31m@x"), "{got}");
        assert!(got.ends_with("\n-- 0 Kbytes in 1 Request.\n"), "{got}");
    }
}
