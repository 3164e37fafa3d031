//! The header section of a message: splitting it from the body, recipients for `-t`,
//! removing Bcc:, and adding the From:, Date: and Message-Id: headers that Postfix's
//! cleanup adds when they are missing.
//!
//! A header is a line `name:` (name = printable ASCII without colon, white space before
//! the colon allowed) plus its continuation lines (starting with space or tab). The
//! header section ends at the first empty line, or at the first line that is neither a
//! header nor a continuation (then that line starts the body, as in Postfix).

use crate::addr_list::parse_address_list;

/// One header field with its continuation lines, exactly as read (LF line ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// The field name as written (case kept).
    pub name: String,
    /// All lines of the field, each ending in `\n`.
    pub raw: Vec<u8>,
}

impl HeaderField {
    /// The value with continuation lines unfolded (line breaks removed), lossily UTF-8.
    pub fn value(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw);
        let after_colon = text.split_once(':').map(|(_, v)| v).unwrap_or("");
        after_colon.replace(['\n', '\r'], "").trim().to_string()
    }

    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// A message split into its header fields and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<HeaderField>,
    /// Everything after the header section, without the separating empty line.
    pub body: Vec<u8>,
    /// Whether an empty line separated header and body.
    pub separator: bool,
}

/// Length of a header name at the start of `line`, if the line is a header.
fn header_name_len(line: &[u8]) -> Option<usize> {
    let name_len = line
        .iter()
        .position(|&b| !(b'!'..=b'~').contains(&b) || b == b':')?;
    if name_len == 0 {
        return None;
    }
    let rest = &line[name_len..];
    let colon = rest.iter().position(|&b| b != b' ' && b != b'\t')?;
    (rest[colon] == b':').then_some(name_len)
}

impl Message {
    /// Splits LF-terminated content.
    pub fn parse(content: &[u8]) -> Message {
        let mut headers: Vec<HeaderField> = Vec::new();
        let mut pos = 0;
        while pos < content.len() {
            let end = content[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(content.len(), |i| pos + i + 1);
            let line = &content[pos..end];
            let bare = line.strip_suffix(b"\n").unwrap_or(line);
            if bare.is_empty() {
                return Message {
                    headers,
                    body: content[end..].to_vec(),
                    separator: true,
                };
            }
            if (bare[0] == b' ' || bare[0] == b'\t') && !headers.is_empty() {
                if let Some(last) = headers.last_mut() {
                    last.raw.extend_from_slice(line);
                }
            } else if let Some(n) = header_name_len(bare) {
                let name = String::from_utf8_lossy(&bare[..n]).into_owned();
                headers.push(HeaderField {
                    name,
                    raw: line.to_vec(),
                });
            } else {
                break;
            }
            pos = end;
        }
        Message {
            headers,
            body: content[pos..].to_vec(),
            separator: false,
        }
    }

    /// True if a header with this name (case-insensitive) is present.
    pub fn has(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.is(name))
    }

    /// Recipients for `sendmail -t`: from Resent-To/Cc/Bcc if any Resent- recipient
    /// header is present (a resent message goes to the new recipients only), else
    /// from To, Cc and Bcc.
    pub fn recipients(&self) -> Vec<String> {
        let resent = ["Resent-To", "Resent-Cc", "Resent-Bcc"];
        let normal = ["To", "Cc", "Bcc"];
        let names = if resent.iter().any(|n| self.has(n)) {
            resent
        } else {
            normal
        };
        self.headers
            .iter()
            .filter(|h| names.iter().any(|n| h.is(n)))
            .flat_map(|h| parse_address_list(&h.value()))
            .collect()
    }

    /// Removes Bcc: and Resent-Bcc: headers (blind copies stay blind).
    pub fn remove_bcc(&mut self) {
        self.headers.retain(|h| !h.is("Bcc") && !h.is("Resent-Bcc"));
    }

    /// Appends `name: value` unless a header of that name exists. Control characters
    /// in `value` become spaces, so a value can never start a new header line.
    pub fn add_if_missing(&mut self, name: &str, value: &str) {
        if self.has(name) {
            return;
        }
        let clean: String = value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.headers.push(HeaderField {
            name: name.to_string(),
            raw: format!("{name}: {clean}\n").into_bytes(),
        });
    }

    /// The message again, LF line ends. A body without a separating empty line gets one
    /// when headers precede it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 1024);
        for h in &self.headers {
            out.extend_from_slice(&h.raw);
        }
        if self.separator || (!self.body.is_empty() && !self.headers.is_empty()) {
            out.push(b'\n');
        }
        out.extend_from_slice(&self.body);
        out
    }
}

