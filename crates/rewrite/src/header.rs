//! Address headers: which headers cleanup rewrites as sender or recipient addresses
//! (Postfix's header_opts table: the sender class is From, Sender, Errors-To,
//! Resent-From, Resent-Sender, Return-Receipt-To; the recipient class To, Cc, Bcc,
//! Reply-To, Apparently-To and the Resent- forms; Return-Path is never rewritten),
//! and [`rewrite_addresses`], which finds the addresses in one header's value and
//! replaces each by what the caller's function makes of it.
//!
//! An address is the text inside `<...>` (a source route `@a,@b:` before it is kept
//! and skipped), or else a bare addr-spec: an item of the comma-separated list up to
//! its first comment. Display names, comments, group names (`team: a@b, c@d;`) and the
//! folding of the header are kept as they are. A quoted local part (`"john doe"@x`)
//! is one address; the caller unquotes and re-quotes it ([`crate::quote`]).

/// Which address class a header belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderRole {
    Sender,
    Recipient,
}

/// The role of header `name` (case-insensitive), None for headers not rewritten.
pub fn role_of(name: &str) -> Option<HeaderRole> {
    const SENDER: &[&str] = &[
        "from",
        "sender",
        "errors-to",
        "resent-from",
        "resent-sender",
        "return-receipt-to",
    ];
    const RECIPIENT: &[&str] = &[
        "to",
        "cc",
        "bcc",
        "reply-to",
        "apparently-to",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "resent-reply-to",
    ];
    let lower = name.trim().to_ascii_lowercase();
    if SENDER.contains(&lower.as_str()) {
        Some(HeaderRole::Sender)
    } else if RECIPIENT.contains(&lower.as_str()) {
        Some(HeaderRole::Recipient)
    } else {
        None
    }
}

/// Splits `Name: value` into the name and the byte offset of the value.
pub fn split_header(header: &str) -> Option<(&str, usize)> {
    let colon = header.find(':')?;
    let name = &header[..colon];
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some((name, colon + 1))
}

