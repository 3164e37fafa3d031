//! JSON log lines (`rostfix_maillog_format = json`): one object per event with the
//! fields of the text line, for log pipelines that would otherwise parse Postfix's
//! shape with regular expressions:
//!
//! `{"time":"2026-12-04T13:43:07+01:00","host":"mx","program":"rostfix/smtpd",
//! "pid":123,"severity":"info","queue_id":"B795398C2F1","message":"client=..."}`
//!
//! `queue_id` is present when the message starts with a queue ID and `: ` (as Postfix
//! lines do); `message` is then the rest, else the whole text. Severity is Postfix's
//! word (fatal, error, warning, info, debug) instead of the text prefix. The message is
//! cut at the same bound as text lines; CR, LF and NUL are escaped by JSON itself, so a
//! client's text cannot start another line.

use crate::date::{broken_down, local_offset};
use crate::line::{LineSpec, Severity, MAX_MSG};

/// The severity word for the `severity` field.
fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Fatal => "fatal",
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
        Severity::Debug => "debug",
    }
}

/// RFC 3339 local time with its offset (`2026-12-04T13:43:07+01:00`).
pub(crate) fn rfc3339(unix: i64) -> String {
    let offset = local_offset(unix);
    let (y, mo, d, h, mi, s, _) = broken_down(unix, offset);
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.unsigned_abs() / 60;
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{sign}{:02}:{:02}",
        off / 60,
        off % 60
    )
}

/// Splits `ID: rest` when ID looks like a queue ID (upper-case hex, 6 to 32 long, as
/// rostfix_proto::is_valid_queue_id; this crate sits below rostfix-proto).
fn split_queue_id(msg: &str) -> (Option<&str>, &str) {
    if let Some((id, rest)) = msg.split_once(": ") {
        let hex = id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
        if (6..=32).contains(&id.len()) && hex {
            return (Some(id), rest);
        }
    }
    (None, msg)
}

fn cut(msg: &str) -> &str {
    if msg.len() <= MAX_MSG {
        return msg;
    }
    let mut end = MAX_MSG;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    &msg[..end]
}

impl LineSpec {
    /// One JSON object (no newline) for a record.
    pub(crate) fn json_line(&self, unix: i64, pid: u32, severity: Severity, msg: &str) -> String {
        let (queue_id, text) = split_queue_id(msg);
        let mut obj = serde_json::Map::new();
        obj.insert("time".into(), rfc3339(unix).into());
        obj.insert("host".into(), self.hostname.clone().into());
        obj.insert(
            "program".into(),
            format!("{}/{}", self.syslog_name, self.service).into(),
        );
        obj.insert("pid".into(), pid.into());
        obj.insert("severity".into(), severity_word(severity).into());
        if let Some(id) = queue_id {
            obj.insert("queue_id".into(), id.into());
        }
        let mut message = cut(text).to_string();
        if text.len() > message.len() {
            message.push_str("...[truncated]");
        }
        obj.insert("message".into(), message.into());
        serde_json::Value::Object(obj).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LineSpec {
        LineSpec {
            hostname: "mx".into(),
            syslog_name: "rostfix".into(),
            service: "smtpd".into(),
        }
    }

    fn parse(line: &str) -> serde_json::Value {
        serde_json::from_str(line).expect("valid JSON")
    }

    #[test]
    fn queue_id_is_its_own_field() {
        let v = parse(&spec().json_line(0, 7, Severity::Info, "4F2A1B3C9D0: client=a[1.2.3.4]"));
        assert_eq!(v["queue_id"], "4F2A1B3C9D0");
        assert_eq!(v["message"], "client=a[1.2.3.4]");
        assert_eq!(v["program"], "rostfix/smtpd");
        assert_eq!(v["pid"], 7);
        assert_eq!(v["severity"], "info");
        assert_eq!(v["host"], "mx");
    }

    #[test]
    fn no_queue_id_when_the_prefix_is_not_one() {
        let v = parse(&spec().json_line(0, 1, Severity::Warning, "NOQUEUE: reject: RCPT"));
        assert!(v.get("queue_id").is_none());
        assert_eq!(v["message"], "NOQUEUE: reject: RCPT");
        assert_eq!(v["severity"], "warning");
        let v = parse(&spec().json_line(0, 1, Severity::Info, "connect from x[1.2.3.4]"));
        assert!(v.get("queue_id").is_none());
    }

    #[test]
    fn newlines_from_a_client_stay_inside_the_object() {
        let line = spec().json_line(0, 1, Severity::Info, "helo=<a\r\nDec 1 forged: x>");
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert_eq!(parse(&line)["message"], "helo=<a\r\nDec 1 forged: x>");
    }

    #[test]
    fn long_messages_are_cut_and_marked() {
        let long = "é".repeat(MAX_MSG);
        let v = parse(&spec().json_line(0, 1, Severity::Info, &long));
        let m = v["message"].as_str().expect("string");
        assert!(m.ends_with("...[truncated]"));
        assert!(m.len() <= MAX_MSG + "...[truncated]".len());
    }

    #[test]
    fn time_is_rfc3339_with_offset() {
        crate::stamp::load_zone();
        let t = rfc3339(1_732_354_512);
        assert_eq!(t.len(), 25, "{t}");
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], "T");
        assert!(matches!(&t[19..20], "+" | "-"), "{t}");
    }
}
