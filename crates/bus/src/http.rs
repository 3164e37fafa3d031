//! A minimal HTTP/1.1 client for a JSON REST API: one `POST` per connection
//! (`Connection: close`), plain TCP for the emulator on 127.0.0.1 or TLS (rustls,
//! WebPKI roots from a CA bundle) for the real service. Written here rather than
//! pulling in hyper/reqwest and an async runtime: the bus intake makes a few requests
//! a second with small bodies, one at a time.
//!
//! Bounds: the whole exchange (connect, handshake, request, answer) within one
//! deadline; the header at most [`MAX_HEAD`] bytes and the body at most the caller's
//! `max_body`, refused as soon as either is exceeded.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Status line and headers of an answer.
pub const MAX_HEAD: usize = 16 * 1024;
/// Debian's bundle of the system CA store.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad endpoint URL {0:?} (http://HOST[:PORT] or https://HOST[:PORT])")]
    Url(String),
    #[error("cannot read CA file {path}: {why}")]
    CaFile { path: String, why: String },
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
    Malformed(&'static str),
}

/// Where requests go: scheme, host and port of the endpoint URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `http://host[:port]` or `https://host[:port]` (a trailing `/` allowed;
    /// no path, user or query: the API paths are ours to add).
    pub fn parse(url: &str) -> Result<Endpoint, HttpError> {
        let bad = || HttpError::Url(url.to_string());
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '@', '?', '#', ' ']) {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (rest, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint {
            tls,
            host: host.to_string(),
            port,
        })
    }
}

/// A client for one endpoint: its addresses (resolved once, before the chroot hides
/// the resolver's files) and TLS configuration.
pub struct Client {
    endpoint: Endpoint,
    addrs: Vec<SocketAddr>,
    tls: Option<Arc<ClientConfig>>,
    pub timeout: Duration,
}

impl Client {
    /// Resolves the endpoint and, for https, loads the CA roots (`ca_file` or the
    /// system bundle).
    pub fn new(
        endpoint: Endpoint,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Client, HttpError> {
        let host = endpoint.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (host, endpoint.port)
            .to_socket_addrs()
            .map_err(|_| HttpError::NoAddress(endpoint.host.clone()))?
            .collect();
        if addrs.is_empty() {
            return Err(HttpError::NoAddress(endpoint.host.clone()));
        }
        let tls = if endpoint.tls {
            Some(Arc::new(tls_config(ca_file)?))
        } else {
            None
        };
        Ok(Client {
            endpoint,
            addrs,
            tls,
            timeout,
        })
    }

    /// `POST path` with a JSON body; returns the status and the body (at most
    /// `max_body` bytes), the whole exchange within the client's timeout.
    pub fn post_json(
        &self,
        path: &str,
        body: &[u8],
        bearer: Option<&str>,
        max_body: usize,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let deadline = Instant::now() + self.timeout;
        let tcp = self.connect(deadline)?;
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: rostfix-bus\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.host_header(),
            body.len()
        );
        if let Some(token) = bearer {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        let stream = Deadlined {
            tcp,
            deadline,
            total: self.timeout,
        };
        match &self.tls {
            None => exchange(stream, head.as_bytes(), body, max_body, self.timeout),
            Some(config) => {
                let name = ServerName::try_from(self.endpoint.host.clone())
                    .map_err(|_| HttpError::Url(self.endpoint.host.clone()))?;
                let conn = ClientConnection::new(config.clone(), name)
                    .map_err(|e| HttpError::Io(std::io::Error::other(e)))?;
                exchange(
                    StreamOwned::new(conn, stream),
                    head.as_bytes(),
                    body,
                    max_body,
                    self.timeout,
                )
            }
        }
    }

    fn host_header(&self) -> String {
        let default = if self.endpoint.tls { 443 } else { 80 };
        if self.endpoint.port == default {
            self.endpoint.host.clone()
        } else {
            format!("{}:{}", self.endpoint.host, self.endpoint.port)
        }
    }

    fn connect(&self, deadline: Instant) -> Result<TcpStream, HttpError> {
        let mut last = HttpError::NoAddress(self.endpoint.host.clone());
        for addr in &self.addrs {
            let left = remaining(deadline, self.timeout)?;
            match TcpStream::connect_timeout(addr, left) {
                Ok(t) => return Ok(t),
                Err(e) => last = HttpError::Connect(addr.to_string(), e),
            }
        }
        Err(last)
    }
}

/// rustls client configuration with the roots of `ca_file` (or the system bundle).
fn tls_config(ca_file: Option<&Path>) -> Result<ClientConfig, HttpError> {
    let path = ca_file.unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
    let err = |why: String| HttpError::CaFile {
        path: path.display().to_string(),
        why,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
        roots
            .add(cert.map_err(|e| err(e.to_string()))?)
            .map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("no certificates".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A TCP stream whose every read and write is bounded by what is left of one
/// deadline, so a peer that trickles bytes cannot stretch the exchange.
struct Deadlined {
    tcp: TcpStream,
    deadline: Instant,
    total: Duration,
}

impl Deadlined {
    fn arm(&self) -> std::io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("timed out after {:?}", self.total),
            ));
        }
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.set_write_timeout(Some(left))
    }
}

impl Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.tcp.read(buf)
    }
}

