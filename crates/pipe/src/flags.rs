//! pipe(8)'s `flags=` letters: what is prepended to the message, how the message body
//! is quoted, and how the command-line address macros are folded or quoted.

use crate::args::PipeArgsError;

/// The parsed `flags=` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// B: end the message with an empty line when it does not already.
    pub blank_line: bool,
    /// D: prepend `Delivered-To: recipient`.
    pub delivered_to: bool,
    /// F: prepend a `From sender time` envelope line.
    pub from_line: bool,
    /// O: prepend `X-Original-To: original recipient`.
    pub original_to: bool,
    /// R: prepend `Return-Path: <sender>`.
    pub return_path: bool,
    /// X: the command is the final delivery (DSN "delivered" rather than "relayed").
    pub final_delivery: bool,
    /// h: fold recipient domains, $domain and $nexthop to lower case.
    pub fold_host: bool,
    /// q: quote address localparts with special characters as RFC 822 does.
    pub quote: bool,
    /// u: fold recipient localparts to lower case.
    pub fold_user: bool,
    /// `.`: prepend a dot to lines that start with one (SMTP-style).
    pub dot_quote: bool,
    /// `>`: prepend `>` to lines that start with `From ` (mbox-style).
    pub from_quote: bool,
}

impl Flags {
    /// Parses the letters; an unknown one is an error, as Postfix's pipe refuses it.
    pub fn parse(text: &str) -> Result<Flags, PipeArgsError> {
        let mut f = Flags::default();
        for c in text.chars() {
            match c {
                'B' => f.blank_line = true,
                'D' => f.delivered_to = true,
                'F' => f.from_line = true,
                'O' => f.original_to = true,
                'R' => f.return_path = true,
                'X' => f.final_delivery = true,
                'h' => f.fold_host = true,
                'q' => f.quote = true,
                'u' => f.fold_user = true,
                '.' => f.dot_quote = true,
                '>' => f.from_quote = true,
                // VERP is not implemented: Rostfix has no VERP sender rewriting at all,
                // so there is nothing to undo; accepting the letter keeps imported
                // master.cf entries working.
                'V' => {}
                other => return Err(PipeArgsError::UnknownFlag(other)),
            }
        }
        Ok(f)
    }

    /// D and O describe one recipient: Postfix defers a request with more.
    pub fn needs_single_recipient(&self) -> bool {
        self.delivered_to || self.original_to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters() {
        let f = Flags::parse("DRXhuO>.").unwrap();
        assert!(f.delivered_to && f.return_path && f.final_delivery);
        assert!(f.fold_host && f.fold_user && f.original_to);
        assert!(f.from_quote && f.dot_quote);
        assert!(!f.from_line && !f.quote && !f.blank_line);
        assert!(f.needs_single_recipient());
        assert!(!Flags::parse("Fq").unwrap().needs_single_recipient());
        assert_eq!(
            Flags::parse("Dz").unwrap_err(),
            PipeArgsError::UnknownFlag('z')
        );
    }
}
