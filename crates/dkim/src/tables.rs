//! OpenDKIM's KeyTable and SigningTable files, read as OpenDKIM reads them so an
//! existing setup carries over unchanged.
//!
//! KeyTable: `keyname domain:selector:/path/to/private.key` per line (`#` comments,
//! blank lines ignored); a domain of `%` means the domain of the From: address.
//! Inline key data (a third field that is not a path) is not supported: it is refused
//! at start, so keys stay in files whose permissions can be checked.
//!
//! SigningTable: `pattern keyname` per line. With a `refile:` prefix the patterns are
//! wildcards (`*@example.com`, `*`) matched against the whole From: address; without
//! it the table is keyed by `user@domain`, then `domain`, then `.parent` for each
//! parent domain, then `*`. The first entry found wins (one signature per message, as
//! OpenDKIM without MultipleSignatures); with rostfix_dkim_multiple_signatures (OpenDKIM's
//! MultipleSignatures) every entry found counts, in that order, each key name once.

use crate::DkimError;
use std::collections::HashMap;

/// One KeyTable entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTableEntry {
    /// `%` stands for the From: domain.
    pub domain: String,
    pub selector: String,
    pub key_path: String,
}

/// The KeyTable: key name to entry.
#[derive(Debug, Default, Clone)]
pub struct KeyTable {
    pub entries: HashMap<String, KeyTableEntry>,
}

/// The SigningTable.
#[derive(Debug, Clone)]
pub struct SigningTable {
    /// `refile:`: wildcard patterns tried in file order.
    wildcard: bool,
    /// (pattern lowercased, key name) in file order.
    rows: Vec<(String, String)>,
}

/// Strips a table type prefix: `file:` or none for a plain table, `refile:` for
/// wildcards. Anything else (OpenDKIM's `db:`, `dsn:`, `ldap:`) is refused.
fn table_path(value: &str, allow_refile: bool) -> Result<(&str, bool), DkimError> {
    if let Some(p) = value.strip_prefix("refile:") {
        if allow_refile {
            return Ok((p, true));
        }
    } else if let Some(p) = value.strip_prefix("file:") {
        return Ok((p, false));
    } else if value.starts_with('/') {
        return Ok((value, false));
    }
    Err(DkimError::Param(format!(
        "{value}: only file tables (an absolute path, file:/path{}) are supported",
        if allow_refile { " or refile:/path" } else { "" }
    )))
}

fn read(path: &str) -> Result<String, DkimError> {
    std::fs::read_to_string(path).map_err(|source| DkimError::Io {
        path: path.to_string(),
        source,
    })
}

/// The meaningful lines: number (1-based) and the two whitespace-separated fields.
fn rows(path: &str, text: &str) -> Result<Vec<(usize, String, String)>, DkimError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(DkimError::Syntax {
                path: path.to_string(),
                line: i + 1,
                reason: "expected two fields: a key and a value".into(),
            });
        };
        out.push((i + 1, key.to_string(), value.to_string()));
    }
    Ok(out)
}

impl KeyTable {
    /// Reads the table named by rostfix_dkim_key_table.
    pub fn load(param: &str) -> Result<KeyTable, DkimError> {
        let (path, _) = table_path(param, false)?;
        Self::parse(path, &read(path)?)
    }

    pub fn parse(path: &str, text: &str) -> Result<KeyTable, DkimError> {
        let mut entries = HashMap::new();
        for (line, name, value) in rows(path, text)? {
            let mut parts = value.splitn(3, ':');
            let (Some(domain), Some(selector), Some(key_path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(DkimError::Syntax {
                    path: path.to_string(),
                    line,
                    reason: "expected domain:selector:keyfile".into(),
                });
            };
            if !key_path.starts_with('/') {
                return Err(DkimError::Syntax {
                    path: path.to_string(),
                    line,
                    reason:
                        "the key must be an absolute file name (inline key data is not supported)"
                            .into(),
                });
            }
            if domain.is_empty() || selector.is_empty() {
                return Err(DkimError::Syntax {
                    path: path.to_string(),
                    line,
                    reason: "empty domain or selector".into(),
                });
            }
            entries.insert(
                name,
                KeyTableEntry {
                    domain: domain.to_ascii_lowercase(),
                    selector: selector.to_string(),
                    key_path: key_path.to_string(),
                },
            );
        }
        Ok(KeyTable { entries })
    }
}

impl SigningTable {
    /// Reads the table named by rostfix_dkim_signing_table (`refile:` for wildcards).
    pub fn load(param: &str) -> Result<SigningTable, DkimError> {
        let (path, wildcard) = table_path(param, true)?;
        Self::parse(path, &read(path)?, wildcard)
    }

    pub fn parse(path: &str, text: &str, wildcard: bool) -> Result<SigningTable, DkimError> {
        let rows = rows(path, text)?
            .into_iter()
            .map(|(_, pattern, name)| (pattern.to_ascii_lowercase(), name))
            .collect();
        Ok(SigningTable { wildcard, rows })
    }

    /// Every key name the table refers to (checked against the KeyTable at start).
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        self.rows.iter().map(|(_, n)| n.as_str())
    }

    /// The key name for a From: address (`user@domain`, lowercased by the caller).
    pub fn lookup(&self, address: &str) -> Option<&str> {
        self.lookup_all(address).into_iter().next()
    }

