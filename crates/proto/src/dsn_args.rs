//! RFC 3461 DSN parameter values, decoded where they arrive: xtext, NOTIFY and ORCPT.
//! smtpd checks a client's RCPT TO with them, the milter client a milter's
//! ADDRCPT_PAR arguments. Decoded ORCPT values are printable ASCII (or, for a UTF-8
//! ORCPT, free of control characters), so nothing decoded can put a line break into a
//! queue file record, a log line or a DSN.

/// RFC 3461 4.2: ORCPT is at most 500 characters.
const MAX_ORCPT: usize = 500;

/// `NEVER` alone, or any of SUCCESS, FAILURE, DELAY (each once); returned canonical.
pub fn parse_notify(v: &str) -> Option<String> {
    let mut never = false;
    let mut flags = [false; 3];
    for word in v.split(',') {
        let slot = match word.to_ascii_uppercase().as_str() {
            "NEVER" => {
                if never {
                    return None;
                }
                never = true;
                continue;
            }
            "SUCCESS" => 0,
            "FAILURE" => 1,
            "DELAY" => 2,
            _ => return None,
        };
        if flags[slot] {
            return None;
        }
        flags[slot] = true;
    }
    let any = flags.iter().any(|f| *f);
    match (never, any) {
        (true, false) => Some("NEVER".to_string()),
        (false, true) => Some(
            ["SUCCESS", "FAILURE", "DELAY"]
                .iter()
                .zip(flags)
                .filter(|(_, on)| *on)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// `rfc822;xtext` (or `utf-8;...` under SMTPUTF8, RFC 6533) -> the decoded address.
pub fn parse_orcpt(v: &str, smtputf8: bool) -> Option<String> {
    if v.len() > MAX_ORCPT {
        return None;
    }
    let (kind, addr) = v.split_once(';')?;
    let decoded = if kind.eq_ignore_ascii_case("rfc822") {
        decode_xtext(addr).filter(|a| printable_ascii(a))?
    } else if smtputf8 && kind.eq_ignore_ascii_case("utf-8") {
        // RFC 6533 utf-8-addr-xtext: \x{HEX} escapes; plain UTF-8 otherwise.
        decode_utf8_addr(addr).filter(|a| !a.chars().any(char::is_control))?
    } else {
        return None;
    };
    (!decoded.is_empty()).then_some(decoded)
}

/// RFC 3461 4: `+HH` escapes; other characters must be printable ASCII except `+`
/// and `=`. None when malformed.
pub fn decode_xtext(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = bytes.get(i + 1..i + 3)?;
                // RFC 3461: the hex digits are upper case; accept lower case as well.
                let text = std::str::from_utf8(hex).ok()?;
                if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(text, 16).ok()?);
                i += 3;
            }
            b'=' => return None,
            b @ b'!'..=b'~' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 6533 `\x{HEX}` escapes in a UTF-8 address.
fn decode_utf8_addr(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\\x{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let end = after.find('}')?;
        let code = u32::from_str_radix(&after[..end], 16).ok()?;
        out.push(char::from_u32(code)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Whether every byte is printable ASCII (space included).
pub fn printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (b' '..=b'~').contains(&b))
}
