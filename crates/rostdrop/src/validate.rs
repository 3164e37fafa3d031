//! Checks on what the (untrusted) caller hands rostdrop, before anything is written:
//! addresses without control characters and of sane length, a bounded recipient count.
//! The queue library refuses NUL/CR/LF too; refusing here gives the user a clear
//! message and keeps any control character out of pickup's and qmgr's logs.

/// RFC 5321 path limit (64 local part + @ + 255 domain) rounded as Postfix does.
pub const MAX_ADDRESS_LEN: usize = 320;
/// More recipients than any legitimate local submission.
pub const MAX_RECIPIENTS: usize = 10_000;

/// Why the envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{what} address contains a control character: {shown}")]
    ControlChar { what: &'static str, shown: String },
    #[error("{what} address is longer than {MAX_ADDRESS_LEN} bytes")]
    TooLong { what: &'static str },
    #[error("empty recipient address")]
    EmptyRecipient,
    #[error("too many recipients: {0} (limit {MAX_RECIPIENTS})")]
    TooManyRecipients(usize),
    #[error("bad DSN or body option: {0}")]
    BadOption(String),
}

/// Checks the DSN and body-type values sendmail passes (already canonical there):
/// NOTIFY `NEVER` or a `SUCCESS,FAILURE,DELAY` subset in that order, RET `FULL` or
/// `HDRS`, ENVID 1..100 printable ASCII, BODY `7BIT` or `8BITMIME`. They end up in
/// queue file records and DSNs, so nothing else gets through.
pub fn validate_dsn(
    notify: Option<&str>,
    ret: Option<&str>,
    envid: Option<&str>,
    body: Option<&str>,
) -> Result<(), ValidationError> {
    let bad = |what: &str, v: &str| {
        Err(ValidationError::BadOption(format!(
            "{what} {}",
            v.escape_default()
        )))
    };
    if let Some(n) = notify {
        let ok = n == "NEVER"
            || [
                "SUCCESS",
                "FAILURE",
                "DELAY",
                "SUCCESS,FAILURE",
                "SUCCESS,DELAY",
                "FAILURE,DELAY",
                "SUCCESS,FAILURE,DELAY",
            ]
            .contains(&n);
        if !ok {
            return bad("NOTIFY", n);
        }
    }
    if let Some(r) = ret {
        if r != "FULL" && r != "HDRS" {
            return bad("RET", r);
        }
    }
    if let Some(e) = envid {
        if e.is_empty() || e.len() > 100 || !e.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return bad("ENVID", e);
        }
    }
    if let Some(b) = body {
        if b != "7BIT" && b != "8BITMIME" {
            return bad("BODY", b);
        }
    }
    Ok(())
}

/// Checks one address. `what` is "sender" or "recipient" for the message.
pub fn validate_address(what: &'static str, addr: &str) -> Result<(), ValidationError> {
    if addr.chars().any(char::is_control) {
        // Escaped, so the message itself cannot carry control characters to a terminal.
        return Err(ValidationError::ControlChar {
            what,
            shown: addr.escape_default().to_string(),
        });
    }
    if addr.len() > MAX_ADDRESS_LEN {
        return Err(ValidationError::TooLong { what });
    }
    Ok(())
}

/// Checks the whole envelope; the sender may be empty (null sender), recipients not.
pub fn validate_envelope(sender: &str, recipients: &[String]) -> Result<(), ValidationError> {
    if recipients.len() > MAX_RECIPIENTS {
        return Err(ValidationError::TooManyRecipients(recipients.len()));
    }
    validate_address("sender", sender)?;
    for r in recipients {
        if r.is_empty() {
            return Err(ValidationError::EmptyRecipient);
        }
        validate_address("recipient", r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn good_envelopes() {
        assert_eq!(validate_envelope("", &["a@b".into()]), Ok(()));
        assert_eq!(
            validate_envelope("joe", &["üser@exämple.org".into(), "x".into()]),
            Ok(())
        );
        let max = "a".repeat(MAX_ADDRESS_LEN);
        assert_eq!(validate_envelope(&max, std::slice::from_ref(&max)), Ok(()));
    }

    #[test]
    fn dsn_values() {
        assert_eq!(
            validate_dsn(
                Some("SUCCESS,DELAY"),
                Some("FULL"),
                Some("a+b"),
                Some("8BITMIME")
            ),
            Ok(())
        );
        assert_eq!(validate_dsn(None, None, None, None), Ok(()));
        assert!(validate_dsn(Some("DELAY,SUCCESS"), None, None, None).is_err());
        assert!(validate_dsn(Some("NEVER,DELAY"), None, None, None).is_err());
        assert!(validate_dsn(None, Some("full"), None, None).is_err());
        assert!(validate_dsn(None, None, Some("a b"), None).is_err());
        assert!(validate_dsn(None, None, Some(""), None).is_err());
        assert!(validate_dsn(None, None, None, Some("BINARYMIME")).is_err());
    }

    #[test]
    fn control_characters_refused() {
        for bad in ["a\nb", "a\rb", "a\0b", "a\tb", "a\x1bb", "a\x7fb"] {
            assert!(
                matches!(
                    validate_address("sender", bad),
                    Err(ValidationError::ControlChar { .. })
                ),
                "{bad:?}"
            );
            assert!(validate_envelope("ok", &[bad.to_string()]).is_err());
        }
        let Err(ValidationError::ControlChar { shown, .. }) = validate_address("sender", "x\ny")
        else {
            panic!()
        };
        assert_eq!(shown, "x\\ny");
    }

    #[test]
    fn limits() {
        let long = "a".repeat(MAX_ADDRESS_LEN + 1);
        assert_eq!(
            validate_address("sender", &long),
            Err(ValidationError::TooLong { what: "sender" })
        );
        // Length counts bytes, not characters.
        let wide = "é".repeat(MAX_ADDRESS_LEN / 2 + 1);
        assert!(validate_address("recipient", &wide).is_err());
        let many = vec!["a@b".to_string(); MAX_RECIPIENTS + 1];
        assert_eq!(
            validate_envelope("s", &many),
            Err(ValidationError::TooManyRecipients(MAX_RECIPIENTS + 1))
        );
        assert_eq!(validate_envelope("s", &many[..MAX_RECIPIENTS]), Ok(()));
        assert_eq!(
            validate_envelope("s", &["".into()]),
            Err(ValidationError::EmptyRecipient)
        );
    }

    proptest! {
        #[test]
        fn accepted_addresses_are_clean(s in "\\PC{0,400}|[\\x00-\\x7f]{0,40}") {
            if validate_address("recipient", &s).is_ok() {
                prop_assert!(s.len() <= MAX_ADDRESS_LEN);
                prop_assert!(!s.bytes().any(|b| b < 0x20 || b == 0x7f));
            }
        }
    }
}
