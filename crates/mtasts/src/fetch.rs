//! The bounded HTTPS exchanges of the TLS reporting and policy services: the policy
//! fetch (RFC 8461 section 3.3: `GET /.well-known/mta-sts.txt` from `mta-sts.DOMAIN`)
//! and the TLS report upload (RFC 8460 section 5.3: `POST` of the gzipped report to
//! an `https:` rua). The certificate is validated for the host name with WebPKI
//! (rustls; CA roots from a configured file or the system store); HTTP/1.1 is written
//! and read here because each exchange is one small request and one bounded answer.
//!
//! Bounds: the whole exchange (connect, handshake, request, answer) within one
//! deadline; at most [`MAX_HEADER`] bytes of header and [`MAX_BODY`] of answer (RFC
//! 8461 asks senders to limit the policy size; a larger answer is refused as soon as
//! it is seen); redirects are never followed. Only `200` with `text/plain` is a
//! policy; any `2xx` accepts a report.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The policy body may be at most this long (64 KiB, as RFC 8461 section 3.3 suggests).
pub const MAX_BODY: usize = 64 * 1024;
/// Status line and headers.
pub const MAX_HEADER: usize = 16 * 1024;
/// Debian's bundle of the system CA store.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why no policy came back.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot read CA file {path}: {why}")]
    CaFile { path: String, why: String },
    #[error("bad policy host name {0}")]
    Name(String),
    #[error("no address for {0}")]
    NoAddress(String),
    #[error("connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("TLS or I/O error: {0}")]
    Io(std::io::Error),
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed HTTP answer: {0}")]
    Http(&'static str),
    #[error("HTTP status {0} (only 200 is a policy; redirects are not followed)")]
    Status(String),
    #[error("content type {0:?} is not text/plain")]
    ContentType(String),
    #[error("bad https URL {0:?}")]
    Url(String),
}

/// An `https://host[:port]/path` URL (a TLS report destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HttpsUrl {
    /// Parses the URL; user info, an IP literal host, a fragment or characters that
    /// would break the request line are refused.
    pub fn parse(url: &str) -> Result<HttpsUrl, FetchError> {
        let bad = || FetchError::Url(url.chars().take(200).collect());
        let rest = url
            .get(..8)
            .filter(|s| s.eq_ignore_ascii_case("https://"))
            .map(|_| &url[8..])
            .ok_or_else(bad)?;
        if rest.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') {
            return Err(bad());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || authority.starts_with('[') {
            return Err(bad());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (authority, 443),
        };
        if host.is_empty() || host.parse::<IpAddr>().is_ok() || port == 0 {
            return Err(bad());
        }
        Ok(HttpsUrl {
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port,
            path: path.to_string(),
        })
    }
}

/// Fetches policies: the TLS configuration (roots loaded once, before confinement),
/// the HTTPS port and the time bound.
pub struct Fetcher {
    config: Arc<ClientConfig>,
    pub port: u16,
    pub timeout: Duration,
}

