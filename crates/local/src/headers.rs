//! The headers local and virtual prepend (`Return-Path:`, `X-Original-To:`,
//! `Delivered-To:`, in Postfix's mail_copy order) and the Delivered-To loop check, on
//! the stored message content (LF line ends, as the queue keeps it).

/// The lines prepended to every delivered copy: `Return-Path: <SENDER>` (`<>` for the
/// null sender), `X-Original-To: ORIGINAL` (the recipient as the message arrived,
/// before aliases; omitted when unknown) and `Delivered-To: ADDRESS` (lowercased, as
/// Postfix writes it).
pub fn delivery_headers(sender: &str, original: &str, address: &str) -> Vec<u8> {
    let mut out = format!("Return-Path: <{sender}>\n");
    if !original.is_empty() {
        out.push_str(&format!("X-Original-To: {original}\n"));
    }
    out.push_str(&format!("Delivered-To: {}\n", address.to_lowercase()));
    out.into_bytes()
}

/// True when the message header (everything before the first empty line) already has
/// a `Delivered-To:` header whose value is `address` (case-insensitive): delivering
/// again would be a mail forwarding loop.
pub fn has_delivered_to(content: &[u8], address: &str) -> bool {
    let want = address.trim().as_bytes();
    header_fields(content).any(|(name, value)| {
        name.eq_ignore_ascii_case(b"delivered-to") && value.trim_ascii().eq_ignore_ascii_case(want)
    })
}

/// Iterates the header fields as (name, unfolded value). Stops at the first empty line
/// or the first line that is neither a field nor a continuation (the body began).
fn header_fields(content: &[u8]) -> impl Iterator<Item = (&[u8], Vec<u8>)> {
    let mut lines = content.split(|&b| b == b'\n').peekable();
    std::iter::from_fn(move || loop {
        let line = strip_cr(lines.next()?);
        if line.is_empty() {
            return None;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // A continuation without a field before it: skip it.
            continue;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let name = line[..colon].trim_ascii();
        let mut value = line[colon + 1..].to_vec();
        while let Some(next) = lines.peek() {
            let next = strip_cr(next);
            if next.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                value.extend_from_slice(next);
                lines.next();
            } else {
                break;
            }
        }
        return Some((name, value));
    })
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The complete copy to store: the prepended headers, then the content, with a final
/// newline added if the stored content lacks one (as Postfix's mail_copy does).
pub fn delivered_copy(sender: &str, original: &str, address: &str, content: &[u8]) -> Vec<u8> {
    let mut out = delivery_headers(sender, original, address);
    out.reserve(content.len() + 1);
    out.extend_from_slice(content);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MSG: &[u8] = b"Received: from x\n\tby y\nDelivered-To: Bob@Example.org\nSubject: hi\n\nDelivered-To: carol@example.org\n";

    #[test]
    fn prepended_headers() {
        assert_eq!(
            delivery_headers("", "", "Bob@Example.org"),
            b"Return-Path: <>\nDelivered-To: bob@example.org\n"
        );
        assert_eq!(
            delivered_copy("a@b", "Alias@D", "c@d", b"Subject: x\n\nbody"),
            b"Return-Path: <a@b>\nX-Original-To: Alias@D\nDelivered-To: c@d\nSubject: x\n\nbody\n"
        );
    }

    #[test]
    fn loop_detected_case_insensitively() {
        assert!(has_delivered_to(MSG, "bob@example.org"));
        assert!(has_delivered_to(MSG, "BOB@EXAMPLE.ORG"));
    }

    #[test]
    fn body_lines_do_not_count() {
        assert!(!has_delivered_to(MSG, "carol@example.org"));
        assert!(!has_delivered_to(MSG, "dave@example.org"));
    }

    #[test]
    fn folded_and_crlf_values() {
        let m = b"Delivered-To:\r\n bob@example.org\r\n\r\n";
        assert!(has_delivered_to(m, "bob@example.org"));
    }

    #[test]
    fn prefix_of_address_is_no_loop() {
        let m = b"Delivered-To: bob@example.org.evil\n\n";
        assert!(!has_delivered_to(m, "bob@example.org"));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..256), a in ".{0,20}") {
            let _ = has_delivered_to(&data, &a);
            let copy = delivered_copy("s", "", &a, &data);
            prop_assert!(copy.ends_with(b"\n"));
        }
    }
}
