//! The DKIM-Signature: headers for one message: the key chosen by the From: address
//! through the SigningTable (every key it lists for that address when multiple
//! signatures are on, e.g. an RSA and an Ed25519 one), relaxed/relaxed canonicalization, the headers present
//! among OpenDKIM's default list signed, From oversigned (listed once more than it
//! occurs, so a From: added later breaks the signature).
//!
//! Messages come as stored in the queue (LF line endings); they are signed in their
//! CRLF wire form, which is what the smtp client sends and verifiers see.

use crate::key::{load_key, LoadedKey};
use crate::tables::{KeyTable, SigningTable};
use crate::DkimError;
use mail_auth::common::crypto::{Algorithm, Sha256, SigningKey};
use mail_auth::common::headers::{HeaderWriter, Writable};
use mail_auth::dkim::DkimSigner;
use std::collections::HashMap;

/// Headers signed when present (OpenDKIM's default sign list, RFC 6376 5.4.1).
const SIGNED: &[&str] = &[
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Description",
    "Resent-Date",
    "Resent-From",
    "Resent-Sender",
    "Resent-To",
    "Resent-Cc",
    "Resent-Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Help",
    "List-Unsubscribe",
    // RFC 8058 4: one-click unsubscription counts only when the signature covers
    // both List-Unsubscribe and List-Unsubscribe-Post.
    "List-Unsubscribe-Post",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
];

/// A key from the KeyTable, loaded.
#[derive(Debug)]
struct Key {
    /// `%`: the From: domain.
    domain: String,
    selector: String,
    key: LoadedKey,
}

/// Everything needed to sign: loaded at start, shared read-only afterwards.
#[derive(Debug)]
pub struct Signer {
    keys: HashMap<String, Key>,
    table: SigningTable,
    /// rostfix_dkim_multiple_signatures: a signature per SigningTable match, not
    /// only the first.
    multiple: bool,
}

/// A signature made for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The header with LF line endings, ending in LF.
    pub header: String,
    pub domain: String,
    pub selector: String,
}

impl Signer {
    /// Reads the tables named by rostfix_dkim_key_table and rostfix_dkim_signing_table
    /// and every key the SigningTable refers to. Both empty: no signing (None); one
    /// without the other is a configuration error.
    pub fn load(key_table: &str, signing_table: &str) -> Result<Option<Signer>, DkimError> {
        let (kt, st) = (key_table.trim(), signing_table.trim());
        match (kt.is_empty(), st.is_empty()) {
            (true, true) => return Ok(None),
            (false, false) => {}
            _ => {
                return Err(DkimError::Param(
                    "rostfix_dkim_key_table and rostfix_dkim_signing_table must be set together"
                        .into(),
                ))
            }
        }
        let keys_table = KeyTable::load(kt)?;
        let table = SigningTable::load(st)?;
        let mut keys = HashMap::new();
        for name in table.key_names() {
            if keys.contains_key(name) {
                continue;
            }
            let entry = keys_table
                .entries
                .get(name)
                .ok_or_else(|| DkimError::UnknownKeyName {
                    table: st.to_string(),
                    name: name.to_string(),
                })?;
            let key = load_key(&entry.key_path)?;
            keys.insert(
                name.to_string(),
                Key {
                    domain: entry.domain.clone(),
                    selector: entry.selector.clone(),
                    key,
                },
            );
        }
        Ok(Some(Signer {
            keys,
            table,
            multiple: false,
        }))
    }

    /// Signs with every key the SigningTable lists for the From: address, not only
    /// the first (rostfix_dkim_multiple_signatures, OpenDKIM's MultipleSignatures).
    pub fn with_multiple_signatures(mut self, on: bool) -> Signer {
        self.multiple = on;
        self
    }