/// Byte ranges (within `value`) of the addresses it holds.
pub fn address_spans(value: &str) -> Vec<(usize, usize)> {
    let bytes = value.as_bytes();
    let mut spans = Vec::new();
    let mut item_start = 0;
    let mut comment = 0usize;
    let mut quoted = false;
    let mut angle: Option<usize> = None;
    let mut angle_span: Option<(usize, usize)> = None;
    let mut first_comment: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\\' {
            i += 2;
            continue;
        }
        if quoted {
            quoted = c != b'"';
        } else if comment > 0 {
            match c {
                b'(' => comment += 1,
                b')' => comment -= 1,
                _ => {}
            }
        } else if let Some(open) = angle {
            if c == b'>' {
                angle_span = Some((open + 1, i));
                angle = None;
            }
        } else {
            match c {
                b'"' => quoted = true,
                b'(' => {
                    comment = 1;
                    first_comment.get_or_insert(i);
                }
                b'<' => angle = Some(i),
                b',' | b';' | b':' => {
                    // A group name (`name:`) holds no address.
                    if c != b':' {
                        push_item(value, item_start, i, angle_span, first_comment, &mut spans);
                    }
                    item_start = i + 1;
                    angle_span = None;
                    first_comment = None;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if angle.is_none() && !quoted && comment == 0 {
        push_item(
            value,
            item_start,
            bytes.len(),
            angle_span,
            first_comment,
            &mut spans,
        );
    }
    spans
}

fn push_item(
    value: &str,
    start: usize,
    end: usize,
    angle_span: Option<(usize, usize)>,
    first_comment: Option<usize>,
    spans: &mut Vec<(usize, usize)>,
) {
    let (mut s, e) = match angle_span {
        Some(span) => span,
        None => (start, first_comment.unwrap_or(end).min(end)),
    };
    if angle_span.is_some() {
        // `<@relay1,@relay2:user@domain>`: the route stays, the mailbox is rewritten.
        if value[s..e].starts_with('@') {
            if let Some(colon) = value[s..e].find(':') {
                s += colon + 1;
            }
        }
    }
    let text = &value[s..e];
    let lead = text.len() - text.trim_start().len();
    let trimmed = text.trim();
    if trimmed.is_empty() || crate::quote::has_unquoted_space(trimmed) {
        // Empty, or not an addr-spec (a display name without `<>`): left alone.
        return;
    }
    spans.push((s + lead, s + lead + trimmed.len()));
}

/// `header` with every address replaced by `rewrite(address)`; None when nothing
/// changed (or the header is not `Name: value`). The first error stops it.
pub fn rewrite_addresses<E>(
    header: &str,
    mut rewrite: impl FnMut(&str) -> Result<String, E>,
) -> Result<Option<String>, E> {
    let Some((_, offset)) = split_header(header) else {
        return Ok(None);
    };
    let value = &header[offset..];
    let mut out = String::with_capacity(header.len());
    out.push_str(&header[..offset]);
    let mut last = 0;
    let mut changed = false;
    for (s, e) in address_spans(value) {
        let old = &value[s..e];
        let new = rewrite(old)?;
        out.push_str(&value[last..s]);
        out.push_str(&new);
        changed |= new != old;
        last = e;
    }
    out.push_str(&value[last..]);
    Ok(changed.then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn upper(h: &str) -> String {
        rewrite_addresses::<()>(h, |a| Ok(a.to_ascii_uppercase()))
            .expect("no error")
            .unwrap_or_else(|| h.to_string())
    }

    #[test]
    fn roles() {
        assert_eq!(role_of("FROM"), Some(HeaderRole::Sender));
        assert_eq!(role_of("Resent-Sender"), Some(HeaderRole::Sender));
        assert_eq!(role_of("cc"), Some(HeaderRole::Recipient));
        assert_eq!(role_of("Reply-To"), Some(HeaderRole::Recipient));
        assert_eq!(role_of("Return-Path"), None);
        assert_eq!(role_of("Subject"), None);
    }

    #[test]
    fn address_forms() {
        assert_eq!(upper("To: a@b"), "To: A@B");
        assert_eq!(
            upper("From: \"Doe, John\" <j@x> (work)"),
            "From: \"Doe, John\" <J@X> (work)"
        );
        assert_eq!(upper("To: a@b (Ann),\n\tc@d"), "To: A@B (Ann),\n\tC@D");
        assert_eq!(upper("To: team: a@b, c@d;"), "To: team: A@B, C@D;");
        assert_eq!(
            upper("To: undisclosed-recipients:;"),
            "To: undisclosed-recipients:;"
        );
        assert_eq!(upper("To: <@r1,@r2:u@d>"), "To: <@r1,@r2:U@D>");
        assert_eq!(upper("From: <>"), "From: <>");
        assert_eq!(upper("From: Ann Smith"), "From: Ann Smith");
        assert_eq!(upper("To: joe"), "To: JOE");
        // A quoted local part with a space is one address, bare or in <>.
        assert_eq!(upper("To: \"john doe\"@x"), "To: \"JOHN DOE\"@X");
        assert_eq!(
            upper("To: John <\"john doe\"@x>, \"a b\"@y (c)"),
            "To: John <\"JOHN DOE\"@X>, \"A B\"@Y (c)"
        );
    }

    #[test]
    fn unchanged_is_none() {
        let r = rewrite_addresses::<()>("To: a@b", |a| Ok(a.to_string())).expect("ok");
        assert_eq!(r, None);
        let r = rewrite_addresses::<()>("not a header", |_| Ok("x".into())).expect("ok");
        assert_eq!(r, None);
    }

    proptest! {
        // Arbitrary header text (client input): spans are in bounds, ordered, on
        // character boundaries, and an identity rewrite changes nothing.
        #[test]
        fn spans_are_sane(value in "\\PC{0,80}") {
            let spans = address_spans(&value);
            let mut last = 0;
            for (s, e) in spans {
                prop_assert!(last <= s && s < e && e <= value.len());
                prop_assert!(value.is_char_boundary(s) && value.is_char_boundary(e));
                last = e;
            }
            let h = format!("To:{value}");
            let r = rewrite_addresses::<()>(&h, |a| Ok(a.to_string())).expect("ok");
            prop_assert_eq!(r, None);
        }
    }
}
