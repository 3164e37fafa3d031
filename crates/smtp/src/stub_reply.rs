//! The foundation smtp agent's answer to a delivery request: every recipient deferred
//! with `4.3.0`, and the Postfix-shaped log line for each. Pure, so it is unit-tested
//! without sockets.

use rostfix_proto::{DeliveryReply, DeliveryRequest, DeliveryStatus, RecipientResult};

/// Enhanced status code of every answer: a temporary "other or undefined system
/// status", so qmgr keeps the mail queued until the real client exists.
pub const STUB_DSN: &str = "4.3.0";
/// Reply text qmgr stores as the defer reason (shown by rostqueue).
pub const STUB_REPLY_TEXT: &str =
    "delivery to remote destinations is not implemented yet (issue 4)";
/// Text in the `status=deferred (...)` log column.
pub const STUB_LOG_TEXT: &str = "delivery to remote destinations is not implemented yet";
/// Relay column: no remote host was contacted.
pub const STUB_RELAY: &str = "none";

/// Builds the reply (one result per requested recipient, in request order) and the log
/// line of each recipient. `now` is seconds since the epoch, for `delay=`.
pub fn stub_reply(req: &DeliveryRequest, now: f64) -> (DeliveryReply, Vec<String>) {
    let delay = format_delay(now - req.arrival as f64);
    let mut results = Vec::with_capacity(req.recipients.len());
    let mut lines = Vec::with_capacity(req.recipients.len());
    for rcpt in &req.recipients {
        results.push(RecipientResult {
            offset: rcpt.offset,
            status: DeliveryStatus::Deferred,
            dsn: STUB_DSN.to_string(),
            text: STUB_REPLY_TEXT.to_string(),
            relay: STUB_RELAY.to_string(),
        });
        let orcpt = if rcpt.orig_address.is_empty() || rcpt.orig_address == rcpt.address {
            String::new()
        } else {
            format!(", orig_to=<{}>", printable(&rcpt.orig_address))
        };
        lines.push(format!(
            "{}: to=<{}>{}, relay={}, delay={}, delays=0/0/0/0, dsn={}, status=deferred ({})",
            printable(&req.queue_id),
            printable(&rcpt.address),
            orcpt,
            STUB_RELAY,
            delay,
            STUB_DSN,
            STUB_LOG_TEXT
        ));
    }
    (DeliveryReply { results }, lines)
}

/// Postfix's delay column: two decimals below 1 s, one below 10 s, whole seconds above.
/// Negative values (clock steps) show as 0.
pub fn format_delay(secs: f64) -> String {
    let secs = if secs.is_finite() && secs > 0.0 {
        secs
    } else {
        0.0
    };
    if secs < 1.0 {
        format!("{secs:.2}")
    } else if secs < 10.0 {
        format!("{secs:.1}")
    } else {
        format!("{}", secs.round() as i64)
    }
}

/// Masks control characters so a request field can never split or forge a log line.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::DeliveryRecipient;

    fn request() -> DeliveryRequest {
        DeliveryRequest {
            queue_name: "active".into(),
            queue_id: "3F2A81C0D4E".into(),
            sender: "alice@example.org".into(),
            nexthop: "example.net".into(),
            arrival: 1_000,
            recipients: vec![
                DeliveryRecipient {
                    offset: 40,
                    address: "bob@example.net".into(),
                    orig_address: "bob@example.net".into(),
                },
                DeliveryRecipient {
                    offset: 90,
                    address: "carol@example.net".into(),
                    orig_address: "c@example.net".into(),
                },
            ],
        }
    }

    #[test]
    fn every_recipient_is_deferred_in_order() {
        let (reply, _) = stub_reply(&request(), 1_012.0);
        assert_eq!(reply.results.len(), 2);
        assert_eq!(reply.results[0].offset, 40);
        assert_eq!(reply.results[1].offset, 90);
        for r in &reply.results {
            assert_eq!(r.status, DeliveryStatus::Deferred);
            assert_eq!(r.dsn, "4.3.0");
            assert_eq!(r.relay, "none");
            assert_eq!(
                r.text,
                "delivery to remote destinations is not implemented yet (issue 4)"
            );
        }
    }

    #[test]
    fn log_lines_are_postfix_shaped() {
        let (_, lines) = stub_reply(&request(), 1_012.0);
        assert_eq!(
            lines[0],
            "3F2A81C0D4E: to=<bob@example.net>, relay=none, delay=12, delays=0/0/0/0, dsn=4.3.0, \
             status=deferred (delivery to remote destinations is not implemented yet)"
        );
        assert!(lines[1].starts_with(
            "3F2A81C0D4E: to=<carol@example.net>, orig_to=<c@example.net>, relay=none"
        ));
    }

    #[test]
    fn empty_request_gives_empty_reply() {
        let mut req = request();
        req.recipients.clear();
        let (reply, lines) = stub_reply(&req, 0.0);
        assert!(reply.results.is_empty());
        assert!(lines.is_empty());
    }

    #[test]
    fn control_characters_cannot_forge_log_lines() {
        let mut req = request();
        req.recipients[0].address = "x@y\nFAKE: status=sent".into();
        let (_, lines) = stub_reply(&req, 1_000.0);
        assert!(!lines[0].contains('\n'));
    }

    #[test]
    fn delay_format() {
        assert_eq!(format_delay(0.123), "0.12");
        assert_eq!(format_delay(1.26), "1.3");
        assert_eq!(format_delay(11.6), "12");
        assert_eq!(format_delay(-5.0), "0.00");
        assert_eq!(format_delay(f64::NAN), "0.00");
    }
}