impl Fetcher {
    /// Loads the CA roots: `ca_file` when given, else the system bundle.
    pub fn new(
        ca_file: Option<&Path>,
        port: u16,
        timeout: Duration,
    ) -> Result<Fetcher, FetchError> {
        let path = ca_file.unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
        let err = |why: String| FetchError::CaFile {
            path: path.display().to_string(),
            why,
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
            let cert = cert.map_err(|e| err(e.to_string()))?;
            roots.add(cert).map_err(|e| err(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(err("no certificates".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Fetcher {
            config: Arc::new(config),
            port,
            timeout,
        })
    }

    /// The policy body of `domain`, fetched from `mta-sts.DOMAIN` at one of `addrs`
    /// (its addresses, looked up by the caller) within the time bound.
    pub fn fetch(&self, domain: &str, addrs: &[IpAddr]) -> Result<Vec<u8>, FetchError> {
        let host = format!("mta-sts.{}", domain.trim_end_matches('.'));
        let request = format!(
            "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rostfix-mtasts\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        );
        policy_body(self.exchange(&host, self.port, addrs, request.as_bytes())?)
    }

    /// POSTs `body` as `content_type` to `url` at one of `addrs` within the time
    /// bound; Ok when the server answered 2xx.
    pub fn post(
        &self,
        url: &HttpsUrl,
        addrs: &[IpAddr],
        content_type: &str,
        body: &[u8],
    ) -> Result<(), FetchError> {
        let host_header = if url.port == 443 {
            url.host.clone()
        } else {
            format!("{}:{}", url.host, url.port)
        };
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: rostfix-tlsrpt\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            url.path,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let (head, _) = self.exchange(&url.host, url.port, addrs, &request)?;
        if head.status.starts_with('2') {
            Ok(())
        } else {
            Err(FetchError::Status(head.status))
        }
    }

    /// One request to `host` (certificate checked for that name) on `port` at one of
    /// `addrs`, and the bounded answer.
    fn exchange(
        &self,
        host: &str,
        port: u16,
        addrs: &[IpAddr],
        request: &[u8],
    ) -> Result<(Head, Vec<u8>), FetchError> {
        let deadline = Instant::now() + self.timeout;
        let host = host.to_string();
        let name =
            ServerName::try_from(host.clone()).map_err(|_| FetchError::Name(host.clone()))?;
        let mut last = FetchError::NoAddress(host.clone());
        let mut tcp = None;
        for ip in addrs {
            let left = remaining(deadline, self.timeout)?;
            let addr = SocketAddr::new(*ip, port);
            match TcpStream::connect_timeout(&addr, left) {
                Ok(t) => {
                    tcp = Some(t);
                    break;
                }
                Err(e) => last = FetchError::Connect(addr.to_string(), e),
            }
        }
        let tcp = tcp.ok_or(last)?;
        let conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| FetchError::Io(std::io::Error::other(e)))?;
        let mut tls = StreamOwned::new(conn, tcp);
        // The handshake step by step, each socket operation bounded by what is left
        // of the deadline (a server that trickles bytes cannot stretch it).
        loop {
            let left = remaining(deadline, self.timeout)?;
            tls.sock
                .set_write_timeout(Some(left))
                .and_then(|()| tls.sock.set_read_timeout(Some(left)))
                .map_err(FetchError::Io)?;
            if !tls.conn.is_handshaking() {
                break;
            }
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| io_error(e, self.timeout))?;
        }
        tls.write_all(request)
            .map_err(|e| io_error(e, self.timeout))?;
        tls.flush().map_err(|e| io_error(e, self.timeout))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(done) = complete(&buf)? {
                return done;
            }
            tls.sock
                .set_read_timeout(Some(remaining(deadline, self.timeout)?))
                .map_err(FetchError::Io)?;
            match tls.read(&mut chunk) {
                Ok(0) => return finish(&buf, true),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                // A server that closes without close_notify: what came is judged by
                // its Content-Length (a truncated body is refused by `finish`).
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return finish(&buf, true)
                }
                Err(e) => return Err(io_error(e, self.timeout)),
            }
            if buf.len() > MAX_HEADER + MAX_BODY + 64 {
                return Err(FetchError::TooLarge(MAX_BODY));
            }
        }
    }
}

fn remaining(deadline: Instant, total: Duration) -> Result<Duration, FetchError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(FetchError::Timeout(total))
    } else {
        Ok(left)
    }
}

fn io_error(e: std::io::Error, total: Duration) -> FetchError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => FetchError::Timeout(total),
        _ => FetchError::Io(e),
    }
}

/// The answer as read so far.
type Answer = (Head, Vec<u8>);

/// A policy answer's body: only `200` with `text/plain` is a policy.
fn policy_body((head, body): Answer) -> Result<Vec<u8>, FetchError> {
    if head.status != "200" {
        return Err(FetchError::Status(head.status));
    }
    let media = head.content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("text/plain") {
        return Err(FetchError::ContentType(
            head.content_type.chars().take(80).collect(),
        ));
    }
    Ok(body)
}

/// `Some` when `buf` already holds a whole answer (or enough to refuse it).
fn complete(buf: &[u8]) -> Result<Option<Result<Answer, FetchError>>, FetchError> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEADER {
            return Err(FetchError::TooLarge(MAX_HEADER));
        }
        return Ok(None);
    };
    let head = parse_head(&buf[..end])?;
    let body = &buf[end + 4..];
    match head.length {
        Some(n) if body.len() >= n => Ok(Some(Ok((head, body[..n].to_vec())))),
        _ if head.chunked => match dechunk(body)? {
            Some(b) => Ok(Some(Ok((head, b)))),
            None => Ok(None),
        },
        _ => Ok(None),
    }
}

/// The answer at end of stream.
fn finish(buf: &[u8], eof: bool) -> Result<Answer, FetchError> {
    let end = find(buf, b"\r\n\r\n").ok_or(FetchError::Http("no end of header"))?;
    let head = parse_head(&buf[..end])?;
    let body = &buf[end + 4..];
    if head.chunked {
        let b = dechunk(body)?.ok_or(FetchError::Http("truncated chunked body"))?;
        return Ok((head, b));
    }
    match head.length {
        Some(n) if body.len() >= n => Ok((head, body[..n].to_vec())),
        Some(_) => Err(FetchError::Http("body shorter than Content-Length")),
        None if eof => Ok((head, body.to_vec())),
        None => Err(FetchError::Http("no end of body")),
    }
}

