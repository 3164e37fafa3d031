//! TLS for smtpd with rustls (ring provider): the smtpd_tls_* settings, the
//! `ServerConfig` over the chains tls_certs.rs loads (SNI included), and [`NetStream`], the connection
//! that starts plain and can be upgraded in place (STARTTLS, or at once in wrapper mode).
//!
//! Certificates are read once at process start, BEFORE confinement (the files are
//! usually outside the chroot and readable only by root). `rostfix reload` makes master
//! restart its children, so a reload picks up a renewed certificate: no in-process
//! reloading is needed.

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

/// smtpd_tls_security_level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityLevel {
    None,
    May,
    Encrypt,
}

/// Why the TLS settings or files are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("bad {name} value: {value}")]
    BadValue { name: &'static str, value: String },
    #[error("neither smtpd_tls_chain_files nor smtpd_tls_cert_file is set")]
    NoCertFile,
    #[error(transparent)]
    Certs(#[from] crate::tls_certs::CertError),
    #[error("no usable TLS protocol version left by {0}")]
    NoProtocols(&'static str),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error(transparent)]
    Ciphers(#[from] crate::tls_ciphers::CipherError),
    #[error(transparent)]
    Ca(#[from] crate::ccert::CaError),
}

/// The smtpd_tls_* parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub level: SecurityLevel,
    pub cert_file: String,
    pub key_file: String,
    /// smtpd_tls_chain_files: preferred over cert_file/key_file when set.
    pub chain_files: Vec<String>,
    /// tls_server_sni_maps (Postfix list of tables).
    pub sni_maps: String,
    pub wrappermode: bool,
    /// smtpd_tls_protocols (level may) or smtpd_tls_mandatory_protocols (encrypt).
    pub protocols: String,
    pub protocols_param: &'static str,
    /// smtpd_tls_(mandatory_)ciphers and the exclusion lists.
    pub ciphers: crate::tls_ciphers::CipherPolicy,
    /// smtpd_tls_ask_ccert, or smtpd_tls_req_ccert in effect.
    pub ask_ccert: bool,
    /// smtpd_tls_req_ccert with smtpd_tls_security_level=encrypt (Postfix ignores it
    /// otherwise, with a warning).
    pub req_ccert: bool,
    /// smtpd_tls_CAfile, smtpd_tls_CApath: the CAs client certificates chain to.
    pub ca_file: String,
    pub ca_path: String,
    /// smtpd_tls_fingerprint_digest.
    pub digest: crate::ccert::Digest,
}

/// What a STARTTLS handshake needs: the rustls configuration and, when client
/// certificates are asked for, the check that judges them.
pub struct TlsServer {
    pub config: Arc<ServerConfig>,
    pub ccert: Option<Arc<crate::ccert::CertCheck>>,
}

impl TlsSettings {
    /// Reads the parameters; the legacy smtpd_use_tls=yes means `may` and
    /// smtpd_enforce_tls=yes means `encrypt` when smtpd_tls_security_level is empty.
    pub fn from_config(cf: &rostfix_config::MainCf) -> Result<TlsSettings, TlsError> {
        let get = |name: &str| cf.get(name);
        let raw = get("smtpd_tls_security_level");
        let level = match raw.trim().to_ascii_lowercase().as_str() {
            "" if cf.get_bool("smtpd_enforce_tls") => SecurityLevel::Encrypt,
            "" if cf.get_bool("smtpd_use_tls") => SecurityLevel::May,
            "" | "none" => SecurityLevel::None,
            "may" => SecurityLevel::May,
            "encrypt" => SecurityLevel::Encrypt,
            _ => {
                return Err(TlsError::BadValue {
                    name: "smtpd_tls_security_level",
                    value: raw.trim().to_string(),
                })
            }
        };
        let (protocols_param, default) = match level {
            SecurityLevel::Encrypt => ("smtpd_tls_mandatory_protocols", ">=TLSv1.2"),
            _ => ("smtpd_tls_protocols", ">=TLSv1.2"),
        };
        let protocols = match get(protocols_param).trim() {
            "" => default.to_string(),
            p => p.to_string(),
        };
        // Checked now so a typo is a startup error, not a silent downgrade.
        parse_protocols(&protocols, protocols_param)?;
        let ciphers =
            crate::tls_ciphers::CipherPolicy::from_lookup(&get, level == SecurityLevel::Encrypt)?;
        let cert_file = get("smtpd_tls_cert_file").trim().to_string();
        let key_file = match get("smtpd_tls_key_file").trim() {
            // Postfix's default: smtpd_tls_key_file = $smtpd_tls_cert_file.
            "" => cert_file.clone(),
            k => k.to_string(),
        };
        let req = cf.get_bool("smtpd_tls_req_ccert");
        let req_ccert = req && level == SecurityLevel::Encrypt;
        if req && !req_ccert {
            log::warn!("Can't require client certs unless TLS is required");
        }
        let raw_digest = get("smtpd_tls_fingerprint_digest");
        let digest =
            crate::ccert::Digest::parse(&raw_digest).ok_or_else(|| TlsError::BadValue {
                name: "smtpd_tls_fingerprint_digest",
                value: raw_digest.trim().to_string(),
            })?;
        Ok(TlsSettings {
            ask_ccert: req_ccert || cf.get_bool("smtpd_tls_ask_ccert"),
            req_ccert,
            ca_file: get("smtpd_tls_CAfile").trim().to_string(),
            ca_path: get("smtpd_tls_CApath").trim().to_string(),
            digest,
            level,
            cert_file,
            key_file,
            chain_files: cf
                .get("smtpd_tls_chain_files")
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
            sni_maps: cf.get("tls_server_sni_maps").trim().to_string(),
            wrappermode: cf.get_bool("smtpd_tls_wrappermode"),
            protocols,
            protocols_param,
            ciphers,
        })
    }

    /// Whether any TLS is wanted at all (STARTTLS or wrapper mode).
    pub fn wanted(&self) -> bool {
        self.wrappermode || self.level != SecurityLevel::None
    }

    /// Loads the certificate chain and key, and the client-certificate CAs. Call
    /// before confinement.
    pub fn load(&self) -> Result<Arc<TlsServer>, TlsError> {
        let versions = parse_protocols(&self.protocols, self.protocols_param)?;
        let provider = self
            .ciphers
            .provider(rustls::crypto::ring::default_provider())?;
        let chains = if !self.chain_files.is_empty() {
            crate::tls_certs::load_chain_files(&provider, &self.chain_files)?
        } else if !self.cert_file.is_empty() {
            vec![crate::tls_certs::load_pair(
                &provider,
                &self.cert_file,
                &self.key_file,
            )?]
        } else {
            return Err(TlsError::NoCertFile);
        };
        let resolver =
            crate::tls_certs::CertResolver::new(chains).with_sni_maps(&provider, &self.sni_maps)?;
        let provider = Arc::new(provider);
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)?;
        let (builder, ccert) = if self.ask_ccert {
            let check = Arc::new(crate::ccert::CertCheck::load(
                &provider,
                self.digest,
                &self.ca_file,
                &self.ca_path,
            )?);
            (
                builder.with_client_cert_verifier(check.clone()),
                Some(check),
            )
        } else {
            (builder.with_no_client_auth(), None)
        };
        let config = builder.with_cert_resolver(Arc::new(resolver));
        Ok(Arc::new(TlsServer {
            config: Arc::new(config),
            ccert,
        }))
    }
}

/// A Postfix protocol list (see rostfix_config::parse_tls_protocols) as rustls versions.
pub fn parse_protocols(
    spec: &str,
    name: &'static str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    use rostfix_config::ProtocolListError;
    rostfix_tls::protocol_versions(spec).map_err(|e| match e {
        ProtocolListError::Unknown(_) => TlsError::BadValue {
            name,
            value: spec.to_string(),
        },
        ProtocolListError::NoneLeft => TlsError::NoProtocols(name),
    })
}

/// What was negotiated, for the log and the Received: header.
pub use rostfix_tls::Negotiated as TlsInfo;

/// A connection able to switch to TLS; the session talks through it.
pub trait Transport: Read + Write {
    /// Runs the server handshake on this connection. Only called while plain. With
    /// the client's certificate, when one was asked for and sent.
    fn start_tls(&mut self) -> Result<(TlsInfo, Option<crate::ccert::ClientCert>), io::Error>;
    /// Whether a TLS configuration is loaded, i.e. STARTTLS can be offered.
    fn tls_available(&self) -> bool;
    /// Whether a read now would return at once (input the client already sent, or the
    /// end of it) instead of waiting: the improper-pipelining check. Never blocks.
    fn input_ready(&mut self) -> bool;
    /// Bounds the next reads from the socket (smtpd_per_record_deadline moves it).
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()>;
}

/// A plain or TLS socket (TCP or UNIX-domain).
pub enum NetStream<S: Read + Write> {
    Plain(S, Option<Arc<TlsServer>>),
    Tls(Box<StreamOwned<ServerConnection, S>>),
    /// Only while a handshake failed half-way; every I/O then fails.
    Broken,
}

impl<S: Read + Write> NetStream<S> {
    pub fn new(sock: S, tls: Option<Arc<TlsServer>>) -> Self {
        NetStream::Plain(sock, tls)
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "TLS handshake failed earlier")
}

impl<S: Read + Write> Read for NetStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            NetStream::Plain(s, _) => s.read(buf),
            NetStream::Tls(t) => t.read(buf),
            NetStream::Broken => Err(broken()),
        }
    }
}

