//! Client TLS with rustls (ring provider): the smtp_tls_security_level values, the CA
//! roots and optional client certificate loaded once before chroot, the `ClientConfig`s
//! (one per protocol set, kept for session resumption), and the certificate check
//! (crate::tls_verify) that decides whether a peer is
//! Untrusted, Trusted (chain verified, name not matched) or Verified (chain and name),
//! as Postfix's log words say. At the DANE levels the verdict comes from the TLSA
//! records instead (`dane_verify.rs`): Verified when they match, else Untrusted.
//!
//! The handshake itself always completes (our verifier records the verdict instead of
//! failing); the session then enforces the level, so `may`/`encrypt` deliver to
//! self-signed peers and `verify`/`secure` defer with "Server certificate not trusted"
//! or "... not verified", as Postfix does.
//!
//! CA roots: smtp_tls_CAfile and every PEM file in smtp_tls_CApath; the system store
//! (/etc/ssl/certs/ca-certificates.crt) is added when tls_append_default_CA = yes OR
//! when neither CAfile nor CApath is set. The latter deviates from Postfix, which then
//! trusts nothing; without it `verify` could never succeed on a default installation.

use crate::dane::{DaneLevel, Tlsa};
pub use crate::tls_verify::Recorder;
use rostfix_tls::Negotiated;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Debian's bundle of the system CA store.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// smtp_tls_security_level (and the level column of smtp_tls_policy_maps). The DANE
/// levels are resolved per server before connecting (`dane.rs`): a session runs at
/// `Dane` only with usable TLSA records, otherwise at `may` or `encrypt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    None,
    May,
    Encrypt,
    Dane(DaneLevel),
    Verify,
    Secure,
}

impl Level {
    /// Parses a level name.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "none" => Level::None,
            "may" => Level::May,
            "encrypt" => Level::Encrypt,
            "dane" => Level::Dane(DaneLevel::Dane),
            "dane-only" => Level::Dane(DaneLevel::DaneOnly),
            "verify" => Level::Verify,
            "secure" => Level::Secure,
            _ => return None,
        })
    }

    /// Whether the session must not go on in plaintext.
    pub fn mandatory(self) -> bool {
        self >= Level::Encrypt
    }

    /// Whether the certificate must be verified.
    pub fn verifies(self) -> bool {
        self >= Level::Dane(DaneLevel::Dane)
    }
}

/// Postfix's trust words for the "TLS connection established" line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    Untrusted,
    Trusted,
    Verified,
}

impl Trust {
    pub fn word(self) -> &'static str {
        match self {
            Trust::Untrusted => "Untrusted",
            Trust::Trusted => "Trusted",
            Trust::Verified => "Verified",
        }
    }
}

/// What a handshake negotiated, and what the certificate check made of the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub negotiated: Negotiated,
    pub trust: Trust,
    /// The handshake resumed a cached session (smtp_tls_session_cache_database).
    pub resumed: bool,
}

impl TlsInfo {
    /// `TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384 (256/256 bits)`.
    pub fn summary(&self) -> String {
        self.negotiated.summary()
    }
}

