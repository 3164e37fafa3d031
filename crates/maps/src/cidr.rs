//! `cidr:` tables (cidr_table(5)): `network/prefix result` or a bare address, IPv4 and
//! IPv6 (optionally in `[ ]`), `!` to negate a pattern; the first match wins. Host bits
//! set below the prefix are an error, as in Postfix. A key that is not an IP address
//! matches nothing. `if pattern` ... `endif` blocks (Postfix 3.2) nest; a rule of the
//! other address family never matches, negated or not.

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Rule(Rule),
    If { cond: Rule, body: Vec<Node> },
}

/// An open `if` block while parsing: condition and line (None at top level), body.
type Block = (Option<(Rule, usize)>, Vec<Node>);

/// A parsed cidr table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrTable {
    nodes: Vec<Node>,
}

impl Rule {
    fn matches(&self, key_bits: u128, key_width: u8) -> bool {
        let (net_bits, width) = bits(self.net);
        width == key_width && (key_bits & mask(width, self.prefix) == net_bits) != self.negate
    }
}

fn find_in(nodes: &[Node], key_bits: u128, key_width: u8) -> Option<String> {
    for node in nodes {
        match node {
            Node::Rule(r) if r.matches(key_bits, key_width) => return Some(r.result.clone()),
            Node::If { cond, body } if cond.matches(key_bits, key_width) => {
                if let Some(found) = find_in(body, key_bits, key_width) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
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
        let err = |line: usize, reason: String| MapError::Syntax {
            path: path.to_path_buf(),
            line,
            reason,
        };
        // Open `if` blocks: (condition, its line, body so far); the bottom is the top level.
        let mut stack: Vec<Block> = vec![(None, Vec::new())];
        for l in logical_lines(bytes) {
            let (word, rest) = match l.text.find(char::is_whitespace) {
                Some(p) => (&l.text[..p], l.text[p..].trim()),
                None => (l.text.as_str(), ""),
            };
            if word.eq_ignore_ascii_case("endif") {
                if !rest.is_empty() || stack.len() == 1 {
                    return Err(err(l.line, "ENDIF without matching IF".into()));
                }
                if let Some((Some((cond, _)), body)) = stack.pop() {
                    if let Some(top) = stack.last_mut() {
                        top.1.push(Node::If { cond, body });
                    }
                }
                continue;
            }
            let is_if = word.eq_ignore_ascii_case("if");
            let (pat, result) = if is_if {
                match rest.find(char::is_whitespace) {
                    Some(_) => return Err(err(l.line, "garbage after IF pattern".into())),
                    None => (rest, ""),
                }
            } else {
                (word, rest)
            };
            let (negate, pat) = match pat.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, pat),
            };
            let (net, prefix) = parse_pattern(pat).map_err(|r| err(l.line, r))?;
            if result.is_empty() && !is_if {
                return Err(err(l.line, "no lookup result".into()));
            }
            let rule = Rule {
                net,
                prefix,
                negate,
                result: result.to_string(),
            };
            if is_if {
                stack.push((Some((rule, l.line)), Vec::new()));
            } else if let Some(top) = stack.last_mut() {
                top.1.push(Node::Rule(rule));
            }
        }
        if stack.len() > 1 {
            let line = stack.last().and_then(|s| s.0.as_ref()).map_or(0, |c| c.1);
            return Err(err(line, "IF has no matching ENDIF".into()));
        }
        let nodes = stack.pop().map(|s| s.1).unwrap_or_default();
        Ok(CidrTable { nodes })
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
        find_in(&self.nodes, key_bits, key_width)
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
    fn if_endif_blocks() {
        let t = table(
            "if 10.0.0.0/8\n!10.1.0.0/16 ten-not-one\nendif\nif !192.168.0.0/16\n0.0.0.0/0 v4\nendif\n",
        );
        assert_eq!(t.find("10.2.0.1").as_deref(), Some("ten-not-one"));
        assert_eq!(t.find("10.1.0.1").as_deref(), Some("v4"));
        assert_eq!(t.find("192.168.1.1"), None);
        assert_eq!(t.find("2001:db8::1"), None);
        assert!(CidrTable::parse(b"if 10.0.0.0/8\n", Path::new("t")).is_err());
        assert!(CidrTable::parse(b"endif\n", Path::new("t")).is_err());
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
