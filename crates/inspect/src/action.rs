//! The result of a header_checks/body_checks lookup, parsed: an action word (case does
//! not matter) and the optional text after it, as header_checks(5) describes them.

/// One table result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Refuse the message; the text may start with its own `4.x.x`/`5.x.x` code.
    Reject(String),
    /// Refuse the message with a temporary error.
    Defer(String),
    /// Log and go on.
    Warn(String),
    /// Log (informational) and go on.
    Info(String),
    /// Drop this header or body line.
    Ignore,
    /// Put the message in the hold queue.
    Hold(String),
    /// Accept the message and deliver it to nobody.
    Discard(String),
    /// Replace every recipient with this address.
    Redirect(String),
    /// Send the message through `transport:destination`.
    Filter(String),
    /// Also send the message to this address.
    Bcc(String),
    /// Put this text (a header, or a body line) before the current one.
    Prepend(String),
    /// Put this text in place of the current one.
    Replace(String),
    /// No action: DUNNO, OK, or a word that is not an action (logged by the caller).
    None,
    /// A word header_checks(5) does not know.
    Unknown(String),
}

/// Parses `WORD [text]`.
pub fn parse(value: &str) -> Action {
    let value = value.trim();
    let (word, text) = match value.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((w, t)) => (w, t.trim().to_string()),
        None => (value, String::new()),
    };
    match word.to_ascii_uppercase().as_str() {
        "REJECT" => Action::Reject(text),
        "DEFER" => Action::Defer(text),
        "WARN" => Action::Warn(text),
        "INFO" => Action::Info(text),
        "IGNORE" => Action::Ignore,
        "HOLD" => Action::Hold(text),
        "DISCARD" => Action::Discard(text),
        "REDIRECT" => Action::Redirect(text),
        "FILTER" => Action::Filter(text),
        "BCC" => Action::Bcc(text),
        "PREPEND" => Action::Prepend(text),
        "REPLACE" => Action::Replace(text),
        "DUNNO" | "OK" => Action::None,
        _ => Action::Unknown(word.to_string()),
    }
}

/// Postfix's dsn_prepend: keep a leading `4.x.x`/`5.x.x` code of `text`, else put
/// `default` before it; an empty text becomes `default` plus `fallback`.
pub fn with_dsn(default: &str, text: &str, fallback: &str) -> String {
    let text = if text.is_empty() { fallback } else { text };
    match text.split_once(' ') {
        Some((code, _)) if is_dsn(code) => text.to_string(),
        None if is_dsn(text) => text.to_string(),
        _ => format!("{default} {text}"),
    }
}

/// `C.S.D` with C 2, 4 or 5, S up to 3 digits, D up to 3 digits.
fn is_dsn(code: &str) -> bool {
    let mut parts = code.split('.');
    let (Some(c), Some(s), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let digits = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    matches!(c, "2" | "4" | "5") && digits(s, 3) && digits(d, 3)
}

/// `transport:destination` with a master.cf service name as transport and no white
/// space: what qmgr can route by (a value it cannot parse would hold the message).
/// The same rule as content_filter's (rostfix_queue::ContentFilter), plus the colon
/// a FILTER action must have.
pub fn is_filter_target(text: &str) -> bool {
    text.contains(':') && matches!(rostfix_queue::ContentFilter::parse(text), Ok(Some(_)))
}

/// Is `text` shaped like a header (`Name: value`), as PREPEND/REPLACE of a header need?
pub fn is_header_text(text: &str) -> bool {
    match text.find(':') {
        Some(0) | None => false,
        Some(colon) => text[..colon].bytes().all(|b| (33..=126).contains(&b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_text() {
        assert_eq!(parse("reject  no spam "), Action::Reject("no spam".into()));
        assert_eq!(parse("REJECT"), Action::Reject(String::new()));
        assert_eq!(parse("Dunno"), Action::None);
        assert_eq!(
            parse("FILTER smtp:[127.0.0.1]:10025"),
            Action::Filter("smtp:[127.0.0.1]:10025".into())
        );
        assert_eq!(
            parse("PREPEND X-Tag: yes"),
            Action::Prepend("X-Tag: yes".into())
        );
        assert_eq!(parse("frobnicate x"), Action::Unknown("frobnicate".into()));
    }

    #[test]
    fn dsn_codes_are_kept_or_supplied() {
        assert_eq!(
            with_dsn("5.7.1", "", "message content rejected"),
            "5.7.1 message content rejected"
        );
        assert_eq!(with_dsn("5.7.1", "go away", "x"), "5.7.1 go away");
        assert_eq!(with_dsn("5.7.1", "4.7.0 later", "x"), "4.7.0 later");
        assert_eq!(with_dsn("5.7.1", "5.1.1.1 odd", "x"), "5.7.1 5.1.1.1 odd");
    }

    #[test]
    fn filter_targets() {
        assert!(is_filter_target("smtp:[127.0.0.1]:10025"));
        assert!(is_filter_target("scan:"));
        assert!(!is_filter_target("smtp"));
        assert!(!is_filter_target(":x"));
        assert!(!is_filter_target("../x:y"));
        assert!(!is_filter_target("smtp:a b"));
    }

    #[test]
    fn header_shape() {
        assert!(is_header_text("X-A: b"));
        assert!(!is_header_text("no colon"));
        assert!(!is_header_text("bad name: x"));
    }
}