/// Why the TLS settings or files are unusable (a startup error).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {what} {path}: {source}")]
    Pem {
        what: &'static str,
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("cannot read directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("bad {name} value: {value}")]
    BadValue { name: String, value: String },
    #[error("no usable TLS protocol version left by {0}")]
    NoProtocols(String),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Everything loaded once at start (before chroot).
pub struct TlsClient {
    provider: Arc<CryptoProvider>,
    /// The chain verifier over the CA roots, built once.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// One configuration per protocol set (smtp_tls_protocols for opportunistic
    /// levels, smtp_tls_mandatory_protocols for the others), kept for the
    /// life of the process: rustls resumes a session only under the configuration's
    /// own verifier and client-certificate objects (crate::tls_verify says more).
    opportunistic: Arc<ClientConfig>,
    mandatory: Arc<ClientConfig>,
}

/// The file settings [`TlsClient::load`] needs.
pub struct TlsFiles<'a> {
    pub ca_file: &'a str,
    pub ca_path: &'a str,
    pub append_default_ca: bool,
    pub cert_file: &'a str,
    pub key_file: &'a str,
    pub protocols: (&'a str, &'a str),
    pub mandatory_protocols: (&'a str, &'a str),
    /// smtp_tls_session_cache_database and smtp_tls_session_cache_timeout.
    pub session_cache: (&'a str, std::time::Duration),
}

impl TlsClient {
    /// Loads roots and the client certificate. Call before confinement.
    pub fn load(f: &TlsFiles<'_>) -> Result<TlsClient, TlsSetupError> {
        let mut store = RootCertStore::empty();
        let mut add = |certs: Vec<CertificateDer<'static>>| {
            // A bundle may hold certificates webpki cannot use; skip those, as OpenSSL
            // does, rather than refusing every one.
            store.add_parsable_certificates(certs);
        };
        if !f.ca_file.is_empty() {
            add(read_certs(Path::new(f.ca_file), "smtp_tls_CAfile")?);
        }
        if !f.ca_path.is_empty() {
            let dir = std::fs::read_dir(f.ca_path).map_err(|source| TlsSetupError::Dir {
                path: f.ca_path.to_string(),
                source,
            })?;
            for entry in dir.flatten() {
                let p = entry.path();
                if p.is_file() {
                    // Non-PEM files (hash links to the same PEMs, READMEs) are skipped.
                    if let Ok(certs) = read_certs(&p, "smtp_tls_CApath") {
                        add(certs);
                    }
                }
            }
        }
        let none_given = f.ca_file.is_empty() && f.ca_path.is_empty();
        if (f.append_default_ca || none_given) && Path::new(SYSTEM_CA_BUNDLE).is_file() {
            add(read_certs(Path::new(SYSTEM_CA_BUNDLE), "system CA bundle")?);
        }
        let roots = (!store.is_empty()).then(|| Arc::new(store));
        let client_cert = if f.cert_file.is_empty() {
            None
        } else {
            let certs = read_certs(Path::new(f.cert_file), "smtp_tls_cert_file")?;
            let key_path = if f.key_file.is_empty() {
                f.cert_file
            } else {
                f.key_file
            };
            let key =
                PrivateKeyDer::from_pem_file(key_path).map_err(|source| TlsSetupError::Pem {
                    what: "smtp_tls_key_file",
                    path: key_path.to_string(),
                    source,
                })?;
            Some((certs, key))
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = match &roots {
            Some(roots) => Some(
                WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()
                    .map_err(|e| rustls::Error::General(e.to_string()))?,
            ),
            None => None,
        };
        let dispatch = Arc::new(crate::tls_verify::Dispatch {
            provider: provider.clone(),
        });
        let sessions = crate::tls_sessions::SessionCache::new(f.session_cache.0, f.session_cache.1)
            .map(Arc::new);
        let make = |versions: &[&'static SupportedProtocolVersion]| {
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(versions)?
                .dangerous()
                .with_custom_certificate_verifier(dispatch.clone());
            let mut config = match &client_cert {
                Some((certs, key)) => {
                    builder.with_client_auth_cert(certs.clone(), key.clone_key())?
                }
                None => builder.with_no_client_auth(),
            };
            // Postfix sends no SNI unless smtp_tls_servername is set.
            config.enable_sni = false;
            config.resumption = match &sessions {
                Some(cache) => rustls::client::Resumption::store(cache.clone()),
                None => rustls::client::Resumption::disabled(),
            };
            Ok::<_, TlsSetupError>(Arc::new(config))
        };
        let opportunistic = make(&parse_protocols(f.protocols.1, f.protocols.0)?)?;
        let mandatory = make(&parse_protocols(
            f.mandatory_protocols.1,
            f.mandatory_protocols.0,
        )?)?;
        Ok(TlsClient {
            provider,
            webpki,
            opportunistic,
            mandatory,
        })
    }

    /// The configuration for one connection at `level`, and the Recorder that checks
    /// the chain against the roots and the certificate against any of `match_names`.
    /// With `dane` records the verdict comes from them alone (no CA roots).
    pub fn config(
        &self,
        level: Level,
        match_names: &[String],
        dane: Option<Arc<Vec<Tlsa>>>,
    ) -> Result<(Arc<ClientConfig>, Arc<Recorder>), rustls::Error> {
        let names = match_names
            .iter()
            .filter_map(|n| ServerName::try_from(n.clone()).ok())
            .collect();
        let recorder = Arc::new(Recorder::new(
            self.webpki.clone(),
            dane,
            names,
            self.provider.clone(),
        ));
        let config = if level.mandatory() {
            &self.mandatory
        } else {
            &self.opportunistic
        };
        Ok((config.clone(), recorder))
    }
}

/// Runs the client handshake on `sock` and returns the TLS stream and what was agreed.
pub fn handshake<S: Read + Write>(
    config: Arc<ClientConfig>,
    recorder: &Arc<Recorder>,
    server: &str,
    mut sock: S,
) -> Result<(StreamOwned<ClientConnection, S>, TlsInfo), HandshakeError> {
    // The name only feeds SNI (disabled) and the verifier (which uses its own list),
    // so a placeholder is fine when `server` is not a valid DNS name or address.
    let name = ServerName::try_from(server.to_string())
        .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("static name"));
    let mut conn = ClientConnection::new(config, name)?;
    let active = recorder.activate();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    drop(active);
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    if resumed {
        // rustls calls no verifier on resumption: judge the chain the session was made
        // with against this connection's policy, which may be stricter.
        recorder.recheck(conn.peer_certificates().unwrap_or(&[]));
    }
    let info = TlsInfo {
        negotiated: Negotiated::of(&conn),
        trust: recorder.trust(),
        resumed,
    };
    // For the metrics endpoint (rostfix_metrics::process, started by agent.rs); the
    // suite and version names are a fixed set, so the labels stay bounded.
    rostfix_metrics::process::add(
        "rostfix_smtp_tls_handshakes_total",
        &[
            ("version", &info.negotiated.protocol),
            ("cipher", &info.negotiated.cipher),
        ],
        1.0,
    );
    Ok((StreamOwned::new(conn, sock), info))
}

fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsSetupError::Pem {
            what,
            path: path.display().to_string(),
            source,
        })
}

