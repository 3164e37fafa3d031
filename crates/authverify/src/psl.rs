//! The organisational domain (RFC 7489 3.2) from the public suffix list: the public
//! suffix of a name and one label more. Read from a file (Debian's publicsuffix
//! package keeps /usr/share/publicsuffix/public_suffix_list.dat current, and
//! OpenDMARC reads the same file), once at start, before the chroot.

use crate::VerifyError;
use publicsuffix::{List, Psl};

/// The loaded list.
pub struct SuffixList {
    list: List,
}

impl std::fmt::Debug for SuffixList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SuffixList")
    }
}

impl SuffixList {
    /// Reads the list at `path`.
    pub fn load(path: &str) -> Result<SuffixList, VerifyError> {
        let text = std::fs::read(path).map_err(|e| VerifyError::SuffixList {
            path: path.to_string(),
            why: e.to_string(),
        })?;
        SuffixList::parse(&text).map_err(|why| VerifyError::SuffixList {
            path: path.to_string(),
            why,
        })
    }

    /// A list from its text (the file format of publicsuffix.org).
    pub fn parse(text: &[u8]) -> Result<SuffixList, String> {
        let list = List::from_bytes(text).map_err(|e| e.to_string())?;
        if list.is_empty() {
            return Err("no rules in the list".to_string());
        }
        Ok(SuffixList { list })
    }

    /// The organisational domain of `domain` (lowercase, no trailing dot): the
    /// registrable domain under the longest matching public suffix; a name that is
    /// itself a public suffix is its own organisational domain (RFC 7489 3.2 step 3
    /// keeps at least the name).
    pub fn organizational(&self, domain: &str) -> String {
        let name = domain.trim_end_matches('.').to_ascii_lowercase();
        match self.list.domain(name.as_bytes()) {
            Some(d) => String::from_utf8_lossy(d.as_bytes()).into_owned(),
            None => name,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const LIST: &[u8] = b"// ===BEGIN ICANN DOMAINS===\ncom\nuk\nco.uk\n*.ck\n!www.ck\n\
        // ===END ICANN DOMAINS===\n// ===BEGIN PRIVATE DOMAINS===\nblogspot.com\n\
        // ===END PRIVATE DOMAINS===\n";

    #[test]
    fn organizational_domains() {
        let l = SuffixList::parse(LIST).unwrap();
        assert_eq!(l.organizational("mail.example.com"), "example.com");
        assert_eq!(l.organizational("Example.COM."), "example.com");
        assert_eq!(l.organizational("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(l.organizational("x.foo.blogspot.com"), "foo.blogspot.com");
        assert_eq!(l.organizational("a.b.foo.ck"), "b.foo.ck");
        assert_eq!(l.organizational("a.www.ck"), "www.ck");
        // Names under a TLD the list lacks: the last label is the suffix ("*").
        assert_eq!(l.organizational("mx.sender.test"), "sender.test");
        // A public suffix alone stays itself.
        assert_eq!(l.organizational("co.uk"), "co.uk");
    }

    #[test]
    fn debian_list_loads_when_installed() {
        let path = "/usr/share/publicsuffix/public_suffix_list.dat";
        if std::path::Path::new(path).exists() {
            let l = SuffixList::load(path).unwrap();
            assert_eq!(l.organizational("www.bbc.co.uk"), "bbc.co.uk");
        }
        assert!(SuffixList::load("/nonexistent/psl.dat").is_err());
    }
}
