//! The Postfix-shaped lines qmgr logs itself, built as strings so their shape is tested:
//! `ID: from=<..>, size=N, nrcpt=N (queue active)`, and the `to=<..>` lines for
//! recipients no delivery agent logged (transport unavailable, expired).

/// Postfix's delay column: two decimals below 1 s, one below 10 s, whole seconds above.
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

/// Masks control characters so queue-file or agent text can never split a log line.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `ID: from=<SENDER>, size=N, nrcpt=N (queue active)`.
pub fn from_line(id: &str, sender: &str, size: u64, nrcpt: usize) -> String {
    format!(
        "{id}: from=<{}>, size={size}, nrcpt={nrcpt} (queue active)",
        printable(sender)
    )
}

/// `ID: to=<ADDR>, relay=none, delay=D, delays=0/0/0/0, dsn=DSN, status=STATUS`.
/// `status` is the whole status column, e.g. `deferred (mail transport unavailable)`.
pub fn to_line(id: &str, address: &str, orig: &str, delay: f64, dsn: &str, status: &str) -> String {
    let orig = if orig.is_empty() || orig == address {
        String::new()
    } else {
        format!(", orig_to=<{}>", printable(orig))
    };
    format!(
        "{id}: to=<{}>{orig}, relay=none, delay={}, delays=0/0/0/0, dsn={}, status={}",
        printable(address),
        format_delay(delay),
        printable(dsn),
        printable(status)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_line_shape() {
        assert_eq!(
            from_line("3F2A81C0D4E", "alice@example.org", 1234, 2),
            "3F2A81C0D4E: from=<alice@example.org>, size=1234, nrcpt=2 (queue active)"
        );
        assert_eq!(
            from_line("A1", "", 0, 1),
            "A1: from=<>, size=0, nrcpt=1 (queue active)"
        );
    }

    #[test]
    fn to_line_shape() {
        assert_eq!(
            to_line("A1", "bob@x", "bob@x", 12.4, "4.3.0", "deferred (mail transport unavailable)"),
            "A1: to=<bob@x>, relay=none, delay=12, delays=0/0/0/0, dsn=4.3.0, status=deferred (mail transport unavailable)"
        );
        assert!(to_line(
            "A1",
            "bob@x",
            "b@x",
            0.5,
            "4.4.7",
            "expired, returned to sender"
        )
        .starts_with("A1: to=<bob@x>, orig_to=<b@x>, relay=none, delay=0.50,"));
    }

    #[test]
    fn control_characters_are_masked() {
        assert!(!to_line("A", "a\nb", "", 0.0, "4.0.0", "deferred (x\ry)").contains(['\n', '\r']));
    }

    #[test]
    fn delays() {
        assert_eq!(format_delay(0.0), "0.00");
        assert_eq!(format_delay(3.26), "3.3");
        assert_eq!(format_delay(432000.2), "432000");
    }
}