/// A Postfix protocol list (see rostfix_config::parse_tls_protocols) as rustls versions.
pub fn parse_protocols(
    spec: &str,
    name: &str,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsSetupError> {
    use rostfix_config::ProtocolListError;
    rostfix_tls::protocol_versions(spec).map_err(|e| match e {
        ProtocolListError::Unknown(_) => TlsSetupError::BadValue {
            name: name.to_string(),
            value: spec.to_string(),
        },
        ProtocolListError::NoneLeft => TlsSetupError::NoProtocols(name.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(Level::parse("Verify"), Some(Level::Verify));
        assert_eq!(Level::parse("dane"), Some(Level::Dane(DaneLevel::Dane)));
        assert_eq!(
            Level::parse("Dane-Only"),
            Some(Level::Dane(DaneLevel::DaneOnly))
        );
        assert_eq!(Level::parse("bogus"), None);
        assert!(Level::Encrypt.mandatory() && !Level::May.mandatory());
        assert!(Level::Secure.verifies() && !Level::Encrypt.verifies());
        let dane = Level::Dane(DaneLevel::Dane);
        assert!(dane.mandatory() && dane.verifies());
    }

    #[test]
    fn protocols() {
        assert_eq!(parse_protocols(">=TLSv1.3", "x").unwrap().len(), 1);
        assert_eq!(parse_protocols("!SSLv2, !SSLv3", "x").unwrap().len(), 2);
        assert!(parse_protocols("<=TLSv1.1", "x").is_err());
        assert!(parse_protocols("TLSv9", "x").is_err());
    }
}
