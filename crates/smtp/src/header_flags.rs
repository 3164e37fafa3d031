//! The master.cf `flags=` argument of smtp(8)/lmtp(8) services (Postfix 3.0): `D`
//! prepends `Delivered-To: recipient`, `O` `X-Original-To: original recipient`, `R`
//! `Return-Path: <sender>` to the message sent, in Postfix's mail_copy order; `X` is
//! accepted (final delivery, no effect here). The usual use is an LMTP service to
//! Dovecot (`lmtp unix - - n - - lmtp flags=DO` with lmtp_destination_recipient_limit
//! = 1), so that Sieve sees the original recipient.

/// Why `flags=` is unusable (the service does not start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderFlagsError {
    #[error("unknown flag in flags= command-line attribute: {0}")]
    UnknownFlag(char),
    #[error("unknown command-line argument: {0}")]
    UnknownArgument(String),
}

/// The parsed flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderFlags {
    pub delivered_to: bool,
    pub original_to: bool,
    pub return_path: bool,
}

impl HeaderFlags {
    /// Parses the service's extra master.cf arguments (only `flags=` is known).
    pub fn parse(args: &[String]) -> Result<HeaderFlags, HeaderFlagsError> {
        let mut f = HeaderFlags::default();
        for arg in args {
            let Some(letters) = arg.strip_prefix("flags=") else {
                return Err(HeaderFlagsError::UnknownArgument(arg.clone()));
            };
            for c in letters.chars() {
                match c {
                    'D' => f.delivered_to = true,
                    'O' => f.original_to = true,
                    'R' => f.return_path = true,
                    'X' => {}
                    other => return Err(HeaderFlagsError::UnknownFlag(other)),
                }
            }
        }
        Ok(f)
    }

    /// D and O describe one recipient.
    pub fn needs_single_recipient(&self) -> bool {
        self.delivered_to || self.original_to
    }

    /// True when a header is to be prepended.
    pub fn any(&self) -> bool {
        self.delivered_to || self.original_to || self.return_path
    }

    /// The requested header lines (LF-terminated, in Postfix's order), to be sent
    /// before the message (content.rs); empty when none is.
    pub fn headers(&self, sender: &str, rcpt: &str, orig: &str) -> Vec<u8> {
        let mut out = String::new();
        if self.return_path {
            out.push_str(&format!("Return-Path: <{sender}>\n"));
        }
        if self.original_to {
            let orig = if orig.is_empty() { rcpt } else { orig };
            out.push_str(&format!("X-Original-To: {orig}\n"));
        }
        if self.delivered_to {
            out.push_str(&format!("Delivered-To: {}\n", rcpt.to_lowercase()));
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_and_prepends_in_postfix_order() {
        let f = HeaderFlags::parse(&words("flags=DORX")).unwrap();
        assert!(f.any() && f.needs_single_recipient());
        assert_eq!(
            f.headers("s@x", "Bob@Example.org", "Alias@x"),
            b"Return-Path: <s@x>\nX-Original-To: Alias@x\nDelivered-To: bob@example.org\n".to_vec()
        );
        let none = HeaderFlags::parse(&[]).unwrap();
        assert!(!none.any());
        assert_eq!(none.headers("s", "r", "o"), Vec::<u8>::new());
    }

    #[test]
    fn refusals() {
        assert_eq!(
            HeaderFlags::parse(&words("flags=Dq")).unwrap_err(),
            HeaderFlagsError::UnknownFlag('q')
        );
        assert!(matches!(
            HeaderFlags::parse(&words("argv=/bin/x")),
            Err(HeaderFlagsError::UnknownArgument(_))
        ));
    }
}
