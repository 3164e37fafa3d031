//! TLS client certificates (smtpd_tls_ask_ccert, smtpd_tls_req_ccert): the verifier
//! that asks for one, what smtpd learns from it ([`ClientCert`]: CommonNames,
//! fingerprints, whether it chains to smtpd_tls_CAfile / smtpd_tls_CApath), and the
//! fingerprint digest (smtpd_tls_fingerprint_digest).
//!
//! As in Postfix, a certificate the CAs do not vouch for does not fail the handshake:
//! check_ccert_access and relay_clientcerts match fingerprints of any certificate
//! whose key the client proved it holds (self-signed ones are the common case), while
//! permit_tls_all_clientcerts and smtpd_tls_req_ccert want a trusted one. So the
//! handshake verifier accepts every certificate but still checks the client's
//! signature with it (rustls' webpki code), and trust is decided afterwards with
//! rustls' WebPkiClientVerifier over the configured CAs.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::sync::Arc;

/// smtpd_tls_fingerprint_digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    /// The parameter's value (case-insensitive), None when unsupported.
    pub fn parse(name: &str) -> Option<Digest> {
        match name.trim().to_ascii_lowercase().as_str() {
            "md5" => Some(Digest::Md5),
            "sha1" => Some(Digest::Sha1),
            "sha256" => Some(Digest::Sha256),
            "sha384" => Some(Digest::Sha384),
            "sha512" => Some(Digest::Sha512),
            _ => None,
        }
    }

    /// Postfix's fingerprint text: upper-case hex bytes joined by colons.
    pub fn fingerprint(self, data: &[u8]) -> String {
        use md5::Digest as _;
        let bytes: Vec<u8> = match self {
            Digest::Md5 => md5::Md5::digest(data).to_vec(),
            Digest::Sha1 => ring_digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data),
            Digest::Sha256 => ring_digest(&ring::digest::SHA256, data),
            Digest::Sha384 => ring_digest(&ring::digest::SHA384, data),
            Digest::Sha512 => ring_digest(&ring::digest::SHA512, data),
        };
        bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

fn ring_digest(alg: &'static ring::digest::Algorithm, data: &[u8]) -> Vec<u8> {
    ring::digest::digest(alg, data).as_ref().to_vec()
}

/// What smtpd knows of the client's certificate after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject's CommonName (Postfix's peer_CN).
    pub subject_cn: String,
    /// The issuer's CommonName.
    pub issuer_cn: String,
    /// Digest of the whole certificate.
    pub cert_fingerprint: String,
    /// Digest of its SubjectPublicKeyInfo.
    pub pkey_fingerprint: String,
    /// It chains to smtpd_tls_CAfile / smtpd_tls_CApath.
    pub trusted: bool,
}

/// Why the CA files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read {param} {path}: {reason}")]
    Read {
        param: &'static str,
        path: String,
        reason: String,
    },
    #[error("client certificate verifier: {0}")]
    Verifier(String),
}

/// Asks for a client certificate and judges it: shared by every connection.
#[derive(Debug)]
pub struct CertCheck {
    digest: Digest,
    algorithms: WebPkiSupportedAlgorithms,
    /// Over smtpd_tls_CAfile / CApath; None when neither names a certificate (every
    /// client certificate is then untrusted, fingerprints still work).
    trust: Option<Arc<dyn ClientCertVerifier>>,
    /// The CA names sent in the CertificateRequest, so a client with several
    /// certificates picks the right one.
    hints: Vec<DistinguishedName>,
}