impl Write for Deadlined {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.arm()?;
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

fn remaining(deadline: Instant, total: Duration) -> Result<Duration, HttpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(HttpError::Timeout(total))
    } else {
        Ok(left)
    }
}

fn io_error(e: std::io::Error, total: Duration) -> HttpError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => HttpError::Timeout(total),
        _ => HttpError::Io(e),
    }
}

/// Sends the request on `stream` and reads the answer.
fn exchange<S: Read + Write>(
    mut stream: S,
    head: &[u8],
    body: &[u8],
    max_body: usize,
    total: Duration,
) -> Result<(u16, Vec<u8>), HttpError> {
    let io = |e| io_error(e, total);
    stream.write_all(head).map_err(io)?;
    stream.write_all(body).map_err(io)?;
    stream.flush().map_err(io)?;
    read_answer(&mut BufReader::new(stream), max_body, total)
}

/// Reads one line (ending in LF) of at most `max` bytes, CR LF removed.
fn read_line<R: BufRead>(r: &mut R, max: usize, total: Duration) -> Result<String, HttpError> {
    let mut line = Vec::new();
    let n = r
        .take(max as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| io_error(e, total))?;
    if n > max {
        return Err(HttpError::TooLarge(max));
    }
    if !line.ends_with(b"\n") {
        return Err(HttpError::Malformed("connection closed in the header"));
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| HttpError::Malformed("header not UTF-8"))
}

/// Parses an HTTP/1.x answer: status, then the body by Content-Length, chunked
/// transfer coding, or up to the end of the connection.
pub fn read_answer<R: BufRead>(
    r: &mut R,
    max_body: usize,
    total: Duration,
) -> Result<(u16, Vec<u8>), HttpError> {
    let mut head_left = MAX_HEAD;
    let status_line = read_line(r, head_left, total)?;
    head_left = head_left.saturating_sub(status_line.len() + 2);
    let mut parts = status_line.split(' ');
    if !parts.next().unwrap_or("").starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("no HTTP/1.x status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or(HttpError::Malformed("bad status code"))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        let line = read_line(r, head_left, total)?;
        head_left = head_left.saturating_sub(line.len() + 2);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("header line without colon"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value
                .parse()
                .map_err(|_| HttpError::Malformed("bad Content-Length"))?;
            if n > max_body {
                return Err(HttpError::TooLarge(max_body));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(r, 1024, total)?;
            let size_text = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| HttpError::Malformed("bad chunk size"))?;
            if size == 0 {
                break;
            }
            if body.len().saturating_add(size) > max_body {
                return Err(HttpError::TooLarge(max_body));
            }
            read_exact_into(r, &mut body, size, total)?;
            if !read_line(r, 2, total)?.is_empty() {
                return Err(HttpError::Malformed("chunk longer than its size"));
            }
        }
    } else if let Some(n) = length {
        read_exact_into(r, &mut body, n, total)?;
    } else {
        let n = r
            .take(max_body as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| io_error(e, total))?;
        if n > max_body {
            return Err(HttpError::TooLarge(max_body));
        }
    }
    Ok((status, body))
}

fn read_exact_into<R: Read>(
    r: &mut R,
    body: &mut Vec<u8>,
    n: usize,
    total: Duration,
) -> Result<(), HttpError> {
    let start = body.len();
    let got = r
        .take(n as u64)
        .read_to_end(body)
        .map_err(|e| io_error(e, total))?;
    if got < n {
        body.truncate(start);
        return Err(HttpError::Malformed("body shorter than announced"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(raw: &[u8], max: usize) -> Result<(u16, Vec<u8>), HttpError> {
        read_answer(&mut &raw[..], max, Duration::from_secs(1))
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:8085").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port), (false, "127.0.0.1", 8085));
        let e = Endpoint::parse("https://pubsub.googleapis.com/").unwrap();
        assert_eq!((e.tls, e.port), (true, 443));
        let e = Endpoint::parse("http://[::1]:9").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("[::1]", 9));
        for bad in [
            "ftp://x",
            "http://",
            "https://x/v1",
            "http://x:port",
            "http://u@x",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_length_chunked_and_to_the_end() {
        let (s, b) = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 10).unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"{}"[..]));
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let (s, b) = answer(raw, 10).unwrap();
        assert_eq!((s, b.as_slice()), (404, &b"abcde"[..]));
        let (s, b) = answer(b"HTTP/1.0 200 OK\r\n\r\nall of it", 10).unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"all of it"[..]));
    }

    #[test]
    fn bounds_and_malformed_answers() {
        assert!(matches!(
            answer(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", 10),
            Err(HttpError::TooLarge(10))
        ));
        assert!(matches!(
            answer(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n",
                10
            ),
            Err(HttpError::TooLarge(10))
        ));
        assert!(matches!(
            answer(b"HTTP/1.1 200 OK\r\n\r\n0123456789X", 10),
            Err(HttpError::TooLarge(10))
        ));
        assert!(matches!(
            answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 10),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            answer(b"SMTP 220\r\n\r\n", 10),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            answer(b"HTTP/1.1 200 OK\r\nX", 10),
            Err(HttpError::Malformed(_))
        ));
        let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(
            answer(long.as_bytes(), 10),
            Err(HttpError::TooLarge(_))
        ));
    }
}
