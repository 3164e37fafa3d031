//! Optional HTTP basic authentication of the /metrics endpoint
//! (rostfix_metrics_password_file: `user:password` lines, read as root before
//! confinement, as Prometheus's `basic_auth` sends them). Without the file the
//! endpoint is open, which is why it listens on loopback by default.

use std::path::Path;

/// The accepted `user:password` pairs.
#[derive(Debug, Clone, Default)]
pub struct Credentials(Vec<Vec<u8>>);

/// Why the password file is unusable (a start-up error naming the file).
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("rostfix_metrics_password_file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("rostfix_metrics_password_file {path}, line {line}: want user:password")]
    Syntax { path: String, line: usize },
    #[error("rostfix_metrics_password_file {path}: no user:password line")]
    Empty { path: String },
}

impl Credentials {
    /// None for an empty parameter (no authentication).
    pub fn load(path: &str) -> Result<Option<Credentials>, AuthFileError> {
        let path = path.trim();
        if path.is_empty() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(Path::new(path)).map_err(|source| AuthFileError::Read {
                path: path.to_string(),
                source,
            })?;
        let mut pairs = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !line.contains(':') {
                return Err(AuthFileError::Syntax {
                    path: path.to_string(),
                    line: i + 1,
                });
            }
            pairs.push(line.as_bytes().to_vec());
        }
        if pairs.is_empty() {
            return Err(AuthFileError::Empty {
                path: path.to_string(),
            });
        }
        Ok(Some(Credentials(pairs)))
    }

    /// Whether the request head carries `Authorization: Basic` with a known pair.
    pub fn admits(&self, head: &str) -> bool {
        let Some(given) = head.lines().skip(1).find_map(|l| {
            let (name, value) = l.split_once(':')?;
            if !name.trim().eq_ignore_ascii_case("authorization") {
                return None;
            }
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| decode_base64(token.trim()))
                .flatten()
        }) else {
            return false;
        };
        // Every pair is compared in full, so the answer's timing does not tell how
        // much of a guess was right.
        self.0
            .iter()
            .fold(false, |found, pair| found | constant_time_eq(pair, &given))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 (RFC 4648 4), padding required, at most 4 KiB; None otherwise.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    if s.len() > 4096 {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(decode_base64("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64("Zg==").unwrap(), b"f");
        assert!(decode_base64("Zg=").is_none());
        assert!(decode_base64("Z=g=").is_none());
        assert!(decode_base64("Zm9v!mFy").is_none());
    }

    #[test]
    fn admits_only_known_pairs() {
        let c = Credentials(vec![b"prom:s3cret".to_vec()]);
        // "prom:s3cret"
        let ok = "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic cHJvbTpzM2NyZXQ=";
        assert!(c.admits(ok));
        assert!(!c.admits("GET /metrics HTTP/1.1\r\nHost: x"));
        // "prom:wrong"
        assert!(!c.admits("GET /metrics HTTP/1.1\r\nauthorization: basic cHJvbTp3cm9uZw=="));
        assert!(!c.admits("GET /metrics HTTP/1.1\r\nAuthorization: Bearer cHJvbTpzM2NyZXQ="));
    }
}
