//! 8BITMIME downgrade: turns a message with 8-bit body content into 7-bit MIME before it
//! goes to a server that does not announce 8BITMIME (RFC 6152 section 3; Postfix does
//! this unless `disable_mime_output_conversion = yes`).
//!
//! Walks the MIME structure line by line: a leaf part whose body has 8-bit bytes and
//! whose Content-Transfer-Encoding is absent, `7bit` or `8bit` gets its body encoded as
//! quoted-printable (RFC 2045 6.7) and its header says so; multipart/* parts are walked
//! part by part (a nested boundary inside an outer part is found the same way);
//! message/rfc822 parts are walked as a message. Containers labelled `8bit` are
//! relabelled `7bit` once their contents are. Headers are never changed otherwise
//! (8-bit bytes in a header cannot be downgraded without RFC 2047 rewriting, which
//! Postfix does not do either), nor are preambles, epilogues, or parts in base64,
//! quoted-printable or `binary`. Lines are LF-terminated, as the queue file stores them.
//! Nesting is bounded so hostile input cannot recurse without end.

const MAX_DEPTH: usize = 32;
/// RFC 2045: encoded lines are at most 76 characters, the soft break `=` included.
const QP_LINE: usize = 76;

/// The message as 7-bit MIME, or None if nothing needed to change.
pub fn to_7bit(content: &[u8]) -> Option<Vec<u8>> {
    let lines = split_lines(content);
    let mut out = Vec::with_capacity(content.len() + content.len() / 8);
    let changed = entity(&lines, &mut out, false, 0);
    changed.then_some(out)
}

/// Lines without their LF; a final line without LF is kept (and written back with one
/// only if it had it, see `push_line`).
fn split_lines(content: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = content.split(|b| *b == b'\n').collect();
    if content.ends_with(b"\n") {
        lines.pop();
    }
    lines
}

fn push_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.push(b'\n');
}

/// What the header block says about the body.
struct Head {
    /// `type/subtype`, lowercased.
    ctype: String,
    boundary: Option<Vec<u8>>,
    /// Content-Transfer-Encoding, lowercased; empty when absent.
    cte: String,
}

/// Writes one entity (header block, empty line, body); true if anything changed.
fn entity(lines: &[&[u8]], out: &mut Vec<u8>, digest_part: bool, depth: usize) -> bool {
    let split = lines.iter().position(|l| l.is_empty() || *l == b"\r");
    let (header, body) = match split {
        Some(i) => (&lines[..i], &lines[i + 1..]),
        None => (lines, &lines[lines.len()..]),
    };
    let head = parse_head(header, digest_part);
    let has_separator = split.is_some();
    if depth >= MAX_DEPTH {
        copy_all(lines, out);
        return false;
    }
    // A composite entity is rewritten part by part and keeps 7bit; a multipart without
    // a boundary cannot be split and is copied as it is.
    let multipart_type = head.ctype.starts_with("multipart/");
    let mut body_out = Vec::new();
    let composite = if multipart_type {
        head.boundary.as_ref().map(|boundary| {
            let digest = head.ctype == "multipart/digest";
            multipart(body, boundary, &mut body_out, digest, depth)
        })
    } else if head.ctype == "message/rfc822" {
        Some(entity(body, &mut body_out, false, depth + 1))
    } else {
        None
    };
    if let Some(changed) = composite {
        finish(
            header,
            has_separator,
            &head,
            changed,
            "7bit",
            &body_out,
            out,
        );
        return changed;
    }
    if !multipart_type
        && matches!(head.cte.as_str(), "" | "7bit" | "8bit")
        && body.iter().any(|l| has_8bit(l))
    {
        for line in body {
            qp_line(line, &mut body_out);
        }
        finish(
            header,
            true,
            &head,
            true,
            "quoted-printable",
            &body_out,
            out,
        );
        return true;
    }
    copy_all(lines, out);
    false
}

fn copy_all(lines: &[&[u8]], out: &mut Vec<u8>) {
    for l in lines {
        push_line(out, l);
    }
}

