//! The Postfix-shaped delivery log line of one recipient:
//! `ID: to=<r>, orig_to=<o>, relay=host[ip]:port, delay=1.2, delays=a/b/c/d, dsn=2.0.0,
//! status=sent (250 2.0.0 Ok: queued as X)`.

use crate::reply::printable;
use rostfix_proto::DeliveryStatus;

/// The time columns: total delay and its four parts, in seconds: a = before qmgr took
/// the message, b = in qmgr until this agent got it (from the request's `activated`),
/// c = connection set-up (DNS, connect,
/// greeting, EHLO, TLS, AUTH; RSET for a reused connection), d = transmission.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delays {
    pub total: f64,
    pub parts: [f64; 4],
}

/// Formats one line (without the syslog prefix the maillog crate adds).
#[allow(clippy::too_many_arguments)]
pub fn line(
    queue_id: &str,
    to: &str,
    orig_to: &str,
    relay: &str,
    conn_use: u32,
    delays: &Delays,
    dsn: &str,
    status: DeliveryStatus,
    text: &str,
) -> String {
    let orig = if orig_to.is_empty() || orig_to == to {
        String::new()
    } else {
        format!(", orig_to=<{}>", printable(orig_to))
    };
    let status = match status {
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Deferred => "deferred",
        DeliveryStatus::Bounced => "bounced",
    };
    let parts: Vec<String> = delays.parts.iter().map(|p| format_delay(*p)).collect();
    // Postfix shows conn_use only for a reused connection.
    let reuse = if conn_use > 1 {
        format!(", conn_use={conn_use}")
    } else {
        String::new()
    };
    format!(
        "{}: to=<{}>{orig}, relay={}{reuse}, delay={}, delays={}, dsn={}, status={status} ({})",
        printable(queue_id),
        printable(to),
        printable(relay),
        format_delay(delays.total),
        parts.join("/"),
        printable(dsn),
        printable(text)
    )
}

/// Postfix's delay column: two decimals below 1 s (0 shown as `0`), one below 10 s,
/// whole seconds above. Negative values (clock steps) show as 0.
pub fn format_delay(secs: f64) -> String {
    let secs = if secs.is_finite() && secs > 0.0 {
        secs
    } else {
        0.0
    };
    if secs < 0.005 {
        "0".to_string()
    } else if secs < 1.0 {
        format!("{secs:.2}")
    } else if secs < 10.0 {
        format!("{secs:.1}")
    } else {
        format!("{}", secs.round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let d = Delays {
            total: 1.234,
            parts: [0.5, 0.0, 0.12, 12.4],
        };
        assert_eq!(
            line("ABC", "bob@b.test", "b@b.test", "b.test[127.0.0.2]:25", 1, &d, "2.0.0", DeliveryStatus::Sent, "250 2.0.0 Ok"),
            "ABC: to=<bob@b.test>, orig_to=<b@b.test>, relay=b.test[127.0.0.2]:25, delay=1.2, delays=0.50/0/0.12/12, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
        );
        assert!(line(
            "A",
            "b@x",
            "",
            "x[1.2.3.4]:25",
            2,
            &d,
            "2.0.0",
            DeliveryStatus::Sent,
            "ok"
        )
        .contains("relay=x[1.2.3.4]:25, conn_use=2, delay=1.2,"));
        assert!(line(
            "A",
            "x\ny",
            "",
            "none",
            0,
            &d,
            "4.0.0",
            DeliveryStatus::Deferred,
            "t"
        )
        .contains("to=<x?y>, relay=none"));
    }
}
