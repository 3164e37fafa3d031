//! `socketmap:inet:host:port:name` and `socketmap:unix:/path:name` tables: Sendmail's
//! socketmap protocol (Postfix's socketmap_table(5)). Each request is a netstring
//! `name key`; the reply a netstring `OK value`, `NOTFOUND `, or `TEMP`/`TIMEOUT`/
//! `PERM reason`, the last three being lookup errors (the caller defers).
//!
//! Like Postfix, the table counts as a pattern table (the server does its own
//! matching), so address lookups send the full address only, and keys are sent as
//! given. Replies are bounded by Postfix's socketmap_max_reply_size default (100000
//! bytes) and every read and write by a timeout.

use crate::error::MapError;
use crate::netio::KeptConn;
use crate::Map;
use std::io::{self, BufRead};
use std::time::Duration;

/// Longest reply accepted (Postfix's socketmap_max_reply_size default).
pub const MAX_REPLY: usize = 100_000;
/// Connect, read and write timeout (Postfix's socketmap timeout default, 100 s).
const TIMEOUT: Duration = Duration::from_secs(100);

/// Encode `data` as a netstring (`len:data,`).
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.push(b',');
    out
}

/// Read one netstring of at most `limit` bytes.
pub fn decode<R: BufRead>(r: &mut R, limit: usize) -> io::Result<Vec<u8>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut len: usize = 0;
    let mut digits = 0;
    loop {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        match b[0] {
            d @ b'0'..=b'9' => {
                digits += 1;
                len = len
                    .checked_mul(10)
                    .and_then(|l| l.checked_add(usize::from(d - b'0')))
                    .filter(|&l| l <= limit)
                    .ok_or_else(|| bad("netstring longer than the reply size limit"))?;
            }
            b':' if digits > 0 => break,
            _ => return Err(bad("netstring: bad length")),
        }
    }
    let mut data = vec![0u8; len + 1];
    r.read_exact(&mut data)?;
    if data.pop() != Some(b',') {
        return Err(bad("netstring: missing ','"));
    }
    Ok(data)
}

/// A socketmap: table.
pub struct SocketMap {
    spec: String,
    name: String,
    conn: KeptConn,
}

impl SocketMap {
    /// Open `spec`, whose name part `rest` is `inet:host:port:name` or
    /// `unix:/path:name`. Nothing is connected yet.
    pub fn open(spec: &str, rest: &str) -> Result<SocketMap, MapError> {
        let bad = |reason: &str| MapError::BadSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let Some((endpoint, name)) = rest.rsplit_once(':') else {
            return Err(bad(
                "need socketmap:inet:host:port:name or socketmap:unix:path:name",
            ));
        };
        if name.is_empty() || !(endpoint.starts_with("inet:") || endpoint.starts_with("unix:")) {
            return Err(bad(
                "need socketmap:inet:host:port:name or socketmap:unix:path:name",
            ));
        }
        Ok(SocketMap {
            spec: spec.to_string(),
            name: name.to_string(),
            conn: KeptConn::new(endpoint, TIMEOUT),
        })
    }

    fn error(&self, reason: String) -> MapError {
        MapError::Lookup {
            table: self.spec.clone(),
            reason,
        }
    }

    /// One request and reply over the kept connection.
    fn ask(&self, request: &[u8]) -> Result<Vec<u8>, MapError> {
        self.conn
            .ask(request, |r| decode(r, MAX_REPLY))
            .map_err(|e| self.error(e))
    }
}

impl Map for SocketMap {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        if key.is_empty() {
            return Ok(None);
        }
        let reply = self.ask(&encode(format!("{} {key}", self.name).as_bytes()))?;
        let reply =
            String::from_utf8(reply).map_err(|_| self.error("reply is not UTF-8".into()))?;
        let (status, text) = reply.split_once(' ').unwrap_or((reply.as_str(), ""));
        match status {
            "OK" => Ok(Some(text.to_string())),
            "NOTFOUND" => Ok(None),
            "TEMP" | "TIMEOUT" | "PERM" => Err(self.error(format!("{status} {text}"))),
            _ => Err(self.error(format!("malformed reply: {reply}"))),
        }
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
    fn netstrings() {
        assert_eq!(encode(b"map key"), b"7:map key,");
        let mut r = io::Cursor::new(b"5:OK hi,0:,".to_vec());
        assert_eq!(decode(&mut r, 100).unwrap_or_default(), b"OK hi");
        assert_eq!(decode(&mut r, 100).unwrap_or_default(), b"");
        for bad in [
            &b"5:OK hi;"[..],
            b":x,",
            b"x:",
            b"3:ab",
            b"999999999999999999999999:",
        ] {
            assert!(decode(&mut io::Cursor::new(bad.to_vec()), 100).is_err());
        }
        assert!(decode(&mut io::Cursor::new(b"101:".to_vec()), 100).is_err());
    }

    #[test]
    fn specs() {
        assert!(SocketMap::open("s", "inet:127.0.0.1:9999:senders").is_ok());
        assert!(SocketMap::open("s", "unix:/run/sock:x").is_ok());
        assert!(SocketMap::open("s", "inet:127.0.0.1:9999:").is_err());
        assert!(SocketMap::open("s", "tcp:x:1:y").is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&mut io::Cursor::new(input), 32);
        }

        #[test]
        fn roundtrip(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let enc = encode(&data);
            prop_assert_eq!(decode(&mut io::Cursor::new(enc), 1000).unwrap_or_default(), data);
        }
    }
}
