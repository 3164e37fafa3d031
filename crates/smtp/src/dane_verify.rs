//! Checks a server's certificate chain against usable TLSA records (RFC 7672 section 3):
//! DANE-EE(3) matches the server's own certificate (selector 0) or public key
//! (selector 1), with no name, chain or expiry check; DANE-TA(2) matches a certificate
//! the server sent as part of its chain (or, for `2 0 0`, the full certificate in the
//! record), which then becomes the only trust anchor of an ordinary chain check with
//! the names [`crate::dane`]'s caller gives (the MX host name, the TLSA base domain).
//!
//! The public key is taken from the certificate by [`spki`], a bounded DER walk over
//! the outer fields of the X.509 structure (only lengths are read; the certificate
//! itself was already parsed by rustls/webpki during the handshake).

use crate::dane::{Tlsa, USAGE_DANE_EE, USAGE_DANE_TA};
use ring::digest;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use std::sync::Arc;

/// Whether `cert` (DER) matches `rec`'s selector, matching type and data.
pub fn matches(rec: &Tlsa, cert: &[u8]) -> bool {
    let selected = match rec.selector {
        0 => cert,
        1 => match spki(cert) {
            Some(k) => k,
            None => return false,
        },
        _ => return false,
    };
    match rec.mtype {
        0 => selected == rec.data.as_slice(),
        1 => digest::digest(&digest::SHA256, selected).as_ref() == rec.data.as_slice(),
        2 => digest::digest(&digest::SHA512, selected).as_ref() == rec.data.as_slice(),
        _ => false,
    }
}

/// Whether the chain (`leaf` then `intermediates`, as sent) satisfies any record.
pub fn verified(
    records: &[Tlsa],
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    names: &[ServerName<'static>],
    now: UnixTime,
    provider: &Arc<CryptoProvider>,
) -> bool {
    let ee = records
        .iter()
        .filter(|r| r.usage == USAGE_DANE_EE)
        .any(|r| matches(r, leaf));
    if ee {
        return true;
    }
    // Trust anchors: chain certificates a DANE-TA record matches, plus any full
    // certificate published in a `2 0 0` record.
    let mut anchors = RootCertStore::empty();
    for r in records.iter().filter(|r| r.usage == USAGE_DANE_TA) {
        for c in intermediates.iter().chain(std::iter::once(leaf)) {
            if matches(r, c) {
                anchors.add_parsable_certificates([c.clone().into_owned()]);
            }
        }
        if r.selector == 0 && r.mtype == 0 {
            anchors.add_parsable_certificates([CertificateDer::from(r.data.clone())]);
        }
    }
    if anchors.is_empty() {
        return false;
    }
    let Ok(verifier) =
        WebPkiServerVerifier::builder_with_provider(Arc::new(anchors), provider.clone()).build()
    else {
        return false;
    };
    names.iter().any(|name| {
        verifier
            .verify_server_cert(leaf, intermediates, name, &[], now)
            .is_ok()
    })
}

/// The DER encoding of the SubjectPublicKeyInfo of an X.509 certificate: the seventh
/// field of tbsCertificate when the explicit version `[0]` is present (v3), else the
/// sixth. `None` when the structure does not parse.
pub fn spki(cert: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, mut tbs, _) = tlv(body)?;
    if tag != 0x30 {
        return None;
    }
    // [0] EXPLICIT version, optional.
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        tbs = tlv(tbs)?.2;
    }
    let (tag, _, rest) = tlv(tbs)?;
    if tag != 0x30 {
        return None;
    }
    Some(&tbs[..tbs.len() - rest.len()])
}

/// One DER element: its tag, its contents and what follows it. Only single-byte tags
/// and definite lengths up to four bytes (DER allows nothing else in certificates).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let contents = input.get(header..end)?;
    Some((tag, contents, &input[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A hand-built v3 certificate skeleton: the fields' contents are placeholders,
    /// only the structure matters to `spki`.
    fn skeleton(spki_der: &[u8]) -> Vec<u8> {
        let mut tbs = vec![0xa0, 0x03, 0x02, 0x01, 0x02]; // [0] { INTEGER 2 }
        tbs.extend([0x02, 0x01, 0x05]); // serial
        tbs.extend([0x30, 0x00]); // signature algorithm
        tbs.extend([0x30, 0x00]); // issuer
        tbs.extend([0x30, 0x00]); // validity
        tbs.extend([0x30, 0x00]); // subject
        tbs.extend(spki_der);
        tbs.extend([0xa3, 0x00]); // extensions
        let mut tbs_seq = vec![0x30, tbs.len() as u8];
        tbs_seq.extend(tbs);
        let mut body = tbs_seq;
        body.extend([0x30, 0x00, 0x03, 0x01, 0x00]); // signatureAlgorithm, signature
        let mut cert = vec![0x30, 0x81, body.len() as u8];
        cert.extend(body);
        cert
    }

    #[test]
    fn finds_the_public_key() {
        let key = [0x30, 0x05, 0x30, 0x00, 0x03, 0x01, 0x00];
        let cert = skeleton(&key);
        assert_eq!(spki(&cert), Some(&key[..]));
        assert_eq!(spki(&cert[..cert.len() - 3]), None, "truncated");
        assert_eq!(spki(b"\x04\x00"), None);
    }

    #[test]
    fn matching_types() {
        let key = [0x30, 0x05, 0x30, 0x00, 0x03, 0x01, 0x00];
        let cert = skeleton(&key);
        let sha256 = |d: &[u8]| digest::digest(&digest::SHA256, d).as_ref().to_vec();
        let sha512 = |d: &[u8]| digest::digest(&digest::SHA512, d).as_ref().to_vec();
        let rec = |selector, mtype, data: Vec<u8>| Tlsa {
            usage: 3,
            selector,
            mtype,
            data,
        };
        assert!(matches(&rec(0, 0, cert.clone()), &cert));
        assert!(matches(&rec(0, 1, sha256(&cert)), &cert));
        assert!(matches(&rec(1, 1, sha256(&key)), &cert));
        assert!(matches(&rec(1, 2, sha512(&key)), &cert));
        assert!(matches(&rec(1, 0, key.to_vec()), &cert));
        assert!(!matches(&rec(1, 1, sha256(&cert)), &cert));
        assert!(!matches(&rec(0, 1, vec![0; 32]), &cert));
    }

    proptest! {
        #[test]
        fn spki_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = spki(&bytes);
        }
    }
}
