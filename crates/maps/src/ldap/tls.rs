//! The rustls client configuration of an `ldap:` table that uses TLS (`start_tls =
//! yes` or an `ldaps://` server), from ldap_table(5)'s `tls_*` settings.
//!
//! As in Postfix (which sets OpenLDAP's TLS_REQCERT to `demand` or `never`):
//! `tls_require_cert = yes` verifies the chain against `tls_ca_cert_file` /
//! `tls_ca_cert_dir` (the system bundle when neither is set) and the server's name or
//! address from its URL; `no`, the default, checks no certificate at all, so it only
//! protects against passive listeners. The handshake signatures are checked either
//! way. `tls_cert` / `tls_key` give a client certificate.
//!
//! The files are read when the table is opened, before a daemon enters its chroot.

use super::config::TlsSettings;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Debian's bundle of the system's trusted CAs.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why the TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LdapTlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{what} {path}: {reason}")]
    Pem {
        /// Which setting named it.
        what: &'static str,
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration (a key that does not match, ...).
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

fn pem_error(what: &'static str, path: &Path, reason: impl ToString) -> LdapTlsError {
    LdapTlsError::Pem {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, LdapTlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(what, path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The trust anchors for `tls_require_cert = yes`.
fn roots(t: &TlsSettings) -> Result<RootCertStore, LdapTlsError> {
    let mut store = RootCertStore::empty();
    if !t.ca_cert_file.is_empty() {
        store
            .add_parsable_certificates(read_certs(Path::new(&t.ca_cert_file), "tls_ca_cert_file")?);
    }
    if !t.ca_cert_dir.is_empty() {
        let dir = Path::new(&t.ca_cert_dir);
        let entries = std::fs::read_dir(dir).map_err(|e| pem_error("tls_ca_cert_dir", dir, e))?;
        for entry in entries.flatten() {
            // Hash links and non-PEM files in a CA directory are skipped, as OpenSSL
            // does when it finds no certificate in them.
            if let Ok(certs) = read_certs(&entry.path(), "tls_ca_cert_dir") {
                store.add_parsable_certificates(certs);
            }
        }
    }
    if t.ca_cert_file.is_empty() && t.ca_cert_dir.is_empty() {
        let bundle = Path::new(SYSTEM_CA_BUNDLE);
        store.add_parsable_certificates(read_certs(bundle, "system CA bundle")?);
    }
    Ok(store)
}

/// The client configuration `t` describes.
pub fn client_config(t: &TlsSettings) -> Result<Arc<ClientConfig>, LdapTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if t.require_cert {
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(t)?), provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked { provider }))
    };
    let config = if t.cert.is_empty() {
        builder.with_no_client_auth()
    } else {
        let cert_path = Path::new(&t.cert);
        let certs = read_certs(cert_path, "tls_cert")?;
        let key_path = if t.key.is_empty() {
            cert_path
        } else {
            Path::new(&t.key)
        };
        let key = PrivateKeyDer::from_pem_file(key_path)
            .map_err(|e| pem_error("tls_key", key_path, e))?;
        builder.with_client_auth_cert(certs, key)?
    };
    Ok(Arc::new(config))
}

/// `tls_require_cert = no`: any certificate is accepted, but the peer must still
/// prove it holds the key of the one it sent.
#[derive(Debug)]
struct Unchecked {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_errors_and_no_files_is_fine_without_verification() {
        let none = TlsSettings::default();
        assert!(client_config(&none).is_ok());
        let missing = TlsSettings {
            require_cert: true,
            ca_cert_file: "/nonexistent/ca.pem".into(),
            ..TlsSettings::default()
        };
        let err = client_config(&missing).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("tls_ca_cert_file /nonexistent/ca.pem")),
            "{err:?}"
        );
        let no_cert = TlsSettings {
            cert: "/nonexistent/c.pem".into(),
            ..TlsSettings::default()
        };
        assert!(client_config(&no_cert).is_err());
    }
}
