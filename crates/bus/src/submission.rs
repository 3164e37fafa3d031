//! What one bus message asks for, checked before anything is written: the envelope
//! from its attributes (`sender`, `recipients`, `dsn_envid`, `dsn_ret`, `dsn_notify`,
//! `campaign_id`) and the RFC 5322 message from its data. Everything comes from the
//! publishing application, so nothing is trusted: sizes, counts and address syntax are
//! bounded here, and a message that fails is refused as a whole with one reason (the
//! caller acknowledges it and logs the reason: retrying would fail the same way).
//!
//! The schema is documented in docs/bulk-sending.md ("Bus intake", "The message schema").

use std::collections::BTreeMap;

/// Most recipients one bus message may name (pickup's bound for a maildrop file).
pub const MAX_RECIPIENTS: usize = 10_000;
/// Longest address (RFC 5321: 64 local part + @ + 255 domain, rounded to pickup's
/// envelope record bound is far more; this is the SMTP path limit).
pub const MAX_ADDRESS: usize = 320;
/// Longest `campaign_id`.
pub const MAX_CAMPAIGN_ID: usize = 128;
/// Longest DSN envelope id (RFC 3461).
pub const MAX_ENVID: usize = 100;
/// Longest bus message id (it names a staging record and appears in logs).
pub const MAX_BUS_ID: usize = 128;

/// Why a bus message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid bus message id")]
    BadId,
    #[error("missing attribute {0}")]
    Missing(&'static str),
    #[error("invalid {what}: {value}")]
    Invalid { what: &'static str, value: String },
    #[error("no recipients")]
    NoRecipients,
    #[error("more than {MAX_RECIPIENTS} recipients")]
    TooManyRecipients,
    #[error("message data is not valid base64")]
    BadData,
    #[error("message data is empty")]
    EmptyData,
    #[error("message too big ({size} bytes, over message_size_limit {limit})")]
    TooBig { size: u64, limit: u64 },
}

/// One message as the bus delivered it: id, attributes, and the still-encoded data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BusMessage {
    /// The bus's own message id (Pub/Sub `messageId`): the deduplication key.
    pub id: String,
    /// What to hand back to acknowledge this delivery (Pub/Sub `ackId`).
    pub ack_handle: String,
    pub attributes: BTreeMap<String, String>,
    /// The message data as the bus encodes it (base64 for Pub/Sub).
    pub data_b64: String,
}

/// A validated request to queue one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Envelope sender; empty for the null sender.
    pub sender: String,
    pub recipients: Vec<String>,
    /// Canonical RFC 3461 NOTIFY for every recipient; empty when not given.
    pub notify: String,
    pub dsn_ret: Option<String>,
    pub dsn_envid: Option<String>,
    pub campaign_id: Option<String>,
    /// The RFC 5322 message, line ends as published (the queue stores LF; see
    /// [`normalize_line_ends`]).
    pub content: Vec<u8>,
}

/// True for an id we can use as a key in the dedup log and in log lines.
pub fn valid_bus_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_BUS_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Checks an address as the publisher wrote it (no angle brackets): `local@domain`,
/// printable, no white space or characters that would confuse a header or log line.
/// SMTPUTF8 addresses (non-ASCII) are accepted, as pickup qualifies them unchanged.
pub fn valid_address(addr: &str) -> bool {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && addr.len() <= MAX_ADDRESS
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':'))
        && addr
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '<' | '>' | ','))
}

/// The `recipients` attribute: a JSON list of strings (`["a@x","b@y"]`) when it starts
/// with `[`, otherwise a comma-separated list (white space around items ignored).
pub fn parse_recipients(value: &str) -> Result<Vec<String>, Refusal> {
    let trimmed = value.trim();
    let items: Vec<String> = if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<String>>(trimmed).map_err(|_| Refusal::Invalid {
            what: "recipients list",
            value: shown(value),
        })?
    } else {
        trimmed
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    if items.is_empty() {
        return Err(Refusal::NoRecipients);
    }
    if items.len() > MAX_RECIPIENTS {
        return Err(Refusal::TooManyRecipients);
    }
    for r in &items {
        if !valid_address(r) {
            return Err(Refusal::Invalid {
                what: "recipient",
                value: shown(r),
            });
        }
    }
    Ok(items)
}

/// `dsn_notify`: `NEVER` or a comma list of SUCCESS, FAILURE, DELAY in any order and
/// case, returned canonical (upper case, that order), as smtpd stores RCPT NOTIFY=.
pub fn parse_notify(value: &str) -> Result<String, Refusal> {
    let bad = || Refusal::Invalid {
        what: "dsn_notify",
        value: shown(value),
    };
    let words: Vec<String> = value
        .split(',')
        .map(|w| w.trim().to_ascii_uppercase())
        .collect();
    if words.len() == 1 && words[0] == "NEVER" {
        return Ok("NEVER".into());
    }
    let order = ["SUCCESS", "FAILURE", "DELAY"];
    let mut seen = [false; 3];
    for w in &words {
        let i = order.iter().position(|o| o == w).ok_or_else(bad)?;
        if seen[i] {
            return Err(bad());
        }
        seen[i] = true;
    }
    Ok(order
        .iter()
        .zip(seen)
        .filter(|(_, s)| *s)
        .map(|(o, _)| *o)
        .collect::<Vec<_>>()
        .join(","))
}

