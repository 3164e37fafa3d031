//! postqueue -j: one JSON object per message per line, with postqueue's field names
//! (queue_name, queue_id, arrival_time, message_size, forced_expire, sender,
//! recipients with address and, when known, delay_reason) and nothing else, so
//! scripts written for postqueue -j read it unchanged.

use rostfix_showq::Listed;
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct JsonMessage<'a> {
    queue_name: &'a str,
    queue_id: &'a str,
    arrival_time: i64,
    message_size: u64,
    forced_expire: bool,
    sender: &'a str,
    recipients: Vec<JsonRecipient<'a>>,
}

#[derive(Serialize)]
struct JsonRecipient<'a> {
    address: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_reason: Option<&'a str>,
}

/// Writes one line per message.
pub fn write_json(out: &mut dyn Write, messages: &[Listed]) -> io::Result<()> {
    for m in messages {
        let msg = JsonMessage {
            queue_name: m.queue.as_str(),
            queue_id: &m.id,
            arrival_time: m.arrival,
            message_size: m.size,
            forced_expire: m.forced_expire,
            sender: &m.sender,
            recipients: m
                .recipients
                .iter()
                .map(|r| JsonRecipient {
                    address: &r.address,
                    delay_reason: r.reason.as_deref(),
                })
                .collect(),
        };
        let line = serde_json::to_string(&msg).map_err(io::Error::other)?;
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_queue::QueueName;
    use rostfix_showq::ListedRecipient;

    #[test]
    fn fields_and_optional_fields() {
        let m = Listed {
            queue: QueueName::Deferred,
            id: rostfix_queue::QueueId::new("ABCDEF1").unwrap(),
            arrival: 1_606_123_512,
            size: 42,
            sender: "a\"b@x".into(),
            forced_expire: false,
            recipients: vec![
                ListedRecipient {
                    address: "r@x".into(),
                    orig_address: "r@x".into(),
                    reason: None,
                },
                ListedRecipient {
                    address: "s@x".into(),
                    orig_address: "S@X".into(),
                    reason: Some("later".into()),
                },
            ],
        };
        let mut out = Vec::new();
        write_json(&mut out, &[m.clone(), m]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"{"queue_name":"deferred","queue_id":"ABCDEF1","arrival_time":1606123512,"message_size":42,"forced_expire":false,"sender":"a\"b@x","recipients":[{"address":"r@x"},{"address":"s@x","delay_reason":"later"}]}"#
        );
    }
}
