//! The Postfix-shaped lines qmgr logs itself, built as strings so their shape is tested:
//! `ID: from=<..>, size=N, nrcpt=N (queue active)`, and the `to=<..>` lines for
//! recipients no delivery agent logged (transport unavailable, expired), the latter
//! through maillog's one delivery-line formatter.

use rostfix_maillog::{printable, DeliveryLine};

/// `ID: from=<SENDER>, size=N, nrcpt=N (queue active)`.
pub fn from_line(id: &str, sender: &str, size: u64, nrcpt: usize) -> String {
    format!(
        "{id}: from=<{}>, size={size}, nrcpt={nrcpt} (queue active)",
        printable(sender)
    )
}

/// `ID: to=<ADDR>, relay=none, delay=D, delays=0/0/0/0, dsn=DSN, status=STATUS`.
/// `status` is Postfix's status word and `text` the reason in parentheses, if any.
pub fn to_line(
    id: &str,
    address: &str,
    orig: &str,
    delay: f64,
    dsn: &str,
    status: &str,
    text: Option<&str>,
) -> String {
    DeliveryLine {
        queue_id: id,
        to: address,
        orig_to: orig,
        relay: "none",
        conn_use: 0,
        delay,
        delays: [0.0; 4],
        dsn,
        status,
        text,
    }
    .to_string()
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
            to_line("A1", "bob@x", "bob@x", 12.4, "4.3.0", "deferred", Some("mail transport unavailable")),
            "A1: to=<bob@x>, relay=none, delay=12, delays=0/0/0/0, dsn=4.3.0, status=deferred (mail transport unavailable) class=other"
        );
        assert!(to_line(
            "A1",
            "bob@x",
            "b@x",
            0.5,
            "4.4.7",
            "expired, returned to sender",
            None
        )
        .starts_with("A1: to=<bob@x>, orig_to=<b@x>, relay=none, delay=0.5,"));
    }

    #[test]
    fn control_characters_are_masked() {
        assert!(
            !to_line("A", "a\nb", "", 0.0, "4.0.0", "deferred", Some("x\ry"))
                .contains(['\n', '\r'])
        );
    }
}
