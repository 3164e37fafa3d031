//! Small text helpers shared by the screening and the dummy SMTP engine: how a
//! client's bytes are shown in a log line and how an elapsed time is written
//! (Postfix's two significant digits).

use std::time::Duration;

/// At most `max` characters of `bytes`, with CR, LF, TAB and other non-printables
/// written as C escapes (`\r\n`), so a log line stays one line.
pub fn escape(bytes: &[u8], max: usize) -> String {
    // Every byte shows as at least one character, so `max` bytes are enough.
    let mut out = rostfix_proto::log_escape(&bytes[..bytes.len().min(max)]);
    out.truncate(max);
    out
}

/// `0.05`, `1.2`, `16`: an elapsed time as postscreen logs it.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.0}")
    } else if s >= 1.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_truncates() {
        assert_eq!(escape(b"EHLO x\r\n", 100), "EHLO x\\r\\n");
        assert_eq!(escape(b"\x01ab", 100), "\\001ab");
        assert_eq!(escape(&[b'a'; 300], 100).len(), 100);
    }

    #[test]
    fn times() {
        assert_eq!(elapsed(Duration::from_millis(50)), "0.05");
        assert_eq!(elapsed(Duration::from_millis(1240)), "1.2");
        assert_eq!(elapsed(Duration::from_secs(16)), "16");
    }
}
