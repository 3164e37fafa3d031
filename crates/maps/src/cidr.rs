//! `cidr:` tables (cidr_table(5)): `network/prefix result` or a bare address, IPv4 and
//! IPv6 (optionally in `[ ]`), `!` to negate a pattern; the first match wins. Host bits
//! set below the prefix are an error, as in Postfix. A key that is not an IP address
//! matches nothing. (Postfix 3.2's `if`/`endif` in cidr tables is not supported yet.)

use crate::error::MapError;
use crate::reload::Watched;
use crate::source::logical_lines;
use crate::Map;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    net: IpAddr,
    prefix: u8,
    negate: bool,
    result: String,
}

/// A parsed cidr table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrTable {
    rules: Vec<Rule>,
}

fn strip_brackets(s: &str) -> &str {
    s.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(s)
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn mask(width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        let full = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        full & !((1u128 << (width - prefix)) - 1) & full
    }
}

fn parse_pattern(pat: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = match pat.rsplit_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (pat, None),
    };
    let addr = strip_brackets(addr);
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("bad address pattern: \"{pat}\""))?;
    let width = bits(ip).1;
    let prefix = match prefix {
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= width)
            .ok_or_else(|| format!("bad net/mask pattern: \"{pat}\""))?,
        None => width,
    };
    if bits(ip).0 & !mask(width, prefix) != 0 {
        return Err(format!("non-null host address bits in \"{pat}\""));
    }
    Ok((ip, prefix))
}

impl CidrTable {
    /// Parse table text; `path` only names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<CidrTable, MapError> {
        let mut rules = Vec::new();
        for l in logical_lines(bytes) {
            let (pat, result) = match l.text.find(char::is_whitespace) {
                Some(p) => (&l.text[..p], l.text[p..].trim()),
                None => (l.text.as_str(), ""),
            };
            let (negate, pat) = match pat.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, pat),
            };
            let (net, prefix) = parse_pattern(pat).map_err(|reason| MapError::Syntax {
                path: path.to_path_buf(),
                line: l.line,
                reason,
            })?;
            if result.is_empty() {
                return Err(MapError::Syntax {
                    path: path.to_path_buf(),
                    line: l.line,
                    reason: "no lookup result".into(),
                });
            }
            rules.push(Rule {
                net,
                prefix,
                negate,
                result: result.to_string(),
            });
        }
        Ok(CidrTable { rules })
    }

    /// Result of the first rule matching `key` (an IP address, brackets allowed).
    pub fn find(&self, key: &str) -> Option<String> {
        let ip: IpAddr = strip_brackets(key.trim()).parse().ok()?;
        // An IPv4-mapped IPv6 client address is matched as the IPv4 address it is.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (key_bits, key_width) = bits(ip);
        self.rules
            .iter()
            .find(|r| {
                let (net_bits, width) = bits(r.net);
                // A rule of the other address family never matches, negated or not
                // (as in Postfix's cidr_match).
                width == key_width && (key_bits & mask(width, r.prefix) == net_bits) != r.negate
            })
            .map(|r| r.result.clone())
    }
}

/// `cidr:FILE`, re-read when FILE changes.
pub struct CidrMap {
    spec: String,
    table: Watched<CidrTable>,
}

impl CidrMap {
    /// Read `path` now.
    pub fn open(spec: &str, path: &Path) -> Result<CidrMap, MapError> {
        let p: PathBuf = path.to_path_buf();
        let table = Watched::new(
            vec![p.clone()],
            Box::new(move || {
                let bytes = std::fs::read(&p).map_err(|e| MapError::io(&p, e))?;
                CidrTable::parse(&bytes, &p)
            }),
        )?;
        Ok(CidrMap {
            spec: spec.to_string(),
            table,
        })
    }
}

impl Map for CidrMap {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        Ok(self.table.get()?.find(key))
    }
    fn spec(&self) -> &str {
        &self.spec
    }
    fn is_pattern(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(src: &str) -> CidrTable {
        CidrTable::parse(src.as_bytes(), Path::new("t")).unwrap()
    }

    #[test]
    fn ipv4_first_match() {
        let t = table(
            "# c\n192.168.1.0/24 inner\n192.168.0.0/16 outer\n10.1.2.3 host\n0.0.0.0/0 any4\n",
        );
        assert_eq!(t.find("192.168.1.77").as_deref(), Some("inner"));
        assert_eq!(t.find("192.168.200.1").as_deref(), Some("outer"));
        assert_eq!(t.find("10.1.2.3").as_deref(), Some("host"));
        assert_eq!(t.find("10.1.2.4").as_deref(), Some("any4"));
        assert_eq!(t.find("::1"), None);
        assert_eq!(t.find("not-an-ip"), None);
    }

    #[test]
    fn ipv6_and_mapped() {
        let t = table("[2001:db8::]/32 doc\n::1 loop\n!10.0.0.0/8 outside\n");
        assert_eq!(t.find("2001:db8:1::5").as_deref(), Some("doc"));
        assert_eq!(t.find("[::1]").as_deref(), Some("loop"));
        assert_eq!(t.find("2001:db9::1"), None);
        assert_eq!(t.find("::ffff:192.0.2.1").as_deref(), Some("outside"));
        assert_eq!(t.find("10.9.9.9"), None);
    }

    #[test]
    fn errors() {
        let e = CidrTable::parse(b"1.2.3.4/24 x\n", Path::new("/c"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/c, line 1: non-null host address bits"),
            "{e}"
        );
        assert!(CidrTable::parse(b"1.2.3.0/33 x\n", Path::new("t")).is_err());
        assert!(CidrTable::parse(b"bogus x\n", Path::new("t")).is_err());
        assert!(CidrTable::parse(b"1.2.3.4\n", Path::new("t")).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(t) = CidrTable::parse(&bytes, Path::new("t")) {
                let _ = t.find("192.0.2.1");
                let _ = t.find("2001:db8::1");
            }
        }
    }
}