/// A From: header value: `Full Name <sender>`, the name quoted when it holds specials.
/// The null sender gives `MAILER-DAEMON`, as Postfix's cleanup does.
pub fn from_value(sender: &str, full_name: Option<&str>) -> String {
    if sender.is_empty() {
        return "MAILER-DAEMON".to_string();
    }
    let name: String = full_name
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let name = name.trim();
    if name.is_empty() {
        return sender.to_string();
    }
    let needs_quotes = name.chars().any(|c| "()<>[]:;@\\,.\"".contains(c));
    if needs_quotes {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\" <{sender}>")
    } else {
        format!("{name} <{sender}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: me@x\nTo: a@x,\n  \"Doe, John\" <john@y>\nCc: (team) c@z\nBcc: hidden@w, \n\tother@w\nSubject: hi\n\nbody\nTo: not-a-header@x\n";

    #[test]
    fn split_and_unfold() {
        let m = Message::parse(MSG);
        assert_eq!(m.headers.len(), 5);
        assert_eq!(m.headers[1].value(), "a@x,  \"Doe, John\" <john@y>");
        assert_eq!(m.body, b"body\nTo: not-a-header@x\n");
        assert!(m.separator);
        assert_eq!(m.to_bytes(), MSG);
    }

    #[test]
    fn recipients_from_folded_headers() {
        let m = Message::parse(MSG);
        assert_eq!(
            m.recipients(),
            vec!["a@x", "john@y", "c@z", "hidden@w", "other@w"]
        );
    }

    #[test]
    fn header_names_case_insensitive() {
        let m = Message::parse(b"TO: a@x\ncc : b@y\n\n");
        assert_eq!(m.recipients(), vec!["a@x", "b@y"]);
    }

    #[test]
    fn resent_headers_win() {
        let m = Message::parse(b"To: old@x\nResent-To: new@y\nResent-Bcc: hid@z\n\nb\n");
        assert_eq!(m.recipients(), vec!["new@y", "hid@z"]);
    }

    #[test]
    fn bcc_removed_with_continuations() {
        let mut m = Message::parse(MSG);
        m.remove_bcc();
        let out = String::from_utf8(m.to_bytes()).unwrap();
        assert!(!out.contains("hidden@w"));
        assert!(!out.contains("other@w"));
        assert!(out.contains("Subject: hi\n\nbody\n"));
    }

    #[test]
    fn missing_headers_added_after_existing() {
        let mut m = Message::parse(b"Subject: s\nDate: already\n\nbody\n");
        m.add_if_missing("From", "Joe <joe@x>");
        m.add_if_missing("Date", "Mon, 23 Nov 2026 09:00:00 +0000");
        m.add_if_missing("Message-Id", "<1@h>");
        assert_eq!(
            m.to_bytes(),
            b"Subject: s\nDate: already\nFrom: Joe <joe@x>\nMessage-Id: <1@h>\n\nbody\n"
        );
        // Existing Message-ID in another case is recognised.
        let mut m = Message::parse(b"Message-ID: <x@y>\n\n");
        m.add_if_missing("Message-Id", "<z@y>");
        assert_eq!(m.headers.len(), 1);
    }

    #[test]
    fn added_value_cannot_inject_headers() {
        let mut m = Message::parse(b"\nbody\n");
        m.add_if_missing("From", "x\nBcc: evil@x");
        assert_eq!(m.to_bytes(), b"From: x Bcc: evil@x\n\nbody\n");
    }

    #[test]
    fn body_without_headers_gets_separator() {
        let mut m = Message::parse(b"just text\nmore\n");
        assert!(m.headers.is_empty());
        m.add_if_missing("From", "a@b");
        assert_eq!(m.to_bytes(), b"From: a@b\n\njust text\nmore\n");
    }

    #[test]
    fn non_header_line_ends_headers() {
        let m = Message::parse(b"Subject: a\nnot a header\nTo: x@y\n");
        assert_eq!(m.headers.len(), 1);
        assert!(!m.separator);
        assert!(m.recipients().is_empty());
        assert_eq!(m.to_bytes(), b"Subject: a\n\nnot a header\nTo: x@y\n");
    }

    #[test]
    fn from_values() {
        assert_eq!(from_value("joe@x", None), "joe@x");
        assert_eq!(from_value("joe@x", Some("Joe User")), "Joe User <joe@x>");
        assert_eq!(
            from_value("joe@x", Some("User, Joe")),
            "\"User, Joe\" <joe@x>"
        );
        assert_eq!(
            from_value("joe@x", Some("a \"b\"")),
            "\"a \\\"b\\\"\" <joe@x>"
        );
        assert_eq!(from_value("", Some("x")), "MAILER-DAEMON");
    }
}