/// Writes the header (with the new encoding when `changed` and the old one was not
/// already it), the separator and the new body.
fn finish(
    header: &[&[u8]],
    has_separator: bool,
    head: &Head,
    changed: bool,
    new_cte: &str,
    body: &[u8],
    out: &mut Vec<u8>,
) {
    let relabel = changed && head.cte != new_cte && !(new_cte == "7bit" && head.cte.is_empty());
    let mut skipping = false;
    for line in header {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if relabel && !continuation {
            skipping = field_name_is(line, b"content-transfer-encoding");
        }
        if relabel && skipping {
            continue;
        }
        push_line(out, line);
    }
    if relabel {
        push_line(
            out,
            format!("Content-Transfer-Encoding: {new_cte}").as_bytes(),
        );
    }
    if has_separator {
        push_line(out, b"");
    }
    out.extend_from_slice(body);
}

fn multipart(
    body: &[&[u8]],
    boundary: &[u8],
    out: &mut Vec<u8>,
    digest: bool,
    depth: usize,
) -> bool {
    let delimiter = |l: &[u8]| -> Option<bool> {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let rest = l.strip_prefix(b"--")?.strip_prefix(boundary)?;
        let rest_trim = trim_end(rest);
        if rest_trim == b"--" {
            Some(true)
        } else if rest_trim.is_empty() {
            Some(false)
        } else {
            None
        }
    };
    let mut changed = false;
    let mut i = 0;
    // Preamble, copied as is.
    while i < body.len() && delimiter(body[i]).is_none() {
        push_line(out, body[i]);
        i += 1;
    }
    while i < body.len() {
        let closing = delimiter(body[i]) == Some(true);
        push_line(out, body[i]);
        i += 1;
        if closing {
            break;
        }
        let start = i;
        while i < body.len() && delimiter(body[i]).is_none() {
            i += 1;
        }
        changed |= entity(&body[start..i], out, digest, depth + 1);
    }
    // Epilogue.
    for l in &body[i..] {
        push_line(out, l);
    }
    changed
}

fn trim_end(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(0, |p| p + 1);
    &s[..end]
}

fn field_name_is(line: &[u8], name: &[u8]) -> bool {
    match line.iter().position(|b| *b == b':') {
        Some(colon) => trim_end(&line[..colon]).eq_ignore_ascii_case(name),
        None => false,
    }
}

/// The unfolded value of the first field called `name`.
fn field_value(header: &[&[u8]], name: &[u8]) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    for line in header {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        match (&mut value, continuation) {
            (Some(v), true) => v.extend_from_slice(line),
            (Some(_), false) => break,
            (None, false) if field_name_is(line, name) => {
                let colon = line.iter().position(|b| *b == b':').unwrap_or(0);
                value = Some(line[colon + 1..].to_vec());
            }
            _ => {}
        }
    }
    value.map(|v| String::from_utf8_lossy(&v).trim().to_string())
}

fn parse_head(header: &[&[u8]], digest_part: bool) -> Head {
    let ct = field_value(header, b"content-type").unwrap_or_default();
    let mut parts = ct.split(';');
    let ctype = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let ctype = if ctype.is_empty() {
        if digest_part {
            "message/rfc822"
        } else {
            "text/plain"
        }
        .to_string()
    } else {
        ctype
    };
    let boundary = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        (!v.is_empty()).then(|| v.as_bytes().to_vec())
    });
    let cte = field_value(header, b"content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    Head {
        ctype,
        boundary,
        cte,
    }
}

fn has_8bit(line: &[u8]) -> bool {
    line.iter().any(|b| *b >= 0x80)
}

