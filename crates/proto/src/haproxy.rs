//! The HAProxy PROXY protocol (v1 text and v2 binary) that a load balancer sends before
//! the SMTP greeting when `smtpd_upstream_proxy_protocol = haproxy` (smtpd) or
//! `postscreen_upstream_proxy_protocol = haproxy` (postscreen): the real client's
//! address and port replace those of the socket, whose peer is only the proxy. One
//! parser for both daemons, so they accept and refuse exactly the same headers.
//!
//! Postfix's rules: only TCP over IPv4/IPv6 is accepted (v1 `UNKNOWN` would sidestep
//! address-based access control and is refused), a v2 `LOCAL` command keeps the
//! socket's own endpoints (the proxy's health check), TLVs are skipped, and a header
//! that does not parse ends the connection with Postfix's error text. Reads never go
//! past the header (what follows belongs to the SMTP session), are bounded by
//! [`MAX_V1`] bytes for a v1 line and [`MAX_HEADER`] for v2 and, in [`receive`], by the
//! daemon's *_upstream_proxy_timeout overall.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Postfix's HAPROXY_HEADER_MAX_LEN: the largest header read (a v2 header whose
/// length field says more is refused as short once this much has arrived).
pub const MAX_HEADER: usize = 536;

/// The longest v1 line the protocol allows, CRLF included ("PROXY TCP6" with two
/// full-length IPv6 addresses and ports): a line without LF by then is refused
/// without reading further.
pub const MAX_V1: usize = 107;

/// The twelve bytes that start a v2 header.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family and the 16-bit length.
const V2_FIXED: usize = 16;

/// The endpoints a header announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proxied {
    /// The header's length in bytes.
    pub len: usize,
    /// (client, server); None for a v2 LOCAL header (use the socket's endpoints).
    pub endpoints: Option<(SocketAddr, SocketAddr)>,
}

/// Why a header was refused; the texts are Postfix's, which administrators grep for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("short protocol header")]
    Short,
    #[error("unrecognized protocol header")]
    Unrecognized,
    #[error("unrecognized protocol version")]
    Version,
    #[error("short version 2 protocol header")]
    ShortV2,
    #[error("short address field")]
    ShortAddress,
    #[error("unsupported network protocol")]
    Network,
    #[error("bad command in proxy header")]
    Command,
    #[error("missing protocol header terminator")]
    NoTerminator,
    #[error("bad or missing protocol header")]
    V1Header,
    #[error("bad or missing protocol type")]
    V1Type,
    #[error("bad or missing client address")]
    ClientAddr,
    #[error("bad or missing server address")]
    ServerAddr,
    #[error("bad or missing client port")]
    ClientPort,
    #[error("bad or missing server port")]
    ServerPort,
}

/// Parses a complete header at the start of `buf` (bytes after it are ignored).
pub fn parse(buf: &[u8]) -> Result<Proxied, ProxyError> {
    if buf.starts_with(b"PROXY ") {
        parse_v1(buf)
    } else {
        parse_v2(buf)
    }
}

fn parse_v1(buf: &[u8]) -> Result<Proxied, ProxyError> {
    let end = buf
        .iter()
        .take(MAX_V1)
        .position(|&b| b == b'\n')
        .ok_or(ProxyError::NoTerminator)?;
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::V1Header)?;
    let mut words = line.split([' ', '\r']).filter(|w| !w.is_empty());
    if words.next() != Some("PROXY") {
        return Err(ProxyError::V1Header);
    }
    let v6 = match words.next() {
        Some("TCP4") => false,
        Some("TCP6") => true,
        _ => return Err(ProxyError::V1Type),
    };
    let client = v1_addr(words.next(), v6).ok_or(ProxyError::ClientAddr)?;
    let server = v1_addr(words.next(), v6).ok_or(ProxyError::ServerAddr)?;
    let client_port = v1_port(words.next()).ok_or(ProxyError::ClientPort)?;
    let server_port = v1_port(words.next()).ok_or(ProxyError::ServerPort)?;
    Ok(Proxied {
        len: end + 1,
        endpoints: Some((
            SocketAddr::new(client, client_port),
            SocketAddr::new(server, server_port),
        )),
    })
}

