//! The JSON delivery log (`rostfix_delivery_log`): one JSON object per line, one line
//! per delivery attempt per recipient, for the sending application to consume
//! (docs/bulk-sending.md, "Delivery log", lists the fields). qmgr writes it, because
//! every outcome of every agent (and of its built-in transports) passes through qmgr,
//! which also knows the message's campaign id; one writer means one open file.
//!
//! The file is opened O_APPEND before any chroot and each record goes out in one
//! write(2) (sink.rs), so a reader tailing it never sees half a line.

use crate::outcome::Class;
use crate::LogError;
use std::fs::File;
use std::path::Path;

/// One attempt for one recipient.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    /// Seconds since the epoch when the outcome was known.
    pub time: i64,
    pub queue_id: &'a str,
    /// The queue file's `campaign_id` attribute; the field is left out when absent.
    pub campaign_id: Option<&'a str>,
    pub sender: &'a str,
    pub recipient: &'a str,
    pub orig_recipient: &'a str,
    /// sent, deferred, bounced, expired.
    pub status: &'a str,
    pub dsn: &'a str,
    pub class: Class,
    /// `mx.example.org[192.0.2.1]:25`, `local`, `none`.
    pub relay: &'a str,
    /// The full reason: the remote server's reply as logged, or the local text.
    pub reply: &'a str,
    /// `TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384 (256/256 bits)` when the
    /// delivery used TLS.
    pub tls: Option<&'a str>,
    /// Arrival to outcome, seconds.
    pub delay: f64,
    /// Postfix's delays=a/b/c/d, when the agent measured them.
    pub delays: Option<[f64; 4]>,
    /// 1 for the first attempt of this recipient, when known.
    pub attempt: Option<u32>,
}

/// Rounds to milliseconds, so the JSON does not carry float noise.
fn millis(secs: f64) -> serde_json::Value {
    let v = if secs.is_finite() && secs > 0.0 {
        (secs * 1000.0).round() / 1000.0
    } else {
        0.0
    };
    serde_json::Number::from_f64(v).map_or(serde_json::Value::from(0), serde_json::Value::Number)
}

impl AttemptRecord<'_> {
    /// The record as one JSON object without a newline; control characters in any
    /// field are escaped by JSON, so no field can start another line.
    pub fn to_json(&self) -> String {
        let mut obj = serde_json::Map::new();
        obj.insert("time".into(), crate::json::rfc3339(self.time).into());
        obj.insert("unix_time".into(), self.time.into());
        obj.insert("queue_id".into(), self.queue_id.into());
        if let Some(c) = self.campaign_id {
            obj.insert("campaign_id".into(), c.into());
        }
        obj.insert("sender".into(), self.sender.into());
        obj.insert("recipient".into(), self.recipient.into());
        obj.insert("orig_recipient".into(), self.orig_recipient.into());
        obj.insert("status".into(), self.status.into());
        obj.insert("dsn".into(), self.dsn.into());
        obj.insert("class".into(), self.class.as_str().into());
        obj.insert("relay".into(), self.relay.into());
        obj.insert("reply".into(), self.reply.into());
        if let Some(t) = self.tls {
            obj.insert("tls".into(), t.into());
        }
        obj.insert("delay".into(), millis(self.delay));
        if let Some(d) = self.delays {
            let mut m = serde_json::Map::new();
            for (name, v) in ["a", "b", "c", "d"].into_iter().zip(d) {
                m.insert(name.into(), millis(v));
            }
            obj.insert("delays".into(), m.into());
        }
        if let Some(n) = self.attempt {
            obj.insert("attempt".into(), n.into());
        }
        serde_json::Value::Object(obj).to_string()
    }
}

/// The opened delivery log, or nothing when `rostfix_delivery_log` is empty.
#[derive(Debug, Default)]
pub struct AttemptLog {
    file: Option<File>,
}

impl AttemptLog {
    /// Opens `path` for appending (created 0644); an empty path turns the log off.
    pub fn open(path: &str) -> Result<AttemptLog, LogError> {
        if path.is_empty() {
            return Ok(AttemptLog::default());
        }
        crate::sink::open_file(Path::new(path)).map(|f| AttemptLog { file: Some(f) })
    }

    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Appends one record in one write; failures are dropped as for log lines.
    pub fn append(&self, record: &AttemptRecord<'_>) {
        if let Some(file) = &self.file {
            crate::sink::write_line(&mut &*file, record.to_json());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AttemptRecord<'static> {
        AttemptRecord {
            time: 1_733_390_000,
            queue_id: "3F2A81C0D4E",
            campaign_id: Some("spring-sale"),
            sender: "news@example.org",
            recipient: "bob@example.net",
            orig_recipient: "bob@example.net",
            status: "bounced",
            dsn: "5.1.1",
            class: Class::BadMailbox,
            relay: "mx.example.net[192.0.2.3]:25",
            reply: "host mx.example.net[192.0.2.3] said: 550 5.1.1 <bob@example.net>: User unknown (in reply to RCPT TO command)",
            tls: Some("TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384 (256/256 bits)"),
            delay: 1.23456,
            delays: Some([0.1, 0.0, 0.5, 0.63456]),
            attempt: Some(1),
        }
    }

    #[test]
    fn every_field_encoded() {
        let v: serde_json::Value = serde_json::from_str(&record().to_json()).expect("json");
        assert_eq!(v["queue_id"], "3F2A81C0D4E");
        assert_eq!(v["campaign_id"], "spring-sale");
        assert_eq!(v["class"], "bad-mailbox");
        assert_eq!(v["dsn"], "5.1.1");
        assert_eq!(v["status"], "bounced");
        assert_eq!(v["unix_time"], 1_733_390_000);
        assert_eq!(v["delay"], 1.235);
        assert_eq!(v["delays"]["d"], 0.635);
        assert_eq!(v["attempt"], 1);
        assert!(v["tls"].as_str().is_some_and(|t| t.starts_with("TLSv1.3")));
        assert!(v["reply"]
            .as_str()
            .is_some_and(|r| r.contains("User unknown")));
    }

    #[test]
    fn absent_fields_are_left_out() {
        let mut r = record();
        r.campaign_id = None;
        r.tls = None;
        r.delays = None;
        r.attempt = None;
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("json");
        for f in ["campaign_id", "tls", "delays", "attempt"] {
            assert!(v.get(f).is_none(), "{f}");
        }
    }

    #[test]
    fn hostile_text_is_escaped_on_one_line() {
        let mut r = record();
        r.reply = "550 \"quoted\" \\ back\r\n{\"forged\":1}\u{0}\u{1b}é";
        r.recipient = "a\nb@x";
        let line = r.to_json();
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\0'));
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["reply"], r.reply);
        assert_eq!(v["recipient"], "a\nb@x");
        assert!(v.get("forged").is_none());
    }

    #[test]
    fn appended_records_are_whole_lines() {
        let dir = std::env::temp_dir().join(format!("attempt-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("delivery.json");
        let log = AttemptLog::open(path.to_str().expect("utf8")).expect("open");
        assert!(log.enabled());
        log.append(&record());
        log.append(&record());
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2);
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l).expect("each line parses");
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(!AttemptLog::open("").expect("off").enabled());
    }
}