impl<S: Read + Write> Write for NetStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            NetStream::Plain(s, _) => s.write(buf),
            NetStream::Tls(t) => t.write(buf),
            NetStream::Broken => Err(broken()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            NetStream::Plain(s, _) => s.flush(),
            NetStream::Tls(t) => t.flush(),
            NetStream::Broken => Err(broken()),
        }
    }
}

impl<S: Read + Write + AsFd> Transport for NetStream<S> {
    /// The socket's SO_RCVTIMEO/SO_SNDTIMEO (smtpd_timeout) bound every handshake read
    /// and write, as they bound plain reads; later TLS reads go through the same socket.
    fn start_tls(&mut self) -> Result<(TlsInfo, Option<crate::ccert::ClientCert>), io::Error> {
        let (mut sock, server) = match std::mem::replace(self, NetStream::Broken) {
            NetStream::Plain(s, Some(c)) => (s, c),
            other => {
                *self = other;
                return Err(io::Error::other("TLS not available"));
            }
        };
        let mut conn = ServerConnection::new(server.config.clone()).map_err(io::Error::other)?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)?;
        }
        let info = TlsInfo::of(&conn);
        let ccert = match (&server.ccert, conn.peer_certificates()) {
            (Some(check), Some(chain)) => check.judge(chain),
            _ => None,
        };
        *self = NetStream::Tls(Box::new(StreamOwned::new(conn, sock)));
        Ok((info, ccert))
    }

    fn tls_available(&self) -> bool {
        matches!(self, NetStream::Plain(_, Some(_)))
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        let fd = match &*self {
            NetStream::Plain(s, _) => s.as_fd(),
            NetStream::Tls(t) => t.sock.as_fd(),
            NetStream::Broken => return Err(broken()),
        };
        let micros = i64::try_from(timeout.as_micros()).unwrap_or(i64::MAX);
        let tv = nix::sys::time::TimeVal::new(micros / 1_000_000, (micros % 1_000_000) as _);
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
            .map_err(io::Error::from)
    }

    fn input_ready(&mut self) -> bool {
        match self {
            NetStream::Plain(s, _) => readable_now(s),
            NetStream::Tls(t) => {
                // A readable socket may hold only part of a record, or no application
                // data at all: one read of what is there (it cannot block), then ask
                // rustls whether plaintext came out of it.
                if readable_now(&t.sock) {
                    match t.conn.read_tls(&mut t.sock) {
                        Ok(0) => return true,
                        Ok(_) => {}
                        Err(e) => return e.kind() != io::ErrorKind::WouldBlock,
                    }
                }
                match t.conn.process_new_packets() {
                    Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
                    // The next read fails at once with this error.
                    Err(_) => true,
                }
            }
            NetStream::Broken => true,
        }
    }
}

