//! Which delivery replies mean "the provider is throttling us": the signal for the
//! adaptive back-off. The phrasing test is the delivery-outcome classifier's
//! (rostfix_maillog::outcome::is_rate_limited, the same test that puts
//! `class=rate-limited` on the delivery line), so the log and the back-off agree.
//!
//! On top of it shaping also counts a 4.7.x status with code 421, 450 or 451 whatever
//! its text (the policy class the big providers use for rate limits: Gmail's
//! `421 4.7.0 ... unusual rate`, Outlook's `451 4.7.500 Server busy`). A 421 alone is
//! not enough: servers also send it when shutting down.

/// The SMTP reply code in an agent's text: the digits after "said: ", or the text's
/// first three when it starts with them.
pub fn reply_code(text: &str) -> Option<u16> {
    let tail = match text.find("said: ") {
        Some(i) => &text[i + 6..],
        None => text,
    };
    let digits = tail.get(..3)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// True when a reply with SMTP code `code` (None when the agent gave none), enhanced
/// status `dsn` and text `text` is a provider's throttling reply.
pub fn is_throttle(code: Option<u16>, dsn: &str, text: &str) -> bool {
    let temporary = dsn.starts_with("4.") || code.is_some_and(|c| (400..500).contains(&c));
    if temporary && dsn.starts_with("4.7.") && matches!(code, Some(421 | 450 | 451)) {
        return true;
    }
    rostfix_maillog::outcome::is_rate_limited(dsn, code, text)
}

/// A throttle for the back-off log line: `421 4.7.0 from HOST[IP]` (the code, the
/// status and who said it), or the status and text when the agent named no server.
pub fn summary(dsn: &str, text: &str) -> String {
    let server = text
        .strip_prefix("host ")
        .and_then(|t| t.split_once(" said: "))
        .map(|(host, _)| host);
    match (reply_code(text), server) {
        (Some(code), Some(host)) => format!("{code} {dsn} from {host}"),
        _ => format!("{dsn} {}", text.chars().take(100).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_throttles_are_recognised() {
        let gmail = "host mx1.provider-a.test[127.0.0.1] said: 421 4.7.0 Our system has \
                     detected an unusual rate of mail (in reply to RCPT TO command)";
        assert_eq!(reply_code(gmail), Some(421));
        assert_eq!(
            summary("4.7.0", gmail),
            "421 4.7.0 from mx1.provider-a.test[127.0.0.1]"
        );
        assert!(is_throttle(reply_code(gmail), "4.7.0", gmail));
        assert!(is_throttle(Some(451), "4.7.500", "451 4.7.500 Server busy"));
        assert!(is_throttle(
            Some(450),
            "4.2.1",
            "450 4.2.1 Too many messages, slow down"
        ));
        assert!(is_throttle(None, "4.4.2", "rate limited, try again later"));
    }

    #[test]
    fn other_replies_are_not() {
        assert!(!is_throttle(
            Some(550),
            "5.7.1",
            "550 5.7.1 too many spam complaints"
        ));
        assert!(!is_throttle(
            Some(421),
            "4.3.2",
            "421 4.3.2 Service shutting down"
        ));
        assert!(!is_throttle(Some(452), "4.2.2", "452 4.2.2 Mailbox full"));
        assert!(!is_throttle(
            None,
            "4.4.1",
            "connect to x[127.0.0.1]:25: Connection refused"
        ));
        assert_eq!(reply_code("connect to host: refused"), None);
    }
}
