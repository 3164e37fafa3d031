//! Private keys: PEM files (PKCS#1 `RSA PRIVATE KEY` as opendkim-genkey writes, or
//! PKCS#8 `PRIVATE KEY` for RSA and Ed25519) read once at daemon start, before
//! privileges are dropped, and refused when group or others may read them (OpenDKIM's
//! RequireSafeKeys default). Errors name the file, never its content.

use crate::DkimError;
use base64::Engine;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use std::os::unix::fs::MetadataExt;

/// The two signing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ed25519,
}

/// A key ready to sign with.
pub enum LoadedKey {
    Rsa(RsaKey<Sha256>),
    Ed25519(Ed25519Key),
}

impl std::fmt::Debug for LoadedKey {
    // Never the key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadedKey({:?})", self.kind())
    }
}

impl LoadedKey {
    pub fn kind(&self) -> KeyKind {
        match self {
            LoadedKey::Rsa(_) => KeyKind::Rsa,
            LoadedKey::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The TXT record value to publish at `selector._domainkey.domain`: for RSA the
    /// SubjectPublicKeyInfo DER (what opendkim-genkey publishes; every verifier reads
    /// it), for Ed25519 the raw 32-byte key (RFC 8463).
    pub fn txt_record(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            LoadedKey::Rsa(k) => format!(
                "v=DKIM1; k=rsa; p={}",
                b64.encode(rsa_spki(&k.public_key()))
            ),
            LoadedKey::Ed25519(k) => {
                format!("v=DKIM1; k=ed25519; p={}", b64.encode(k.public_key()))
            }
        }
    }
}

/// A DER length.
fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// Wraps a PKCS#1 RSAPublicKey (what ring gives) into SubjectPublicKeyInfo.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    const ALG: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x03];
    der_len(pkcs1.len() + 1, &mut bits);
    bits.push(0); // no unused bits
    bits.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    der_len(ALG.len() + bits.len(), &mut out);
    out.extend_from_slice(&ALG);
    out.extend(bits);
    out
}

/// Reads and checks one private key file.
pub fn load_key(path: &str) -> Result<LoadedKey, DkimError> {
    let io = |source| DkimError::Io {
        path: path.to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DkimError::UnsafeKey {
            path: path.to_string(),
            mode,
        });
    }
    // Owned by root (the daemons read keys as root) or by whoever reads it (a test,
    // `rostfix dkim-keygen` run by a user): never by a third user who could read it.
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(DkimError::KeyOwner {
            path: path.to_string(),
            uid: meta.uid(),
        });
    }
    let pem = std::fs::read(path).map_err(io)?;
    parse_key(&pem).map_err(|reason| DkimError::BadKey {
        path: path.to_string(),
        reason,
    })
}

/// PEM to key; the reason never quotes the input.
pub(crate) fn parse_key(pem: &[u8]) -> Result<LoadedKey, String> {
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| "no PEM private key".to_string())?;
    match der {
        PrivateKeyDer::Pkcs1(_) => RsaKey::<Sha256>::from_key_der(der)
            .map(LoadedKey::Rsa)
            .map_err(|e| e.to_string()),
        PrivateKeyDer::Pkcs8(p8) => {
            let bytes = p8.secret_pkcs8_der().to_vec();
            if let Ok(k) = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(p8)) {
                return Ok(LoadedKey::Rsa(k));
            }
            // OpenSSL writes Ed25519 PKCS#8 v1 without the public key, which ring's
            // checked constructor refuses.
            Ed25519Key::from_pkcs8_maybe_unchecked_der(&bytes)
                .map(LoadedKey::Ed25519)
                .map_err(|_| "PKCS#8 key is neither RSA nor Ed25519".to_string())
        }
        _ => Err("unsupported key format (SEC1 EC keys cannot sign DKIM)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_length_forms() {
        // 270-byte PKCS#1 (2048-bit) needs long-form lengths.
        let spki = rsa_spki(&[0u8; 270]);
        assert_eq!(&spki[..4], &[0x30, 0x82, 0x01, 0x22]);
        assert_eq!(spki.len(), 4 + 15 + 4 + 1 + 270);
        let short = rsa_spki(&[0u8; 10]);
        assert_eq!(short[1] as usize, short.len() - 2);
    }

    #[test]
    fn garbage_is_refused_without_quoting_it() {
        let e = parse_key(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(!e.contains("c2VjcmV0"));
        assert!(parse_key(b"nothing").is_err());
    }
}
