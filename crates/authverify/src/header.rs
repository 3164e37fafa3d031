//! The Authentication-Results header section work (RFC 8601): removing incoming
//! Authentication-Results fields that claim our authserv-id (5: a receiver must
//! delete or rename them, or downstream filters would trust a forger's "pass"),
//! and turning mail-auth's CRLF header text into the LF form of the queue file.
//!
//! Content is as stored: LF line endings, header section up to the first empty line.

use base64::Engine;
use mail_auth::common::auth_results::AsAuthResult;
use mail_auth::DkimOutput;

/// The field name compared case-insensitively.
const AR_NAME: &str = "authentication-results";

/// `content` without the Authentication-Results fields whose authserv-id is
/// `authserv_id` (case-insensitive), and how many were removed.
pub fn strip_forged(content: &[u8], authserv_id: &str) -> (Vec<u8>, usize) {
    let head_end = header_end(content);
    let mut out = Vec::with_capacity(content.len());
    let mut removed = 0;
    let mut pos = 0;
    while pos < head_end {
        let end = field_end(content, pos, head_end);
        let field = &content[pos..end];
        if is_ours(field, authserv_id) {
            removed += 1;
        } else {
            out.extend_from_slice(field);
        }
        pos = end;
    }
    out.extend_from_slice(&content[head_end..]);
    (out, removed)
}

/// The results of the topmost Authentication-Results field naming `authserv_id`: the
/// text after the authserv-id (`; spf=pass ...; dkim=pass ...`), unfolded, white
/// space runs made one space, trimmed. None without such a field. This is what this
/// server found when the message arrived from outside; a sealer of a resubmission
/// puts it into the ARC-Authentication-Results, as OpenARC does, because the message
/// may have changed since (a list's subject tag and footer break the signature).
pub fn our_results(content: &[u8], authserv_id: &str) -> Option<String> {
    let head_end = header_end(content);
    let mut pos = 0;
    while pos < head_end {
        let end = field_end(content, pos, head_end);
        let field = &content[pos..end];
        if is_ours(field, authserv_id) {
            let colon = field.iter().position(|&b| b == b':')?;
            let value = String::from_utf8_lossy(&field[colon + 1..]);
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            let at = value
                .to_ascii_lowercase()
                .find(&authserv_id.to_ascii_lowercase())?;
            let rest = value[at + authserv_id.len()..].trim();
            return Some(if rest.is_empty() || rest.starts_with(';') {
                rest.to_string()
            } else {
                // An RFC 8601 version after the authserv-id: " 1; ...".
                format!(" {rest}")
            });
        }
        pos = end;
    }
    None
}

/// Where the header section ends: at the empty line (it and the body stay), or the
/// end of a message without a body.
fn header_end(content: &[u8]) -> usize {
    let mut pos = 0;
    while pos < content.len() {
        if content[pos] == b'\n' || content[pos..].starts_with(b"\r\n") {
            return pos;
        }
        pos = match content[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => pos + i + 1,
            None => content.len(),
        };
    }
    content.len()
}

/// The end of the field starting at `start`: after its last continuation line.
fn field_end(content: &[u8], start: usize, limit: usize) -> usize {
    let mut pos = start;
    loop {
        pos = match content[pos..limit].iter().position(|&b| b == b'\n') {
            Some(i) => pos + i + 1,
            None => return limit,
        };
        if pos >= limit || !matches!(content[pos], b' ' | b'\t') {
            return pos;
        }
    }
}

/// An Authentication-Results field naming `authserv_id`.
fn is_ours(field: &[u8], authserv_id: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = String::from_utf8_lossy(&field[..colon]);
    if !name.trim().eq_ignore_ascii_case(AR_NAME) {
        return false;
    }
    authserv(&field[colon + 1..]).is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
}

/// The authserv-id: the first token of the value after comments and white space.
fn authserv(value: &[u8]) -> Option<String> {
    let mut depth = 0u32;
    let mut token = Vec::new();
    for &b in value {
        match b {
            b'(' if token.is_empty() => depth += 1,
            b')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            b' ' | b'\t' | b'\r' | b'\n' if token.is_empty() => {}
            b';' | b' ' | b'\t' | b'\r' | b'\n' | b'(' => break,
            _ => token.push(b),
        }
    }
    let token = String::from_utf8_lossy(&token)
        .trim_matches('"')
        .to_string();
    (!token.is_empty()).then_some(token)
}

