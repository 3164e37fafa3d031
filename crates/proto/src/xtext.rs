//! RFC 3461 xtext, as XFORWARD and DSN parameters carry values: `+`, `=`, controls,
//! space and non-ASCII become `+HH`. Shared by the smtp client and smtpd's proxy client.

/// Encodes `value` as xtext.
pub fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_specials() {
        assert_eq!(super::xtext("a+b=c d\u{e9}"), "a+2Bb+3Dc+20d+C3+A9");
    }
}
