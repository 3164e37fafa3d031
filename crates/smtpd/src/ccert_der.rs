//! The three things smtpd needs from a client certificate's DER encoding: the
//! subject's and the issuer's CommonName (Postfix's peer_CN and issuer_CN, for the
//! Received: header, the log and policy requests) and the SubjectPublicKeyInfo bytes
//! (hashed for the public-key fingerprint).
//!
//! A small reader of the outer X.509 structure rather than a full X.509 crate: rustls
//! has already checked the certificate's signature over the handshake, and only
//! these fields are read. The input comes from the network, so every length is
//! checked against what is left and nothing here can panic.

/// What is read from one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFields<'a> {
    /// The subject's CommonName; empty when it has none.
    pub subject_cn: String,
    /// The issuer's CommonName; empty when it has none.
    pub issuer_cn: String,
    /// The complete SubjectPublicKeyInfo element (tag and length included).
    pub spki: &'a [u8],
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0] EXPLICIT Version`, optional in TBSCertificate.
const VERSION_TAG: u8 = 0xa0;
/// id-at-commonName, 2.5.4.3, as its DER content bytes.
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

/// One element: its tag, its content, and the input after it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: 1 to 4 length bytes are plenty for a certificate.
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The element at the start of `input` that must have `tag`: (content, whole, rest).
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8], &[u8])> {
    let (t, content, rest) = element(input)?;
    if t != tag {
        return None;
    }
    let whole = &input[..input.len() - rest.len()];
    Some((content, whole, rest))
}

/// Reads the subject CN, issuer CN and public key of a DER certificate; None when the
/// outer structure is not a certificate's.
pub fn cert_fields(der: &[u8]) -> Option<CertFields<'_>> {
    let (cert, _, _) = expect(der, SEQUENCE)?;
    let (tbs, _, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION_TAG) {
        rest = expect(rest, VERSION_TAG)?.2;
    }
    let (_, _, rest) = element(rest)?; // serialNumber
    let (_, _, rest) = expect(rest, SEQUENCE)?; // signature algorithm
    let (issuer, _, rest) = expect(rest, SEQUENCE)?;
    let (_, _, rest) = expect(rest, SEQUENCE)?; // validity
    let (subject, _, rest) = expect(rest, SEQUENCE)?;
    let (_, spki, _) = expect(rest, SEQUENCE)?;
    Some(CertFields {
        subject_cn: common_name(subject).unwrap_or_default(),
        issuer_cn: common_name(issuer).unwrap_or_default(),
        spki,
    })
}

/// The first CommonName in a Name's content (a SEQUENCE of SETs of
/// AttributeTypeAndValue).
fn common_name(mut name: &[u8]) -> Option<String> {
    while !name.is_empty() {
        let (rdn, _, rest) = expect(name, SET)?;
        name = rest;
        let mut atvs = rdn;
        while !atvs.is_empty() {
            let (atv, _, more) = expect(atvs, SEQUENCE)?;
            atvs = more;
            let (oid, _, value) = expect(atv, OID)?;
            if oid == CN_OID {
                let (tag, text, _) = element(value)?;
                return Some(decode_string(tag, text));
            }
        }
    }
    None
}

/// A directory string as text: UTF8String, PrintableString, IA5String and
/// TeletexString (read as Latin-1, as OpenSSL shows it), BMPString (UCS-2).
fn decode_string(tag: u8, bytes: &[u8]) -> String {
    match tag {
        0x1e => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        0x14 => bytes.iter().map(|b| char::from(*b)).collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wraps `content` in a DER element with `tag` (short or long length form).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else if len < 0x100 {
            out.extend([0x81, len as u8]);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn name(cn: Option<(u8, &[u8])>) -> Vec<u8> {
        let mut rdns = Vec::new();
        // O=Example first, so the CN is not simply the first attribute.
        let o = [tlv(OID, &[0x55, 0x04, 0x0a]), tlv(0x0c, b"Example")].concat();
        rdns.extend(tlv(SET, &tlv(SEQUENCE, &o)));
        if let Some((tag, text)) = cn {
            let atv = [tlv(OID, CN_OID), tlv(tag, text)].concat();
            rdns.extend(tlv(SET, &tlv(SEQUENCE, &atv)));
        }
        tlv(SEQUENCE, &rdns)
    }

    fn cert(version: bool, issuer: Vec<u8>, subject: Vec<u8>, spki: &[u8]) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(tlv(VERSION_TAG, &tlv(0x02, &[2])));
        }
        tbs.extend(tlv(0x02, &[1, 2, 3]));
        tbs.extend(tlv(SEQUENCE, &tlv(OID, &[0x2a, 0x86, 0x48])));
        tbs.extend(issuer);
        tbs.extend(tlv(SEQUENCE, &[]));
        tbs.extend(subject);
        tbs.extend_from_slice(spki);
        let body = [
            tlv(SEQUENCE, &tbs),
            tlv(SEQUENCE, &[]),
            tlv(0x03, &[0; 200]),
        ]
        .concat();
        tlv(SEQUENCE, &body)
    }

    #[test]
    fn reads_names_and_key() {
        let spki = tlv(
            SEQUENCE,
            &[tlv(SEQUENCE, &[]), tlv(0x03, &[0; 140])].concat(),
        );
        let der = cert(
            true,
            name(Some((0x13, b"Test CA"))),
            name(Some((0x0c, "client é".as_bytes()))),
            &spki,
        );
        let f = cert_fields(&der).expect("parses");
        assert_eq!(f.subject_cn, "client é");
        assert_eq!(f.issuer_cn, "Test CA");
        assert_eq!(f.spki, &spki[..]);
    }

    #[test]
    fn v1_certificate_bmp_and_missing_cn() {
        let spki = tlv(SEQUENCE, &[1, 2]);
        let bmp: Vec<u8> = "Ab".encode_utf16().flat_map(u16::to_be_bytes).collect();
        let der = cert(false, name(None), name(Some((0x1e, &bmp))), &spki);
        let f = cert_fields(&der).expect("parses");
        assert_eq!(f.subject_cn, "Ab");
        assert_eq!(f.issuer_cn, "");
    }

    #[test]
    fn truncated_or_wrong_input_is_none() {
        let spki = tlv(SEQUENCE, &[1, 2]);
        let der = cert(true, name(None), name(None), &spki);
        for cut in 0..der.len() {
            assert!(cert_fields(&der[..cut]).is_none(), "cut at {cut}");
        }
        assert!(cert_fields(b"not a certificate").is_none());
        // A length that claims more than there is.
        assert!(cert_fields(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = cert_fields(&bytes);
        }
    }
}
