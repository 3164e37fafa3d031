//! Client connections of the socket-speaking tables (memcache, socketmap, tcp):
//! `inet:host:port`, `host:port` or `unix:/path`, opened with a connect timeout and
//! with read and write timeouts set, and a line reader that never buffers more than
//! a given number of bytes, so a slow or hostile server cannot hang or balloon a
//! lookup.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// An open stream to a table server.
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// A UNIX-domain socket.
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// Strip `[...]` from a host (Postfix writes `inet:[::1]:port`).
fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Connect to `endpoint` (`unix:/path`, `inet:host:port` or `host:port`) within
/// `timeout`, with `timeout` also set for every read and write.
pub fn connect(endpoint: &str, timeout: Duration) -> io::Result<Stream> {
    if let Some(path) = endpoint.strip_prefix("unix:") {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        return Ok(Stream::Unix(s));
    }
    let hostport = endpoint.strip_prefix("inet:").unwrap_or(endpoint);
    let Some((host, port)) = hostport.rsplit_once(':') else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{endpoint}: need host:port or unix:path"),
        ));
    };
    let port: u16 = port.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{endpoint}: bad port {port}"),
        )
    })?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
    for addr in (bare_host(host), port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                // Requests are one small write each; waiting for Nagle only adds delay.
                s.set_nodelay(true)?;
                return Ok(Stream::Tcp(s));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Read one line ending in `\n` of at most `limit` bytes (without the line end, a
/// trailing `\r` removed). A longer line, or the connection closing first, is an error.
pub fn read_line<R: BufRead>(r: &mut R, limit: usize) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(limit as u64 + 2)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by server",
        ));
    }
    if buf.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            if buf.len() > limit {
                format!("reply line longer than {limit} bytes")
            } else {
                "connection closed in mid-line".to_string()
            },
        ));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("reply line longer than {limit} bytes"),
        ));
    }
    String::from_utf8(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "reply is not UTF-8"))
}

/// A buffered connection: reads through the buffer, writes straight to the stream.
pub struct Conn {
    /// The buffered stream.
    pub reader: BufReader<Stream>,
}

impl Conn {
    /// Connect as [`connect`] does.
    pub fn open(endpoint: &str, timeout: Duration) -> io::Result<Conn> {
        Ok(Conn {
            reader: BufReader::new(connect(endpoint, timeout)?),
        })
    }

    /// Write all of `data`.
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let s = self.reader.get_mut();
        s.write_all(data)?;
        s.flush()
    }
}

/// One kept connection to a table server, shared by a table's lookups: opened on first
/// use, replaced once when a kept connection fails (the server may have closed an idle
/// one), dropped after any error so the next lookup starts afresh.
pub struct KeptConn {
    endpoint: String,
    timeout: Duration,
    conn: std::sync::Mutex<Option<Conn>>,
}

impl KeptConn {
    /// Nothing is connected until the first [`KeptConn::ask`].
    pub fn new(endpoint: &str, timeout: Duration) -> KeptConn {
        KeptConn {
            endpoint: endpoint.to_string(),
            timeout,
            conn: std::sync::Mutex::new(None),
        }
    }

    /// The endpoint, for error texts.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `request` and reads the reply with `read`; the error text names the
    /// endpoint.
    pub fn ask<T>(
        &self,
        request: &[u8],
        read: impl Fn(&mut BufReader<Stream>) -> io::Result<T>,
    ) -> Result<T, String> {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let had = guard.is_some();
        for attempt in 0..2 {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => guard.insert(
                    Conn::open(&self.endpoint, self.timeout)
                        .map_err(|e| format!("connect to {}: {e}", self.endpoint))?,
                ),
            };
            match conn.send(request).and_then(|()| read(&mut conn.reader)) {
                Ok(reply) => return Ok(reply),
                Err(e) => {
                    *guard = None;
                    if attempt == 1 || !had {
                        return Err(format!("{}: {e}", self.endpoint));
                    }
                }
            }
        }
        Err("no reply".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let mut r = io::Cursor::new(b"200 ok\r\nabc".to_vec());
        assert_eq!(read_line(&mut r, 100).unwrap_or_default(), "200 ok");
        assert!(read_line(&mut r, 100).is_err());
        let mut r = io::Cursor::new(vec![b'x'; 50]);
        assert!(read_line(&mut r, 10).is_err());
        let mut r = io::Cursor::new(b"0123456789\n".to_vec());
        assert_eq!(read_line(&mut r, 10).unwrap_or_default(), "0123456789");
        let mut r = io::Cursor::new(b"01234567890\n".to_vec());
        assert!(read_line(&mut r, 10).is_err());
    }
}