    /// The key and signing identity the SigningTable gives `address` (a `%` domain
    /// in the KeyTable is the address's domain).
    pub fn key_for(&self, address: &str) -> Option<TableKey<'_>> {
        let address = address.to_ascii_lowercase();
        let key = self.table.lookup(&address).and_then(|n| self.keys.get(n))?;
        let domain = if key.domain == "%" {
            address.rsplit_once('@').map_or("", |(_, d)| d).to_string()
        } else {
            key.domain.clone()
        };
        Some(TableKey {
            domain,
            selector: &key.selector,
            key: KeyRef(&key.key),
        })
    }

    /// The signatures for `message` (queue form, LF line endings), in the order
    /// they go on top of it; none when the SigningTable has no key for its From:
    /// address or there is no usable From:.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<Signed>, DkimError> {
        let fields = header_fields(header_block(message));
        let value_of = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let Some(from) = value_of("From").and_then(from_address) else {
            return Ok(Vec::new());
        };
        let mut names = self.table.lookup_all(&from);
        if !self.multiple {
            names.truncate(1);
        }
        let keys: Vec<&Key> = names.iter().filter_map(|n| self.keys.get(*n)).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let from_domain = from.rsplit_once('@').map_or("", |(_, d)| d);
        let mut headers: Vec<&str> = SIGNED
            .iter()
            .copied()
            .filter(|n| value_of(n).is_some())
            .collect();
        // Oversigning: one more From than the message has.
        headers.push("From");
        let wire = to_crlf(message);
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let domain = if key.domain == "%" {
                from_domain.to_string()
            } else {
                key.domain.clone()
            };
            // Each signature covers the message without the others (none of them
            // lists DKIM-Signature in h=), so their order does not matter to a verifier.
            let sig = DkimSigner::from_key(KeyRef(&key.key))
                .domain(domain.as_str())
                .selector(key.selector.as_str())
                .headers(headers.clone())
                .sign(&wire)
                .map_err(|e| DkimError::Sign(e.to_string()))?;
            let mut header = sig.to_header().replace("\r\n", "\n");
            if !header.ends_with('\n') {
                header.push('\n');
            }
            out.push(Signed {
                header,
                domain,
                selector: key.selector.clone(),
            });
        }
        Ok(out)
    }
}

/// Borrows a loaded key for one signature: mail-auth's signer owns its key, and the
/// keys are loaded once at start and shared by every message.
pub struct KeyRef<'a>(&'a LoadedKey);

/// The key the SigningTable gives an address, for a signature other than DKIM's
/// (the ARC seal of forwarded mail, crates/authverify).
pub struct TableKey<'a> {
    pub domain: String,
    pub selector: &'a str,
    pub key: KeyRef<'a>,
}

impl SigningKey for KeyRef<'_> {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        match self.0 {
            LoadedKey::Rsa(k) => k.sign(input),
            LoadedKey::Ed25519(k) => k.sign(input),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self.0 {
            LoadedKey::Rsa(k) => k.algorithm(),
            LoadedKey::Ed25519(k) => k.algorithm(),
        }
    }
}

/// The header section: up to the first empty line (LF or CRLF form).
pub fn header_block(message: &[u8]) -> &[u8] {
    let mut start = 0;
    for line in message.split_inclusive(|b| *b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            return &message[..start];
        }
        start += line.len();
    }
    message
}

/// The header fields of `head`, unfolded: (name, value trimmed), in order.
pub fn header_fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut lines: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.push_str(line);
            }
        } else if !line.is_empty() {
            lines.push(line.to_string());
        }
    }
    lines
        .into_iter()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim_end().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// The first address of a From: value, lowercased: `Name <a@b>`, `"x, y" <a@b>`,
/// `a@b (comment)`, `a@b`. None without an `@`.
pub fn from_address(value: &str) -> Option<String> {
    // Quoted strings and comments may hold anything, angle brackets included.
    let mut plain = String::new();
    let (mut quoted, mut depth, mut escaped) = (false, 0u32, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if quoted || depth > 0 => {}
            _ => plain.push(c),
        }
    }
    let addr = match plain.split_once('<') {
        Some((_, rest)) => rest.split('>').next().unwrap_or(""),
        None => plain.split(',').next().unwrap_or(""),
    }
    .trim();
    // RFC 5321's limits (64 + 1 + 255): longer is no address we hold a key for, and
    // keeps the table lookups small whatever a client sends.
    if addr.len() > 320 {
        return None;
    }
    let (local, domain) = addr.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains(char::is_whitespace) {
        return None;
    }
    Some(addr.to_ascii_lowercase())
}