    /// Every key name for a From: address, best match first, each once: refile rows
    /// in file order; otherwise `user@domain`, `domain`, each `.parent`, then `*`,
    /// and within one of those the rows in file order.
    pub fn lookup_all(&self, address: &str) -> Vec<&str> {
        let matching: Vec<&str> = if self.wildcard {
            self.rows
                .iter()
                .filter(|(p, _)| wildcard_match(p.as_bytes(), address.as_bytes()))
                .map(|(_, n)| n.as_str())
                .collect()
        } else {
            let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
            let mut keys = vec![address.to_string(), domain.to_string()];
            let mut rest = domain;
            while let Some((_, parent)) = rest.split_once('.') {
                keys.push(format!(".{parent}"));
                rest = parent;
            }
            keys.push("*".to_string());
            keys.iter()
                .flat_map(|k| {
                    self.rows
                        .iter()
                        .filter(move |(p, _)| p == k)
                        .map(|(_, n)| n.as_str())
                })
                .collect()
        };
        let mut names: Vec<&str> = Vec::with_capacity(matching.len());
        for name in matching {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// `*` matches any run of characters (OpenDKIM's refile patterns are globs made
/// into regular expressions; `*` is the only wildcard they use in practice). The
/// classic two-pointer glob: at most pattern x text steps whatever the stars, since
/// the text comes from the network.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the last `*` seen: where its pattern continues, and the text position it
    // currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p + 1, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            // Let the star swallow one more character and retry.
            p = sp;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table_lines() {
        let t = KeyTable::parse(
            "kt",
            "# comment\nmail._domainkey.example.com example.com:mail:/etc/k/mail.private\n\nk2 %:s2:/k2 # trailing\n",
        )
        .unwrap();
        let e = &t.entries["mail._domainkey.example.com"];
        assert_eq!(e.domain, "example.com");
        assert_eq!(e.selector, "mail");
        assert_eq!(e.key_path, "/etc/k/mail.private");
        assert_eq!(t.entries["k2"].domain, "%");
    }

    #[test]
    fn key_table_refuses_inline_keys_and_bad_lines() {
        assert!(KeyTable::parse("kt", "k example.com:s:MIIEvQIBADAN").is_err());
        assert!(KeyTable::parse("kt", "k example.com:s").is_err());
        assert!(KeyTable::parse("kt", "k").is_err());
    }

    #[test]
    fn refile_wildcards_in_file_order() {
        let t = SigningTable::parse(
            "st",
            "*@sub.example.com subkey\n*@example.com mainkey\n*@*.example.org orgkey\n",
            true,
        )
        .unwrap();
        assert_eq!(t.lookup("a@sub.example.com"), Some("subkey"));
        assert_eq!(t.lookup("b@example.com"), Some("mainkey"));
        assert_eq!(t.lookup("b@x.example.org"), Some("orgkey"));
        assert_eq!(t.lookup("b@example.org"), None);
        assert_eq!(t.lookup("b@evil-example.com"), None);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*", b""));
        assert!(wildcard_match(b"a*b*c", b"axxbyyc"));
        assert!(!wildcard_match(b"a*b*c", b"axxbyy"));
        assert!(wildcard_match(b"**@x", b"u@x"));
        assert!(!wildcard_match(b"*@x", b"u@xy"));
        // Many stars against a long hostile text stays fast (no backtracking blow-up).
        let text = "@".repeat(20_000) + "b";
        assert!(!wildcard_match(b"*@*@*@*@*a", text.as_bytes()));
    }

    #[test]
    fn every_match_in_order_for_multiple_signatures() {
        let refile = SigningTable::parse(
            "st",
            "*@example.com rsa\n*@example.com ed\n* fallback\n*@example.com rsa\n",
            true,
        )
        .unwrap();
        assert_eq!(
            refile.lookup_all("a@example.com"),
            vec!["rsa", "ed", "fallback"]
        );
        assert_eq!(refile.lookup_all("a@example.org"), vec!["fallback"]);
        let plain = SigningTable::parse(
            "st",
            "* any\nexample.com dom\nboss@example.com boss\nexample.com dom2\n",
            false,
        )
        .unwrap();
        assert_eq!(
            plain.lookup_all("boss@example.com"),
            vec!["boss", "dom", "dom2", "any"]
        );
        assert_eq!(plain.lookup("boss@example.com"), Some("boss"));
        assert!(plain.lookup_all("x@other.test") == vec!["any"]);
    }

    #[test]
    fn plain_table_address_then_domain_then_parents() {
        let t = SigningTable::parse(
            "st",
            "boss@example.com bosskey\nexample.com domkey\n.example.net parentkey\n",
            false,
        )
        .unwrap();
        assert_eq!(t.lookup("boss@example.com"), Some("bosskey"));
        assert_eq!(t.lookup("other@example.com"), Some("domkey"));
        assert_eq!(t.lookup("x@mail.example.net"), Some("parentkey"));
        assert_eq!(t.lookup("x@example.org"), None);
    }

    #[test]
    fn table_types() {
        assert!(table_path("/etc/x", true).is_ok());
        assert!(table_path("file:/etc/x", false).is_ok());
        assert_eq!(table_path("refile:/etc/x", true).unwrap(), ("/etc/x", true));
        assert!(table_path("refile:/etc/x", false).is_err());
        assert!(table_path("dsn:mysql://x", true).is_err());
    }
}
