//! The byte stream a session talks over: TCP or a UNIX-domain socket (LMTP), plain or
//! upgraded in place to TLS after STARTTLS. [`Transport`] is what the session needs
//! from it (per-stage deadlines, the upgrade), so unit tests drive the session with a
//! scripted fake.

use crate::tls::{self, HandshakeError, TlsInfo};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

/// What STARTTLS needs to run the handshake.
pub struct TlsStart<'a> {
    pub config: Arc<ClientConfig>,
    pub recorder: &'a Arc<tls::Recorder>,
    /// The server host name (or address), for the rustls `ServerName`.
    pub server: &'a str,
    pub timeout: Duration,
}

/// A byte stream whose reads and writes can be given a deadline per stage.
pub trait Transport: Read + Write {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()>;
    /// Upgrades a plain stream to TLS. Fakes and already-TLS streams refuse.
    fn start_tls(&mut self, _start: &TlsStart<'_>) -> Result<TlsInfo, HandshakeError> {
        Err(HandshakeError::Io(io::Error::other(
            "TLS is not available on this stream",
        )))
    }
}

/// A socket of either family.
pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        let t = Some(timeout.max(Duration::from_secs(1)));
        match self {
            Socket::Tcp(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
            Socket::Unix(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.flush(),
            Socket::Unix(s) => s.flush(),
        }
    }
}

/// A connection to a server: plain, TLS, or broken after a failed handshake.
pub enum Conn {
    Plain(Socket),
    Tls(Box<StreamOwned<ClientConnection, Socket>>),
    /// Only after a handshake failed half-way; every I/O then fails.
    Broken,
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "connection unusable after TLS failure",
    )
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Broken => Err(broken()),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Broken => Err(broken()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Broken => Err(broken()),
        }
    }
}

impl Transport for Conn {
    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.set_timeout(timeout),
            Conn::Tls(s) => s.sock.set_timeout(timeout),
            Conn::Broken => Err(broken()),
        }
    }

    fn start_tls(&mut self, start: &TlsStart<'_>) -> Result<TlsInfo, HandshakeError> {
        match std::mem::replace(self, Conn::Broken) {
            Conn::Plain(sock) => {
                sock.set_timeout(start.timeout)?;
                let (stream, info) =
                    tls::handshake(start.config.clone(), start.recorder, start.server, sock)?;
                *self = Conn::Tls(Box::new(stream));
                Ok(info)
            }
            other => {
                *self = other;
                Err(HandshakeError::Io(io::Error::other("TLS already active")))
            }
        }
    }
}