impl CertCheck {
    /// Loads the CAs (before confinement: the files are outside the chroot).
    pub fn load(
        provider: &Arc<CryptoProvider>,
        digest: Digest,
        ca_file: &str,
        ca_path: &str,
    ) -> Result<CertCheck, CaError> {
        let mut roots = RootCertStore::empty();
        if !ca_file.is_empty() {
            add_pem_file(&mut roots, "smtpd_tls_CAfile", ca_file)?;
        }
        if !ca_path.is_empty() {
            let dir = std::fs::read_dir(ca_path).map_err(|e| CaError::Read {
                param: "smtpd_tls_CApath",
                path: ca_path.to_string(),
                reason: e.to_string(),
            })?;
            for entry in dir.flatten() {
                // CApath holds hash links and other files besides; unreadable or
                // non-PEM ones are skipped, as OpenSSL skips them.
                let path = entry.path();
                if path.is_file() {
                    let _ = add_pem_file(&mut roots, "smtpd_tls_CApath", &path.to_string_lossy());
                }
            }
        }
        let (trust, hints) = if roots.is_empty() {
            (None, Vec::new())
        } else {
            let hints = roots.subjects();
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| CaError::Verifier(e.to_string()))?;
            (Some(v), hints)
        };
        Ok(CertCheck {
            digest,
            algorithms: provider.signature_verification_algorithms,
            trust,
            hints,
        })
    }

    /// What the certificate chain the client sent says (end-entity first).
    pub fn judge(&self, chain: &[CertificateDer<'_>]) -> Option<ClientCert> {
        let (end, intermediates) = chain.split_first()?;
        let trusted = self.trust.as_ref().is_some_and(|v| {
            v.verify_client_cert(end, intermediates, UnixTime::now())
                .is_ok()
        });
        let fields = crate::ccert_der::cert_fields(end);
        let (subject_cn, issuer_cn, spki) = match &fields {
            Some(f) => (f.subject_cn.clone(), f.issuer_cn.clone(), f.spki),
            None => (String::new(), String::new(), &[][..]),
        };
        Some(ClientCert {
            subject_cn,
            issuer_cn,
            cert_fingerprint: self.digest.fingerprint(end),
            pkey_fingerprint: if spki.is_empty() {
                String::new()
            } else {
                self.digest.fingerprint(spki)
            },
            trusted,
        })
    }
}

fn add_pem_file(roots: &mut RootCertStore, param: &'static str, path: &str) -> Result<(), CaError> {
    let read_err = |reason: String| CaError::Read {
        param,
        path: path.to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| read_err(e.to_string()))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(read_err("no usable CA certificate".into()));
    }
    Ok(())
}

impl ClientCertVerifier for CertCheck {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Never mandatory in the handshake: smtpd_tls_req_ccert is enforced after it with
    /// Postfix's 421 reply, which a handshake alert cannot carry.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    /// Any certificate: trust is judged after the handshake ([`CertCheck::judge`]).
    /// The client still proves it holds the certificate's key: the signature checks
    /// below run on every handshake.
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_format() {
        assert_eq!(Digest::parse("SHA256"), Some(Digest::Sha256));
        assert_eq!(Digest::parse("md5"), Some(Digest::Md5));
        assert_eq!(Digest::parse("sha224"), None);
        // Known answers for "abc".
        assert_eq!(
            Digest::Md5.fingerprint(b"abc"),
            "90:01:50:98:3C:D2:4F:B0:D6:96:3F:7D:28:E1:7F:72"
        );
        assert_eq!(
            Digest::Sha1.fingerprint(b"abc"),
            "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D"
        );
        assert!(Digest::Sha256
            .fingerprint(b"abc")
            .starts_with("BA:78:16:BF:8F:01:CF:EA"));
        assert_eq!(Digest::Sha512.fingerprint(b"").len(), 64 * 3 - 1);
    }

    #[test]
    fn no_cas_means_untrusted_but_fingerprinted() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check = CertCheck::load(&provider, Digest::Sha256, "", "").expect("loads");
        assert!(check.judge(&[]).is_none());
        let junk = CertificateDer::from(b"junk".to_vec());
        let c = check.judge(&[junk]).expect("a certificate was sent");
        assert!(!c.trusted);
        assert_eq!(c.cert_fingerprint, Digest::Sha256.fingerprint(b"junk"));
        assert_eq!(c.pkey_fingerprint, "");
        assert!(CertCheck::load(&provider, Digest::Sha256, "/nonexistent/ca.pem", "").is_err());
    }
}