/// The status line and the headers that matter.
#[derive(Debug)]
struct Head {
    /// The three-digit status code.
    status: String,
    content_type: String,
    length: Option<usize>,
    chunked: bool,
}

/// Reads the status and the headers that matter; a body announced larger than
/// [`MAX_BODY`] is refused before it is read.
fn parse_head(head: &[u8]) -> Result<Head, FetchError> {
    let text = std::str::from_utf8(head).map_err(|_| FetchError::Http("header not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        return Err(FetchError::Http("no HTTP/1.x status line"));
    }
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FetchError::Http("bad status code"));
    }
    let (mut length, mut chunked, mut ctype) = (None, false, None);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return Err(FetchError::Http("header line without colon"));
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| FetchError::Http("bad Content-Length"))?;
                if n > MAX_BODY {
                    return Err(FetchError::TooLarge(MAX_BODY));
                }
                length = Some(n);
            }
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            "content-type" => ctype = Some(v.to_string()),
            _ => {}
        }
    }
    Ok(Head {
        status: code.to_string(),
        content_type: ctype.unwrap_or_default(),
        length,
        chunked,
    })
}

/// Decodes a chunked body; `None` while incomplete.
fn dechunk(mut body: &[u8]) -> Result<Option<Vec<u8>>, FetchError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(body, b"\r\n") else {
            return Ok(None);
        };
        let size_text =
            std::str::from_utf8(&body[..eol]).map_err(|_| FetchError::Http("bad chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| FetchError::Http("bad chunk size"))?;
        if size == 0 {
            return Ok(Some(out));
        }
        if out.len() + size > MAX_BODY {
            return Err(FetchError::TooLarge(MAX_BODY));
        }
        let rest = &body[eol + 2..];
        if rest.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&rest[..size]);
        body = &rest[size + 2..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_answer_with_content_length() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(policy(a).unwrap(), b"hello");
    }

    /// The policy an answer holds, as `fetch` judges it.
    fn policy(a: &[u8]) -> Result<Vec<u8>, FetchError> {
        complete(a)?.expect("a whole answer").and_then(policy_body)
    }

    #[test]
    fn chunked_answers_are_decoded() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(policy(a).unwrap(), b"hello");
        let partial = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhe";
        assert!(complete(partial).unwrap().is_none());
    }

    #[test]
    fn redirects_wrong_types_and_big_bodies_are_refused() {
        let r = b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Type: text/plain\r\n\r\n";
        assert!(matches!(
            finish(r, true).and_then(policy_body),
            Err(FetchError::Status(s)) if s == "301"
        ));
        let h = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1\r\n\r\nx";
        assert!(matches!(policy(h), Err(FetchError::ContentType(_))));
        let big =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10485760\r\n\r\n";
        assert!(matches!(complete(big), Err(FetchError::TooLarge(_))));
        let chunk = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nA00000\r\n";
        assert!(matches!(complete(chunk), Err(FetchError::TooLarge(_))));
    }

    #[test]
    fn a_truncated_body_is_refused_at_end_of_stream() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 50\r\n\r\nshort";
        assert!(finish(a, true).is_err());
    }

    #[test]
    fn report_urls() {
        let u = HttpsUrl::parse("https://Reports.Example.COM:8443/v1/tlsrpt?x=1").unwrap();
        assert_eq!(
            u,
            HttpsUrl {
                host: "reports.example.com".into(),
                port: 8443,
                path: "/v1/tlsrpt?x=1".into()
            }
        );
        let u = HttpsUrl::parse("HTTPS://r.example").unwrap();
        assert_eq!((u.port, u.path.as_str()), (443, "/"));
        for bad in [
            "http://r.example/x",
            "https://user@r.example/",
            "https://r.example/a b",
            "https://r.example/a\r\nX: y",
            "https://192.0.2.1/x",
            "https://[2001:db8::1]/x",
            "https://r.example:0/",
            "https://r.example:99999/",
            "https:///x",
            "https://r.example/#frag",
        ] {
            assert!(HttpsUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn report_answers_are_any_2xx() {
        let ok = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
        let (head, _) = complete(ok).unwrap().unwrap().unwrap();
        assert_eq!(head.status, "202");
        assert!(complete(b"HTTP/1.1 2x0 Huh\r\n\r\n").is_err());
    }
}