/// An address of the announced family (an IPv4 address under TCP6 is refused, as
/// Postfix's family check does).
fn v1_addr(word: Option<&str>, v6: bool) -> Option<IpAddr> {
    let word = word?;
    if v6 {
        word.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        word.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// A decimal port, 0 to 65535, digits only.
fn v1_port(word: Option<&str>) -> Option<u16> {
    let word = word?;
    if word.is_empty() || word.len() > 5 || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    word.parse().ok()
}

fn parse_v2(buf: &[u8]) -> Result<Proxied, ProxyError> {
    // A mismatch in what arrived is decided before the length, so that a client
    // speaking SMTP straight at us is told apart from a truncated header.
    let seen = buf.len().min(V2_SIGNATURE.len());
    if buf[..seen] != V2_SIGNATURE[..seen] {
        return Err(ProxyError::Unrecognized);
    }
    if buf.len() < V2_FIXED {
        return Err(ProxyError::Short);
    }
    if buf[12] & 0xf0 != 0x20 {
        return Err(ProxyError::Version);
    }
    let body_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = V2_FIXED + body_len;
    if buf.len() < len {
        return Err(ProxyError::ShortV2);
    }
    let body = &buf[V2_FIXED..len];
    match buf[12] & 0x0f {
        // LOCAL: the proxy speaks for itself (health checks).
        0x0 => Ok(Proxied {
            len,
            endpoints: None,
        }),
        0x1 => {
            let endpoints = match buf[13] {
                // AF_INET, STREAM
                0x11 => {
                    let a: &[u8; 12] = body
                        .get(..12)
                        .and_then(|s| s.try_into().ok())
                        .ok_or(ProxyError::ShortAddress)?;
                    let ip =
                        |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
                    let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
                    (
                        SocketAddr::new(ip(0), port(8)),
                        SocketAddr::new(ip(4), port(10)),
                    )
                }
                // AF_INET6, STREAM
                0x21 => {
                    let a: &[u8; 36] = body
                        .get(..36)
                        .and_then(|s| s.try_into().ok())
                        .ok_or(ProxyError::ShortAddress)?;
                    let ip = |o: usize| {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(&a[o..o + 16]);
                        IpAddr::V6(Ipv6Addr::from(b))
                    };
                    let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
                    (
                        SocketAddr::new(ip(0), port(32)),
                        SocketAddr::new(ip(16), port(34)),
                    )
                }
                _ => return Err(ProxyError::Network),
            };
            Ok(Proxied {
                len,
                endpoints: Some(endpoints),
            })
        }
        _ => Err(ProxyError::Command),
    }
}

/// Reads exactly one header's bytes from `r` and never more: the first six bytes tell
/// v1 from v2; v2 then says its length, v1 ends at LF. At most [`MAX_V1`] bytes of a
/// v1 line and [`MAX_HEADER`] of a v2 header.
/// Returns what was read (the parse error, if any, is [`parse`]'s to find).
pub fn collect<R: Read>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 6];
    r.read_exact(&mut buf)?;
    if buf == b"PROXY " {
        let mut byte = [0u8; 1];
        while buf.len() < MAX_V1 && buf.last() != Some(&b'\n') {
            r.read_exact(&mut byte)?;
            buf.push(byte[0]);
        }
        return Ok(buf);
    }
    if buf[..] != V2_SIGNATURE[..6] {
        return Ok(buf);
    }
    buf.resize(V2_FIXED, 0);
    r.read_exact(&mut buf[6..])?;
    if buf[..12] != V2_SIGNATURE[..] {
        return Ok(buf);
    }
    let body = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let want = (V2_FIXED + body).min(MAX_HEADER);
    buf.resize(want, 0);
    r.read_exact(&mut buf[V2_FIXED..])?;
    Ok(buf)
}

/// Why no endpoints came from the proxy; Display is Postfix's warning text.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("haproxy read: timeout error")]
    Timeout,
    #[error("haproxy read: EOF")]
    Eof,
    #[error("haproxy read: {0}")]
    Io(io::Error),
    #[error("haproxy read: {error}: {shown}")]
    Bad { error: ProxyError, shown: String },
}

/// A socket read whose every call is bounded by what is left until `deadline`, so a
/// proxy trickling bytes cannot hold the process past the upstream proxy timeout.
struct DeadlineReader<'a> {
    stream: &'a mut TcpStream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Reads and parses the header within `timeout`; the caller restores the socket's
/// read timeout afterwards.
pub fn receive(stream: &mut TcpStream, timeout: Duration) -> Result<Proxied, ReceiveError> {
    let mut reader = DeadlineReader {
        stream,
        deadline: Instant::now() + timeout,
    };
    let buf = collect(&mut reader).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ReceiveError::Eof,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ReceiveError::Timeout,
        _ => ReceiveError::Io(e),
    })?;
    parse(&buf).map_err(|error| ReceiveError::Bad {
        error,
        shown: escape(&buf),
    })
}

use crate::log_escape::log_escape as escape;

#[cfg(test)]
#[path = "haproxy_tests.rs"]
mod tests;