/// `;\r\n\tdkim=RESULT header.d=D header.i=I header.s=S header.b=B` for one
/// signature, as OpenDKIM writes it. mail-auth's builder writes header.i alone when
/// the signature has i=, but OpenDMARC takes the domain to align from header.d.
pub fn dkim_result(o: &DkimOutput<'_>) -> String {
    let mut out = String::from(";\r\n\tdkim=");
    o.result().as_auth_result(&mut out);
    if let Some(sig) = o.signature() {
        for (name, value) in [("d", &sig.d), ("i", &sig.i), ("s", &sig.s)] {
            let value = pvalue(value);
            if !value.is_empty() {
                out.push_str(&format!(" header.{name}={value}"));
            }
        }
        // The first 8 characters of the signature (RFC 6008): which one, when several.
        let b = base64::engine::general_purpose::STANDARD.encode(&sig.b);
        if let Some(b) = b.get(..8) {
            out.push_str(&format!(" header.b={b}"));
        }
    }
    out
}

/// A property value as a bare token: the characters of domains, selectors and
/// `local@domain` identities only (anything else in them is a sender's trick).
fn pvalue(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | '+'))
        .collect()
}

/// CRLF line ends to LF, ending in one LF: the queue file's form of a header.
pub fn to_lf_field(text: &str) -> String {
    let mut out = text.replace("\r\n", "\n");
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_with_our_name_are_removed() {
        let msg = b"Received: from x\n\
            Authentication-Results: MX.Example.NET; dkim=pass\n\
            \theader.d=bank.example\n\
            Authentication-Results: (comment) mx.example.net;\n spf=pass\n\
            Authentication-Results: other.example; spf=fail\n\
            Subject: Authentication-Results: mx.example.net; dkim=pass\n\
            \n\
            Authentication-Results: mx.example.net; in the body stays\n";
        let (out, n) = strip_forged(msg, "mx.example.net");
        assert_eq!(n, 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Received: from x\n\
             Authentication-Results: other.example; spf=fail\n\
             Subject: Authentication-Results: mx.example.net; dkim=pass\n\
             \n\
             Authentication-Results: mx.example.net; in the body stays\n"
        );
    }

    #[test]
    fn our_results_are_the_topmost_field_of_ours_unfolded() {
        let msg = b"Received: from x\n\
            Authentication-Results: other.example; spf=fail\n\
            Authentication-Results: (checked) MX.example.net;\n\
            \tspf=pass smtp.mailfrom=a.example;\n  dkim=pass header.d=a.example\n\
            Authentication-Results: mx.example.net; dkim=fail\n\
            \n\
            body\n";
        assert_eq!(
            our_results(msg, "mx.example.net").as_deref(),
            Some("; spf=pass smtp.mailfrom=a.example; dkim=pass header.d=a.example")
        );
        assert_eq!(
            our_results(b"Authentication-Results: mx 1; none\n\nx\n", "mx").as_deref(),
            Some(" 1; none")
        );
        assert_eq!(
            our_results(b"Subject: x\n\nAuthentication-Results: mx; none\n", "mx"),
            None
        );
    }

    #[test]
    fn authserv_id_forms() {
        assert_eq!(
            authserv(b" mx.example.net;").as_deref(),
            Some("mx.example.net")
        );
        assert_eq!(
            authserv(b" mx.example.net 1; spf=pass").as_deref(),
            Some("mx.example.net")
        );
        assert_eq!(authserv(b" (x (y)) mx;").as_deref(), Some("mx"));
        assert_eq!(authserv(b" ;").as_deref(), None);
        // A message without a body and without the empty line.
        let (out, n) = strip_forged(b"Authentication-Results: mx; none\n", "mx");
        assert_eq!((out.as_slice(), n), (&b""[..], 1));
        assert_eq!(to_lf_field("A: b;\r\n\tc"), "A: b;\n\tc\n");
    }
}
