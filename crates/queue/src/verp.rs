//! VERP (variable envelope return path), as Postfix's verp_sender.c and
//! verp_delims_verify: a message queued with the attribute `verp_delimiters=+=` is
//! delivered to each recipient `user@rdomain` with its own envelope sender
//! `owner+user=rdomain@odomain`, so a bounce names the recipient it is about.
//!
//! The attribute is written by smtpd (`MAIL FROM:<owner@odomain> XVERP[=xy]` from a
//! client in smtpd_authorized_verp_clients) and by pickup for `sendmail -XV[xy]`; both
//! check the two characters against verp_delimiter_filter first, and qmgr checks them
//! again when it reads the file, so a queue file edited by hand cannot put arbitrary
//! characters into an envelope sender.

/// The queue file attribute holding the two delimiter characters.
pub const VERP_ATTR: &str = "verp_delimiters";

/// Why a delimiter pair was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerpError {
    #[error("VERP needs exactly two delimiter characters")]
    Count,
    #[error("VERP delimiter {0:?} is not one of the characters in verp_delimiter_filter")]
    NotAllowed(char),
}

/// Checks `delims` (two characters, each in `filter`, Postfix's verp_delimiter_filter)
/// and returns them.
pub fn verify_delimiters(delims: &str, filter: &str) -> Result<[char; 2], VerpError> {
    let mut chars = delims.chars();
    let (Some(a), Some(b), None) = (chars.next(), chars.next(), chars.next()) else {
        return Err(VerpError::Count);
    };
    for c in [a, b] {
        // Letters, digits and the characters that delimit addresses never pass, even
        // if an administrator lists them: they would make the sender ambiguous.
        if !filter.contains(c) || c.is_ascii_alphanumeric() || "@<>\"\\ ,;:".contains(c) {
            return Err(VerpError::NotAllowed(c));
        }
    }
    Ok([a, b])
}

/// The envelope sender for `recipient`: `sender`'s local part, the first delimiter,
/// the recipient's local part, the second delimiter and the recipient's domain, then
/// `@` and `sender`'s domain. A null sender stays null; a recipient without a domain
/// contributes its local part only (as Postfix).
pub fn verp_sender(sender: &str, delims: [char; 2], recipient: &str) -> String {
    if sender.is_empty() {
        return String::new();
    }
    let (s_local, s_domain) = split_at_last_at(sender);
    let (r_local, r_domain) = split_at_last_at(recipient);
    let mut out = String::with_capacity(sender.len() + recipient.len() + 2);
    out.push_str(s_local);
    out.push(delims[0]);
    out.push_str(r_local);
    if let Some(d) = r_domain {
        out.push(delims[1]);
        out.push_str(d);
    }
    if let Some(d) = s_domain {
        out.push('@');
        out.push_str(d);
    }
    out
}

fn split_at_last_at(addr: &str) -> (&str, Option<&str>) {
    match addr.rfind('@') {
        Some(i) => (&addr[..i], Some(&addr[i + 1..])),
        None => (addr, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_checked_against_the_filter() {
        assert_eq!(verify_delimiters("+=", "-=+"), Ok(['+', '=']));
        assert_eq!(verify_delimiters("-=", "-=+"), Ok(['-', '=']));
        assert_eq!(verify_delimiters("+", "-=+"), Err(VerpError::Count));
        assert_eq!(verify_delimiters("+==", "-=+"), Err(VerpError::Count));
        assert_eq!(verify_delimiters("", "-=+"), Err(VerpError::Count));
        assert_eq!(
            verify_delimiters("+#", "-=+"),
            Err(VerpError::NotAllowed('#'))
        );
        // Never an address delimiter, whatever the filter says.
        assert_eq!(
            verify_delimiters("+@", "-=+@"),
            Err(VerpError::NotAllowed('@'))
        );
        assert_eq!(
            verify_delimiters("a=", "a-=+"),
            Err(VerpError::NotAllowed('a'))
        );
    }

    #[test]
    fn sender_is_personalised_as_postfix_does() {
        let d = ['+', '='];
        assert_eq!(
            verp_sender("owner-list@lists.example", d, "joe@example.net"),
            "owner-list+joe=example.net@lists.example"
        );
        assert_eq!(
            verp_sender("owner@o.example", d, "joe"),
            "owner+joe@o.example"
        );
        assert_eq!(
            verp_sender("owner", d, "joe@r.example"),
            "owner+joe=r.example"
        );
        assert_eq!(verp_sender("", d, "joe@r.example"), "");
        // A quoted local part with an @ in it: the last @ separates the domain.
        assert_eq!(
            verp_sender("o@s.example", ['-', '='], "\"a@b\"@r.example"),
            "o-\"a@b\"=r.example@s.example"
        );
    }
}
