//! `tcp:host:port` tables (Postfix's tcp_table(5)): one line `get KEY` per lookup,
//! answered by `200 VALUE` (found), `500 text` (not found) or `400 text` (a lookup
//! error, so the caller defers); anything else is an error too. Key and value are
//! %XX-escaped: white space, non-printable characters and `%` itself.
//!
//! Keys are folded to lower case as for every fixed-string table. Reply lines are
//! limited to Postfix's 4096 bytes, every read and write by a 100 s timeout (Postfix's
//! values); a kept connection that fails is replaced once.

use crate::error::MapError;
use crate::netio::{read_line, KeptConn};
use crate::Map;
use std::time::Duration;

/// Longest reply line.
const MAX_LINE: usize = 4096;
/// Connect, read and write timeout.
const TIMEOUT: Duration = Duration::from_secs(100);

/// %XX-escape white space, non-printable bytes and `%`.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b == b'%' || b <= b' ' || b >= 0x7f {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Undo [`quote`]; None for a bad escape or a result that is not UTF-8.
pub fn unquote(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A tcp: table.
pub struct TcpMap {
    spec: String,
    conn: KeptConn,
}

impl TcpMap {
    /// Open `spec` whose name is `host:port`. Nothing is connected yet.
    pub fn open(spec: &str, name: &str) -> Result<TcpMap, MapError> {
        if name
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(MapError::BadSpec {
                spec: spec.to_string(),
                reason: "need tcp:host:port".into(),
            });
        }
        Ok(TcpMap {
            spec: spec.to_string(),
            conn: KeptConn::new(&format!("inet:{name}"), TIMEOUT),
        })
    }

    fn error(&self, reason: String) -> MapError {
        MapError::Lookup {
            table: self.spec.clone(),
            reason,
        }
    }

    /// One request line and reply line over the kept connection.
    fn ask(&self, request: &[u8]) -> Result<String, MapError> {
        self.conn
            .ask(request, |r| read_line(r, MAX_LINE))
            .map_err(|e| self.error(e))
    }
}

impl Map for TcpMap {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        let key = key.to_lowercase();
        if key.is_empty() {
            return Ok(None);
        }
        let line = self.ask(format!("get {}\n", quote(&key)).as_bytes())?;
        let (code, text) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match code {
            "200" => unquote(text)
                .map(Some)
                .ok_or_else(|| self.error(format!("bad %XX escape in reply: {line}"))),
            "500" => Ok(None),
            "400" => Err(self.error(format!(
                "server error: {}",
                unquote(text).unwrap_or_default()
            ))),
            _ => Err(self.error(format!("malformed reply: {line}"))),
        }
    }

    fn spec(&self) -> &str {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escaping() {
        assert_eq!(quote("a b%c\u{e9}"), "a%20b%25c%C3%A9");
        assert_eq!(unquote("a%20b%25c%C3%A9").as_deref(), Some("a b%c\u{e9}"));
        assert_eq!(unquote("bad%2"), None);
        assert_eq!(unquote("bad%zz"), None);
        assert!(TcpMap::open("t", "127.0.0.1:99").is_ok());
        assert!(TcpMap::open("t", "127.0.0.1").is_err());
    }

    proptest! {
        #[test]
        fn quote_roundtrips(s in ".{0,40}") {
            let q = quote(&s);
            prop_assert!(!q.contains(' ') && !q.contains('\n'));
            prop_assert_eq!(unquote(&q), Some(s));
        }

        #[test]
        fn unquote_never_panics(s in ".{0,40}") {
            let _ = unquote(&s);
        }
    }
}
