//! The per-recipient log line in Postfix's shape:
//! `ID: to=<ADDR>, orig_to=<ORIG>, relay=local, delay=0.12, delays=0.1/0/0/0.02,
//! dsn=2.0.0, status=sent (delivered to maildir)`.

use std::time::Duration;

/// Formats a delay as Postfix's format_tv does: two significant digits but at most two
/// decimals, never fewer integer digits, trailing zeros dropped (`0.04`, `1.5`, `13`).
pub fn format_delay(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let decimals = if secs >= 10.0 {
        0
    } else if secs >= 1.0 {
        1
    } else {
        2
    };
    let s = format!("{secs:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The parts of one delivery log line.
#[derive(Debug, Clone)]
pub struct DeliveryLog<'a> {
    pub queue_id: &'a str,
    pub to: &'a str,
    pub orig_to: &'a str,
    pub relay: &'a str,
    /// Arrival to now.
    pub total: Duration,
    /// Before qmgr took the message (a), in qmgr until this agent got the request (b),
    /// and the delivery itself (d); local has no connection set-up (c = 0).
    pub before: Duration,
    pub in_qmgr: Duration,
    pub delivery: Duration,
    pub dsn: &'a str,
    /// `sent`, `deferred`, `bounced`.
    pub status: &'a str,
    pub text: &'a str,
}

impl DeliveryLog<'_> {
    /// The message part of the line (maillog adds time, host and program).
    pub fn line(&self) -> String {
        let orig = if !self.orig_to.is_empty() && !self.orig_to.eq_ignore_ascii_case(self.to) {
            format!(", orig_to=<{}>", self.orig_to)
        } else {
            String::new()
        };
        format!(
            "{}: to=<{}>{}, relay={}, delay={}, delays={}/{}/0/{}, dsn={}, status={} ({})",
            self.queue_id,
            self.to,
            orig,
            self.relay,
            format_delay(self.total),
            format_delay(self.before),
            format_delay(self.in_qmgr),
            format_delay(self.delivery),
            self.dsn,
            self.status,
            self.text
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_like_postfix() {
        assert_eq!(format_delay(Duration::from_millis(43)), "0.04");
        assert_eq!(format_delay(Duration::from_millis(500)), "0.5");
        assert_eq!(format_delay(Duration::from_millis(1530)), "1.5");
        assert_eq!(format_delay(Duration::from_millis(13_400)), "13");
        assert_eq!(format_delay(Duration::from_secs(336)), "336");
        assert_eq!(format_delay(Duration::ZERO), "0");
        assert_eq!(format_delay(Duration::from_micros(100)), "0");
    }

    #[test]
    fn line_shape() {
        let mut l = DeliveryLog {
            queue_id: "3F2A81C0D4E",
            to: "alice@example.org",
            orig_to: "alice@example.org",
            relay: "local",
            total: Duration::from_millis(120),
            before: Duration::from_millis(100),
            in_qmgr: Duration::ZERO,
            delivery: Duration::from_millis(20),
            dsn: "2.0.0",
            status: "sent",
            text: "delivered to maildir",
        };
        assert_eq!(
            l.line(),
            "3F2A81C0D4E: to=<alice@example.org>, relay=local, delay=0.12, delays=0.1/0/0/0.02, dsn=2.0.0, status=sent (delivered to maildir)"
        );
        l.orig_to = "root@example.org";
        assert!(l
            .line()
            .contains("to=<alice@example.org>, orig_to=<root@example.org>, relay=local"));
    }
}
