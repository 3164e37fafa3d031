//! Turns what sendmail read into what it submits: the envelope sender, the recipient
//! list (command line plus, with `-t`, the headers; duplicates dropped like Postfix's
//! cleanup does) and the content with Bcc: removed (`-t`) and From:, Date: and
//! Message-Id: added when missing. Pure: the clock, pid and host names come in.

use crate::addr_list::parse_address_list;
use crate::headers::{from_value, Message};
use rostfix_maillog::date::{broken_down, format_rfc5322};

/// Everything about the submission that does not come from the message itself.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Envelope sender, "" for the null sender.
    pub sender: &'a str,
    pub full_name: Option<&'a str>,
    pub extract: bool,
    /// Command-line recipient arguments.
    pub cli_recipients: &'a [String],
    pub myhostname: &'a str,
    /// Appended to a sender without a domain in the From: header we add.
    pub myorigin: &'a str,
    pub now_unix: i64,
    pub now_nanos: u32,
    pub utc_offset: i32,
    pub pid: u32,
}

/// The message ready for rostdrop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub recipients: Vec<String>,
    pub content: Vec<u8>,
}

/// The envelope sender from `-f`: `<addr>` becomes `addr`, `<>` the null sender.
pub fn clean_sender(raw: &str) -> String {
    let t = raw.trim();
    match t.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
        Some(inner) => inner.trim().to_string(),
        None => t.to_string(),
    }
}

/// Builds the submission; `None` when there is no recipient at all.
pub fn compose(content: &[u8], ctx: &Context<'_>) -> Option<Submission> {
    let mut msg = Message::parse(content);
    let mut recipients: Vec<String> = ctx
        .cli_recipients
        .iter()
        .flat_map(|a| parse_address_list(a))
        .collect();
    if ctx.extract {
        recipients.extend(msg.recipients());
        msg.remove_bcc();
    }
    let mut seen = std::collections::HashSet::new();
    recipients.retain(|r| seen.insert(r.clone()));
    if recipients.is_empty() {
        return None;
    }

    let from_addr = if ctx.sender.is_empty() || ctx.sender.contains('@') {
        ctx.sender.to_string()
    } else {
        format!("{}@{}", ctx.sender, ctx.myorigin)
    };
    msg.add_if_missing("From", &from_value(&from_addr, ctx.full_name));
    msg.add_if_missing("Date", &format_rfc5322(ctx.now_unix, ctx.utc_offset));
    let (y, mo, d, h, mi, s, _) = broken_down(ctx.now_unix, 0);
    let message_id = format!(
        "<{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}.{}.{:09}@{}>",
        ctx.pid, ctx.now_nanos, ctx.myhostname
    );
    msg.add_if_missing("Message-Id", &message_id);
    Some(Submission {
        recipients,
        content: msg.to_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(extract: bool, cli: &'a [String]) -> Context<'a> {
        Context {
            sender: "joe",
            full_name: Some("Joe User"),
            extract,
            cli_recipients: cli,
            myhostname: "mail.example.org",
            myorigin: "example.org",
            now_unix: 1_709_210_096,
            now_nanos: 42,
            utc_offset: 0,
            pid: 777,
        }
    }

    #[test]
    fn headers_added_when_missing() {
        let cli = vec!["a@x".to_string()];
        let s = compose(b"Subject: hi\n\nbody\n", &ctx(false, &cli)).unwrap();
        assert_eq!(s.recipients, vec!["a@x"]);
        assert_eq!(
            String::from_utf8(s.content).unwrap(),
            "Subject: hi\nFrom: Joe User <joe@example.org>\nDate: Thu, 29 Feb 2024 12:34:56 +0000\n\
             Message-Id: <20240229123456.777.000000042@mail.example.org>\n\nbody\n"
        );
    }

    #[test]
    fn existing_headers_kept() {
        let cli = vec!["a@x".to_string()];
        let input =
            b"From: other@y\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <m@y>\n\nb\n";
        let s = compose(input, &ctx(false, &cli)).unwrap();
        assert_eq!(s.content, input);
    }

    #[test]
    fn extract_adds_header_recipients_and_drops_bcc() {
        let cli = vec!["cli@x, a@x".to_string()];
        let input =
            b"To: a@x, \"B, b\" <b@y>\nBcc: c@z\nFrom: f@x\nDate: d\nMessage-Id: <i@x>\n\nbody\n";
        let s = compose(input, &ctx(true, &cli)).unwrap();
        assert_eq!(s.recipients, vec!["cli@x", "a@x", "b@y", "c@z"]);
        assert_eq!(
            s.content,
            b"To: a@x, \"B, b\" <b@y>\nFrom: f@x\nDate: d\nMessage-Id: <i@x>\n\nbody\n"
        );
    }

    #[test]
    fn bcc_kept_without_t() {
        let cli = vec!["a@x".to_string()];
        let input = b"Bcc: c@z\nFrom: f@x\nDate: d\nMessage-Id: <i@x>\n\nbody\n";
        let s = compose(input, &ctx(false, &cli)).unwrap();
        assert_eq!(s.recipients, vec!["a@x"]);
        assert_eq!(s.content, input);
    }

    #[test]
    fn no_recipients() {
        assert!(compose(b"Subject: x\n\n", &ctx(true, &[])).is_none());
        assert!(compose(b"To: undisclosed-recipients:;\n\n", &ctx(true, &[])).is_none());
    }

    #[test]
    fn sender_cleaning() {
        assert_eq!(clean_sender("<>"), "");
        assert_eq!(clean_sender(" <a@b> "), "a@b");
        assert_eq!(clean_sender("a@b"), "a@b");
    }
}