/// LF to CRLF (lines already ending in CRLF are left alone): the wire form that
/// signatures are made and verified over (crates/authverify verifies with it too).
pub fn to_crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 32);
    let mut prev = 0u8;
    for &b in message {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::parse_key;
    use crate::tables::SigningTable;

    #[test]
    fn from_forms() {
        assert_eq!(
            from_address("Alice <Alice@Example.COM>").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            from_address("\"Doe, <x@evil.test>\" <j@example.com>").as_deref(),
            Some("j@example.com")
        );
        assert_eq!(
            from_address("j@example.com (Joe <x@evil.test>)").as_deref(),
            Some("j@example.com")
        );
        assert_eq!(from_address("undisclosed-recipients:;"), None);
        assert_eq!(
            from_address(&format!("{}@example.com", "a".repeat(400))),
            None
        );
    }

    #[test]
    fn headers_unfolded_and_block_ends_at_blank_line() {
        let m = b"Subject: a\n b\nFrom: x@y\n\nFrom: not@header\n";
        let head = header_block(m);
        assert_eq!(
            header_fields(head),
            [
                ("Subject".to_string(), "a b".to_string()),
                ("From".to_string(), "x@y".to_string())
            ]
        );
    }

    #[test]
    fn crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc");
    }

    fn signer(pem: &[u8], domain: &str) -> Signer {
        let mut keys = HashMap::new();
        keys.insert(
            "k".to_string(),
            Key {
                domain: domain.to_string(),
                selector: "sel".to_string(),
                key: parse_key(pem).unwrap(),
            },
        );
        Signer {
            keys,
            table: SigningTable::parse("st", "*@example.com k\n", true).unwrap(),
            multiple: false,
        }
    }

    #[test]
    fn signs_matching_from_with_ed25519_and_oversigns_from() {
        let pem = crate::keygen::ed25519_pem().unwrap();
        let s = signer(pem.as_bytes(), "%");
        let msg =
            b"Received: from x\nFrom: A <a@Example.com>\nTo: b@else.test\nSubject: hi\n\nbody\n";
        let signed = s.sign(msg).unwrap().pop().expect("signed");
        assert_eq!(signed.domain, "example.com");
        assert!(signed
            .header
            .starts_with("DKIM-Signature: v=1; a=ed25519-sha256;"));
        assert!(!signed.header.contains('\r'));
        let h = signed.header.replace("\n\t", "").replace(' ', "");
        let tags = h.split(';').find(|t| t.starts_with("h=")).unwrap();
        assert_eq!(tags.matches("From").count(), 2, "{tags}");
        assert!(!tags.contains("Received"));
        // Another domain's From: no key, no signature.
        let other = b"From: a@example.org\n\nbody\n";
        assert!(s.sign(other).unwrap().is_empty());
    }

    #[test]
    fn one_click_unsubscription_headers_are_both_signed() {
        let pem = crate::keygen::ed25519_pem().unwrap();
        let s = signer(pem.as_bytes(), "%");
        let msg = b"From: news@example.com\nList-Unsubscribe: <https://example.com/u/1>\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\nSubject: n\n\nbody\n";
        let signed = s.sign(msg).unwrap().pop().expect("signed");
        let h = signed.header.replace("\n\t", "").replace(' ', "");
        let tags = h.split(';').find(|t| t.starts_with("h=")).unwrap();
        let names: Vec<String> = tags[2..].split(':').map(str::to_ascii_lowercase).collect();
        assert!(names.contains(&"list-unsubscribe".to_string()), "{tags}");
        assert!(
            names.contains(&"list-unsubscribe-post".to_string()),
            "{tags}"
        );
    }

    #[test]
    fn every_listed_key_signs_when_multiple_signatures_are_on() {
        let rsa = crate::keygen::rsa_pem(2048).unwrap();
        let ed = crate::keygen::ed25519_pem().unwrap();
        let mut keys = HashMap::new();
        for (name, pem) in [("rsa", rsa.as_bytes()), ("ed", ed.as_bytes())] {
            keys.insert(
                name.to_string(),
                Key {
                    domain: "%".to_string(),
                    selector: name.to_string(),
                    key: parse_key(pem).unwrap(),
                },
            );
        }
        let table = "*@example.com rsa\n*@example.com ed\n";
        let s = Signer {
            keys,
            table: SigningTable::parse("st", table, true).unwrap(),
            multiple: false,
        };
        let msg = b"From: a@example.com\nSubject: hi\n\nbody\n";
        let one = s.sign(msg).unwrap();
        assert_eq!(one.len(), 1, "first match only, as OpenDKIM by default");
        assert_eq!(one[0].selector, "rsa");
        let s = s.with_multiple_signatures(true);
        let both = s.sign(msg).unwrap();
        let got: Vec<(&str, bool)> = both
            .iter()
            .map(|x| (x.selector.as_str(), x.header.contains("a=ed25519-sha256;")))
            .collect();
        assert_eq!(got, [("rsa", false), ("ed", true)]);
        assert!(both.iter().all(|x| x.domain == "example.com"));
    }
}
