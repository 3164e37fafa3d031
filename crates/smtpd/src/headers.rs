//! Watches the stored (LF-terminated) message header as it streams by: counts
//! `Received:` headers for the hop-count limit, picks up the first `Message-ID:`
//! for the log, and keeps the fields the bulk-mail hygiene checks read (From,
//! List-Id, List-Unsubscribe, List-Unsubscribe-Post, Precedence, DKIM-Signature:
//! crates/hygiene). Memory is bounded: only the first [`MAX_KEPT`] bytes of a line
//! (and of each kept value, continuation lines included) are kept, and at most
//! [`MAX_FIELDS`] fields.

/// Bytes of one header line (or of the Message-ID value) kept for inspection.
const MAX_KEPT: usize = 998;

/// Most header fields kept for the hygiene checks.
const MAX_FIELDS: usize = 32;

/// The fields crates/hygiene reads.
const HYGIENE_FIELDS: &[&[u8]] = &[
    b"from",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"precedence",
    b"dkim-signature",
];

/// The header scanner.
#[derive(Debug, Clone)]
pub struct HeaderScanner {
    in_header: bool,
    line: Vec<u8>,
    received: u32,
    message_id: Option<String>,
    /// The header being continued is the (first) Message-ID.
    in_message_id: bool,
    /// Hygiene fields: (name as sent, unfolded value).
    fields: Vec<(String, String)>,
    /// The header being continued is the last of `fields`.
    in_field: bool,
}

impl Default for HeaderScanner {
    fn default() -> Self {
        HeaderScanner {
            in_header: true,
            line: Vec::new(),
            received: 0,
            message_id: None,
            in_message_id: false,
            fields: Vec::new(),
            in_field: false,
        }
    }
}

impl HeaderScanner {
    pub fn new() -> HeaderScanner {
        HeaderScanner::default()
    }

    /// Number of `Received:` headers seen.
    pub fn received_count(&self) -> u32 {
        self.received
    }

    /// The first Message-ID value, trimmed (None when absent or empty).
    pub fn message_id(&self) -> Option<&str> {
        self.message_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The hygiene fields seen (crates/hygiene), values unfolded and trimmed.
    pub fn hygiene_fields(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .map(|(n, v)| (n.clone(), v.trim().to_string()))
            .collect()
    }

    /// Feeds stored content (LF line endings).
    pub fn feed(&mut self, data: &[u8]) {
        for chunk in data.split_inclusive(|&b| b == b'\n') {
            if !self.in_header {
                return;
            }
            let (body, complete) = match chunk.strip_suffix(b"\n") {
                Some(b) => (b, true),
                None => (chunk, false),
            };
            let room = MAX_KEPT.saturating_sub(self.line.len());
            self.line.extend_from_slice(&body[..body.len().min(room)]);
            if complete {
                let line = std::mem::take(&mut self.line);
                self.header_line(&line);
            }
        }
    }

    fn header_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.in_header = false;
            return;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if self.in_message_id {
                if let Some(id) = self.message_id.as_mut() {
                    push_capped(id, line);
                }
            }
            if self.in_field {
                if let Some((_, value)) = self.fields.last_mut() {
                    push_capped(value, line);
                }
            }
            return;
        }
        self.in_message_id = false;
        self.in_field = false;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            // Not a header: the body starts here (no blank line).
            self.in_header = false;
            return;
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
            self.in_header = false;
            return;
        }
        if self.fields.len() < MAX_FIELDS
            && HYGIENE_FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f))
        {
            let mut value = String::new();
            push_capped(&mut value, &line[colon + 1..]);
            self.fields
                .push((String::from_utf8_lossy(name).into_owned(), value));
            self.in_field = true;
        }
        if name.eq_ignore_ascii_case(b"received") {
            self.received = self.received.saturating_add(1);
        } else if name.eq_ignore_ascii_case(b"message-id") && self.message_id.is_none() {
            let mut id = String::new();
            push_capped(&mut id, &line[colon + 1..]);
            self.message_id = Some(id);
            self.in_message_id = true;
        }
    }
}

/// Appends text (lossy UTF-8, control characters dropped) up to [`MAX_KEPT`] bytes.
fn push_capped(dst: &mut String, bytes: &[u8]) {
    for c in String::from_utf8_lossy(bytes).chars() {
        if dst.len() + c.len_utf8() > MAX_KEPT {
            return;
        }
        if !c.is_control() {
            dst.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan(data: &[u8]) -> HeaderScanner {
        let mut s = HeaderScanner::new();
        s.feed(data);
        s
    }

    #[test]
    fn keeps_the_hygiene_fields_unfolded_and_bounded() {
        let s = scan(
            b"From: A <a@example.com>\nList-Unsubscribe: <https://x/u>,\n <mailto:u@x>\n\
Subject: s\nlist-unsubscribe-post: List-Unsubscribe=One-Click\n\nList-Id: <body>\n",
        );
        assert_eq!(
            s.hygiene_fields(),
            vec![
                ("From".to_string(), "A <a@example.com>".to_string()),
                (
                    "List-Unsubscribe".to_string(),
                    "<https://x/u>, <mailto:u@x>".to_string()
                ),
                (
                    "list-unsubscribe-post".to_string(),
                    "List-Unsubscribe=One-Click".to_string()
                ),
            ]
        );
        let many = "From: a@b\n".repeat(100) + "\n";
        assert_eq!(scan(many.as_bytes()).hygiene_fields().len(), MAX_FIELDS);
    }

    #[test]
    fn counts_received_in_header_only() {
        let s = scan(b"Received: a\nreceived: b\n\tcont\nSubject: x\n\nReceived: in body\n");
        assert_eq!(s.received_count(), 2);
    }

    #[test]
    fn message_id_with_continuation() {
        let s = scan(b"Message-ID:\n <abc@example>\nMessage-Id: <second>\n\n");
        assert_eq!(s.message_id(), Some("<abc@example>"));
        let s = scan(b"message-id: <x@y>  \n\n");
        assert_eq!(s.message_id(), Some("<x@y>"));
        assert_eq!(scan(b"Subject: none\n\n").message_id(), None);
    }

    #[test]
    fn header_ends_at_non_header_line() {
        let s = scan(b"Subject: a\nthis is body\nReceived: no\n");
        assert_eq!(s.received_count(), 0);
    }

    #[test]
    fn split_feeding() {
        let data = b"Received: 1\nReceived: 2\nMessage-ID: <id@h>\n\nbody\n";
        for split in 0..data.len() {
            let mut s = HeaderScanner::new();
            s.feed(&data[..split]);
            s.feed(&data[split..]);
            assert_eq!(s.received_count(), 2);
            assert_eq!(s.message_id(), Some("<id@h>"));
        }
    }

    proptest! {
        #[test]
        fn bounded_and_never_panics(data in proptest::collection::vec(any::<u8>(), 0..4000)) {
            let s = scan(&data);
            prop_assert!(s.message_id().map_or(0, str::len) <= MAX_KEPT);
        }
    }
}