/// Printable ASCII without space, 1..=max bytes (dsn_envid, campaign_id).
fn printable_token(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max && value.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// At most 64 characters of `v` for a log line, control characters escaped.
pub fn shown(v: &str) -> String {
    let mut out: String = v.chars().take(64).flat_map(char::escape_default).collect();
    if v.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// Unix line ends: the queue stores LF (docs/queue-format.md), and a message published
/// with CRLF (as an SMTP library would write it) must not get CR CR LF on the wire.
pub fn normalize_line_ends(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        if content[i] == b'\r' && content.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(content[i]);
        i += 1;
    }
    out
}

impl BusMessage {
    /// Validates the message against the schema; `size_limit` is message_size_limit
    /// (0: none).
    pub fn to_submission(&self, size_limit: u64) -> Result<Submission, Refusal> {
        use base64::Engine;
        if !valid_bus_id(&self.id) {
            return Err(Refusal::BadId);
        }
        let attr = |name: &str| self.attributes.get(name).map(String::as_str);
        let sender = match attr("sender") {
            None => return Err(Refusal::Missing("sender")),
            // The null sender, written either way.
            Some("") | Some("<>") => String::new(),
            Some(s) if valid_address(s) => s.to_string(),
            Some(s) => {
                return Err(Refusal::Invalid {
                    what: "sender",
                    value: shown(s),
                })
            }
        };
        let recipients =
            parse_recipients(attr("recipients").ok_or(Refusal::Missing("recipients"))?)?;
        let notify = attr("dsn_notify")
            .map(parse_notify)
            .transpose()?
            .unwrap_or_default();
        let dsn_ret = match attr("dsn_ret") {
            None => None,
            Some(v) if v.eq_ignore_ascii_case("FULL") => Some("FULL".into()),
            Some(v) if v.eq_ignore_ascii_case("HDRS") => Some("HDRS".into()),
            Some(v) => {
                return Err(Refusal::Invalid {
                    what: "dsn_ret",
                    value: shown(v),
                })
            }
        };
        let token = |name: &'static str, max: usize| match attr(name) {
            None => Ok(None),
            Some(v) if printable_token(v, max) => Ok(Some(v.to_string())),
            Some(v) => Err(Refusal::Invalid {
                what: name,
                value: shown(v),
            }),
        };
        let dsn_envid = token("dsn_envid", MAX_ENVID)?;
        let campaign_id = token("campaign_id", MAX_CAMPAIGN_ID)?;
        // Refuse by the encoded size before decoding anything (4 characters per 3 bytes).
        let estimate = (self.data_b64.len() as u64 / 4) * 3;
        if size_limit > 0 && estimate > size_limit.saturating_add(3) {
            return Err(Refusal::TooBig {
                size: estimate,
                limit: size_limit,
            });
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.data_b64.as_bytes())
            .map_err(|_| Refusal::BadData)?;
        let content = normalize_line_ends(&raw);
        if content.is_empty() {
            return Err(Refusal::EmptyData);
        }
        if size_limit > 0 && content.len() as u64 > size_limit {
            return Err(Refusal::TooBig {
                size: content.len() as u64,
                limit: size_limit,
            });
        }
        Ok(Submission {
            sender,
            recipients,
            notify,
            dsn_ret,
            dsn_envid,
            campaign_id,
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;

    fn message(attrs: &[(&str, &str)], data: &[u8]) -> BusMessage {
        BusMessage {
            id: "12345".into(),
            ack_handle: "ack-1".into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            data_b64: base64::engine::general_purpose::STANDARD.encode(data),
        }
    }

    #[test]
    fn a_complete_message() {
        let m = message(
            &[
                ("sender", "news@example.com"),
                ("recipients", "a@x.example, b@y.example"),
                ("dsn_notify", "delay,failure"),
                ("dsn_ret", "hdrs"),
                ("dsn_envid", "env-1"),
                ("campaign_id", "spring-2026"),
            ],
            b"Subject: hi\r\n\r\nbody\r\n",
        );
        let s = m.to_submission(1000).unwrap();
        assert_eq!(s.sender, "news@example.com");
        assert_eq!(s.recipients, vec!["a@x.example", "b@y.example"]);
        assert_eq!(s.notify, "FAILURE,DELAY");
        assert_eq!(s.dsn_ret.as_deref(), Some("HDRS"));
        assert_eq!(s.dsn_envid.as_deref(), Some("env-1"));
        assert_eq!(s.campaign_id.as_deref(), Some("spring-2026"));
        assert_eq!(s.content, b"Subject: hi\n\nbody\n");
    }

    #[test]
    fn recipients_as_json_list_and_null_sender() {
        let m = message(
            &[
                ("sender", "<>"),
                ("recipients", r#"["a@x.example","b@y.example"]"#),
            ],
            b"x\n",
        );
        let s = m.to_submission(0).unwrap();
        assert_eq!(s.sender, "");
        assert_eq!(s.recipients.len(), 2);
        assert_eq!(s.notify, "");
        assert_eq!(s.campaign_id, None);
    }

    #[test]
    fn refusals() {
        let ok = [("sender", "a@b.example"), ("recipients", "c@d.example")];
        let refused = |attrs: &[(&str, &str)], data: &[u8]| message(attrs, data).to_submission(100);
        assert_eq!(refused(&ok[1..], b"x"), Err(Refusal::Missing("sender")));
        assert_eq!(refused(&ok[..1], b"x"), Err(Refusal::Missing("recipients")));
        assert_eq!(refused(&ok, b""), Err(Refusal::EmptyData));
        assert!(matches!(
            refused(&ok, &[b'x'; 200]),
            Err(Refusal::TooBig { limit: 100, .. })
        ));
        for (name, value) in [
            ("sender", "no-at-sign"),
            ("sender", "a b@c.example"),
            ("recipients", "a@b.example, <c@d.example>"),
            ("recipients", "a@"),
            ("recipients", "a@b..c"),
            ("recipients", "[\"a@b.example\", 3]"),
            ("dsn_notify", "NEVER,DELAY"),
            ("dsn_notify", "SUCCESS,SUCCESS"),
            ("dsn_notify", "sometimes"),
            ("dsn_ret", "ALL"),
            ("dsn_envid", "a b"),
            ("campaign_id", ""),
            ("campaign_id", "line\nbreak"),
        ] {
            let mut attrs: BTreeMap<&str, &str> = ok.iter().copied().collect();
            attrs.insert(name, value);
            let attrs: Vec<(&str, &str)> = attrs.into_iter().collect();
            assert!(
                matches!(refused(&attrs, b"x"), Err(Refusal::Invalid { .. })),
                "{name}={value}"
            );
        }
        assert_eq!(
            refused(&[("sender", "a@b.example"), ("recipients", " , ")], b"x"),
            Err(Refusal::NoRecipients)
        );
        let many = vec!["a@b.example"; MAX_RECIPIENTS + 1].join(",");
        assert_eq!(
            refused(&[("sender", "a@b.example"), ("recipients", &many)], b"x"),
            Err(Refusal::TooManyRecipients)
        );
        let mut bad = message(&ok, b"x");
        bad.data_b64 = "***".into();
        assert_eq!(bad.to_submission(0), Err(Refusal::BadData));
        bad.id = "../x".into();
        assert_eq!(bad.to_submission(0), Err(Refusal::BadId));
    }

    #[test]
    fn line_ends() {
        assert_eq!(normalize_line_ends(b"a\r\nb\rc\n"), b"a\nb\rc\n");
        assert_eq!(normalize_line_ends(b"\r\n\r\n"), b"\n\n");
    }

    proptest! {
        /// Whatever the attributes and data, validation answers without panicking,
        /// and what it accepts is within the documented bounds.
        #[test]
        fn any_input_is_judged(
            id in ".{0,140}",
            attrs in proptest::collection::btree_map(
                prop_oneof![
                    Just("sender".to_string()),
                    Just("recipients".to_string()),
                    Just("dsn_notify".to_string()),
                    Just("dsn_ret".to_string()),
                    Just("dsn_envid".to_string()),
                    Just("campaign_id".to_string()),
                    ".{0,8}",
                ],
                ".{0,80}",
                0..8,
            ),
            data in ".{0,200}",
        ) {
            let m = BusMessage { id, ack_handle: String::new(), attributes: attrs, data_b64: data };
            if let Ok(s) = m.to_submission(150) {
                prop_assert!(valid_bus_id(&m.id));
                prop_assert!(!s.recipients.is_empty() && s.recipients.len() <= MAX_RECIPIENTS);
                prop_assert!(s.recipients.iter().all(|r| valid_address(r)));
                prop_assert!(s.content.len() <= 150 && !s.content.is_empty());
                prop_assert!(s.campaign_id.iter().all(|c| !c.contains(['\n', '\r', '\0', ' '])));
            }
        }

        /// Every list of valid addresses survives both encodings of `recipients`.
        #[test]
        fn recipient_lists_round_trip(
            addrs in proptest::collection::vec("[a-z0-9.+_-]{1,20}@[a-z0-9-]{1,20}\\.example", 1..20)
        ) {
            let json = serde_json::to_string(&addrs).unwrap();
            prop_assert_eq!(parse_recipients(&json).unwrap(), addrs.clone());
            prop_assert_eq!(parse_recipients(&addrs.join(" , ")).unwrap(), addrs);
        }
    }
}