/// One body line as quoted-printable, with soft line breaks so no output line exceeds
/// 76 characters. A CR at the end (CRLF stored) is dropped: the line break is the LF.
fn qp_line(line: &[u8], out: &mut Vec<u8>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut width = 0;
    for (i, &b) in line.iter().enumerate() {
        let last = i + 1 == line.len();
        let literal = match b {
            b'=' => false,
            b' ' | b'\t' => !last,
            33..=126 => true,
            _ => false,
        };
        let len = if literal { 1 } else { 3 };
        // Keep room for the soft break `=` unless this is the line's last character.
        let room = if last { QP_LINE } else { QP_LINE - 1 };
        if width + len > room {
            out.extend_from_slice(b"=\n");
            width = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(format!("={b:02X}").as_bytes());
        }
        width += len;
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_qp(text: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'=' if text.get(i + 1) == Some(&b'\n') => i += 2,
                b'=' => {
                    let hex = std::str::from_utf8(&text[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }

    #[test]
    fn seven_bit_message_is_left_alone() {
        assert_eq!(to_7bit(b"Subject: hi\n\nplain text\n"), None);
    }

    #[test]
    fn single_part_becomes_quoted_printable() {
        let m = "Subject: caf\u{e9}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nCaf\u{e9} = good \n";
        let out = String::from_utf8(to_7bit(m.as_bytes()).unwrap()).unwrap();
        assert!(
            out.contains("Content-Transfer-Encoding: quoted-printable\n\nCaf=C3=A9 =3D good=20\n"),
            "{out}"
        );
        assert!(!out.contains("8bit"), "{out}");
        // The header (8-bit in Subject) is not touched.
        assert!(out.starts_with("Subject: caf\u{e9}\n"));
    }

    #[test]
    fn missing_encoding_header_is_added() {
        let out = to_7bit("Subject: x\n\n\u{fc}ber\n".as_bytes()).unwrap();
        assert_eq!(
            out,
            b"Subject: x\nContent-Transfer-Encoding: quoted-printable\n\n=C3=BCber\n"
        );
    }

    #[test]
    fn multipart_converts_only_the_8bit_part_and_relabels_the_container() {
        let m = "Content-Type: multipart/mixed; boundary=\"XX\"\nContent-Transfer-Encoding: 8bit\n\npreamble\n--XX\nContent-Type: text/plain\n\nascii only\n--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nna\u{ef}ve\n--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA\n--XX--\nepilogue\n";
        let out = String::from_utf8(to_7bit(m.as_bytes()).unwrap()).unwrap();
        let expected = "Content-Type: multipart/mixed; boundary=\"XX\"\nContent-Transfer-Encoding: 7bit\n\npreamble\n--XX\nContent-Type: text/plain\n\nascii only\n--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nna=C3=AFve\n--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAAA\n--XX--\nepilogue\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn nested_message_rfc822_is_walked() {
        let m = "Content-Type: message/rfc822\n\nSubject: inner\n\n\u{e9}t\u{e9}\n";
        let out = String::from_utf8(to_7bit(m.as_bytes()).unwrap()).unwrap();
        assert_eq!(out, "Content-Type: message/rfc822\n\nSubject: inner\nContent-Transfer-Encoding: quoted-printable\n\n=C3=A9t=C3=A9\n");
    }

    #[test]
    fn long_lines_get_soft_breaks() {
        let line = "\u{e9}".repeat(60);
        let out = to_7bit(format!("Subject: x\n\n{line}\n").as_bytes()).unwrap();
        let body = &out[out.windows(2).position(|w| w == b"\n\n").unwrap() + 2..];
        for l in body.split(|b| *b == b'\n') {
            assert!(l.len() <= QP_LINE, "{}", String::from_utf8_lossy(l));
        }
        assert_eq!(decode_qp(body), format!("{line}\n").into_bytes());
    }

    proptest! {
        #[test]
        fn qp_round_trips_and_is_7bit(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let line: Vec<u8> = line.into_iter().filter(|b| *b != b'\n' && *b != b'\r').collect();
            let mut out = Vec::new();
            qp_line(&line, &mut out);
            prop_assert!(out.iter().all(|b| *b < 0x80));
            for l in out.split(|b| *b == b'\n') {
                prop_assert!(l.len() <= QP_LINE);
            }
            let mut expected = line.clone();
            expected.push(b'\n');
            prop_assert_eq!(decode_qp(&out), expected);
        }

        #[test]
        fn never_panics_on_arbitrary_content(content in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = to_7bit(&content);
        }
    }
}