/// poll(2) with a zero timeout: whether the socket has input (or EOF) right now.
fn readable_now(sock: &impl AsFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Separate input and output without TLS: the unit tests' in-memory transport.
#[cfg(test)]
pub struct Duplex<R, W> {
    pub input: R,
    pub output: W,
}

#[cfg(test)]
impl<R: Read, W> Read for Duplex<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

#[cfg(test)]
impl<R, W: Write> Write for Duplex<R, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }
}

#[cfg(test)]
impl<R: Read, W: Write> Transport for Duplex<R, W> {
    fn start_tls(&mut self) -> Result<(TlsInfo, Option<crate::ccert::ClientCert>), io::Error> {
        Err(io::Error::other("TLS not available"))
    }
    fn tls_available(&self) -> bool {
        false
    }
    /// Only what the session already buffered counts as sent: the next read of an
    /// in-memory input stands for the client's next write.
    fn input_ready(&mut self) -> bool {
        false
    }
    fn set_read_timeout(&mut self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::ProtocolVersion;

    fn load(pairs: &[(&str, &str)]) -> Result<TlsSettings, TlsError> {
        TlsSettings::from_config(&crate::settings::test_config(pairs).expect("main.cf parses"))
    }

    #[test]
    fn levels_and_legacy_names() {
        assert_eq!(load(&[]).unwrap().level, SecurityLevel::None);
        assert_eq!(
            load(&[("smtpd_use_tls", "yes")]).unwrap().level,
            SecurityLevel::May
        );
        assert_eq!(
            load(&[("smtpd_enforce_tls", "yes"), ("smtpd_use_tls", "yes")])
                .unwrap()
                .level,
            SecurityLevel::Encrypt
        );
        let s = load(&[
            ("smtpd_tls_security_level", "encrypt"),
            ("smtpd_use_tls", "no"),
        ])
        .unwrap();
        assert_eq!(s.level, SecurityLevel::Encrypt);
        assert_eq!(s.protocols_param, "smtpd_tls_mandatory_protocols");
        assert!(load(&[("smtpd_tls_security_level", "dane")]).is_err());
        let s = load(&[
            ("smtpd_tls_cert_file", "/c.pem"),
            ("smtpd_tls_wrappermode", "yes"),
        ])
        .unwrap();
        assert_eq!(s.key_file, "/c.pem");
        assert!(s.wrappermode && s.wanted());
    }

    fn names(spec: &str) -> Vec<ProtocolVersion> {
        parse_protocols(spec, "p")
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect()
    }

    #[test]
    fn protocol_lists() {
        use ProtocolVersion::{TLSv1_2, TLSv1_3};
        assert_eq!(names(">=TLSv1.2"), vec![TLSv1_3, TLSv1_2]);
        assert_eq!(names(">=TLSv1.3"), vec![TLSv1_3]);
        assert_eq!(
            names("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"),
            vec![TLSv1_3, TLSv1_2]
        );
        assert_eq!(names("!SSLv2:!TLSv1.2"), vec![TLSv1_3]);
        assert_eq!(names("TLSv1.2"), vec![TLSv1_2]);
        assert_eq!(names("<=TLSv1.2"), vec![TLSv1_2]);
        assert!(parse_protocols("TLSv1", "p").is_err());
        assert!(parse_protocols(">=TLSv9", "p").is_err());
        assert!(load(&[("smtpd_tls_protocols", "bogus")]).is_err());
    }

    #[test]
    fn missing_files_are_errors() {
        let s = load(&[("smtpd_tls_security_level", "may")]).unwrap();
        assert!(matches!(s.load(), Err(TlsError::NoCertFile)));
        let s = load(&[("smtpd_tls_cert_file", "/nonexistent/cert.pem")]).unwrap();
        assert!(s.load().is_err());
    }
}
