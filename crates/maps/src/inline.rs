//! `inline:{ key=value, { key = value with spaces } }` and `static:value` /
//! `static:{ value with spaces }` tables, whose contents are the table name itself.
//! inline keys are case-folded like other fixed-string tables.

use crate::error::MapError;
use crate::Map;
use std::collections::HashMap;

/// Strip one pair of outer braces and the white space inside them.
fn unbrace(text: &str) -> Option<&str> {
    text.trim()
        .strip_prefix('{')?
        .strip_suffix('}')
        .map(str::trim)
}

/// Split on commas and white space outside braces, as Postfix's `mystrtokq` does;
/// a braced group stays one token (braces included).
fn tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth = depth.checked_sub(1).ok_or("unbalanced '}'")?;
                cur.push(c);
            }
            ',' | ' ' | '\t' | '\r' | '\n' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if depth != 0 {
        return Err("unbalanced '{'".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Parse the text after `inline:` into key/value pairs (keys folded, first wins).
pub fn parse_inline(text: &str) -> Result<HashMap<String, String>, String> {
    let body = unbrace(text).ok_or("syntax: inline:{name=value, ...}")?;
    let mut map = HashMap::new();
    for tok in tokens(body)? {
        let item = if tok.starts_with('{') {
            unbrace(&tok).ok_or_else(|| format!("bad item \"{tok}\""))?
        } else {
            tok.as_str()
        };
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("missing '=' after attribute name in \"{item}\""))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("empty key in \"{item}\""));
        }
        map.entry(k.to_lowercase())
            .or_insert_with(|| v.trim().to_string());
    }
    Ok(map)
}

/// `inline:{...}`.
pub struct InlineMap {
    spec: String,
    map: HashMap<String, String>,
}

impl InlineMap {
    /// Parse `name` (the part after `inline:`).
    pub fn open(spec: &str, name: &str) -> Result<InlineMap, MapError> {
        let map = parse_inline(name).map_err(|reason| MapError::BadSpec {
            spec: spec.to_string(),
            reason,
        })?;
        Ok(InlineMap {
            spec: spec.to_string(),
            map,
        })
    }
}

impl Map for InlineMap {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        Ok(self.map.get(&key.to_lowercase()).cloned())
    }
    fn spec(&self) -> &str {
        &self.spec
    }
    fn entries(&self) -> Option<Result<Vec<(String, String)>, MapError>> {
        let mut v: Vec<(String, String)> = self
            .map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort();
        Some(Ok(v))
    }
}

/// `static:value`: every key finds the value.
pub struct StaticMap {
    spec: String,
    value: String,
}

impl StaticMap {
    /// `name` is the part after `static:`; `{ ... }` allows white space.
    pub fn open(spec: &str, name: &str) -> Result<StaticMap, MapError> {
        let value = if name.trim_start().starts_with('{') {
            unbrace(name).ok_or_else(|| MapError::BadSpec {
                spec: spec.to_string(),
                reason: "unbalanced '{'".into(),
            })?
        } else {
            name
        };
        Ok(StaticMap {
            spec: spec.to_string(),
            value: value.to_string(),
        })
    }
}

impl Map for StaticMap {
    fn lookup(&self, _key: &str) -> Result<Option<String>, MapError> {
        Ok(Some(self.value.clone()))
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

    #[test]
    fn inline_forms() {
        let m = parse_inline("{ Foo=bar, baz=qux,{ key = value with spaces } ,x=}").unwrap();
        assert_eq!(m.get("foo").map(String::as_str), Some("bar"));
        assert_eq!(m.get("key").map(String::as_str), Some("value with spaces"));
        assert_eq!(m.get("x").map(String::as_str), Some(""));
        // "baz = qux" outside braces splits into "baz", "=", "qux": an error in Postfix.
        assert!(parse_inline("{ baz = qux }").is_err());
        assert!(parse_inline("{a=b").is_err());
        assert!(parse_inline("a=b").is_err());
        assert!(parse_inline("{ a }").is_err());
    }

    #[test]
    fn inline_map_folds_keys() {
        let m = InlineMap::open("inline:{A=1}", "{A=1}").unwrap();
        assert_eq!(m.lookup("a").unwrap().as_deref(), Some("1"));
        assert_eq!(m.lookup("b").unwrap(), None);
    }

    #[test]
    fn static_forms() {
        let m = StaticMap::open("static:OK", "OK").unwrap();
        assert_eq!(m.lookup("anything").unwrap().as_deref(), Some("OK"));
        let m = StaticMap::open("s", "{ two words }").unwrap();
        assert_eq!(m.lookup("x").unwrap().as_deref(), Some("two words"));
        assert!(StaticMap::open("s", "{ open").is_err());
    }

    proptest! {
        #[test]
        fn inline_never_panics(s in ".{0,80}") {
            let _ = parse_inline(&s);
        }
    }
}
