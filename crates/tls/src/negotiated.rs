//! The protocol, cipher and key bits a handshake agreed on, and the text Postfix logs
//! and writes into Received: for them: `TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384
//! (256/256 bits)`.

use rustls::{CommonState, ProtocolVersion, SupportedCipherSuite};

/// What a finished handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// `TLSv1.3`.
    pub protocol: String,
    /// rustls' suite name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The symmetric key size.
    pub bits: u32,
}

impl Negotiated {
    /// Reads what a client or server connection (both deref to CommonState) agreed.
    pub fn of(conn: &CommonState) -> Negotiated {
        let protocol = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => "unknown".to_string(),
        };
        let suite = conn.negotiated_cipher_suite();
        let cipher = suite
            .map(|s| {
                let id = s.suite();
                id.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{id:?}"))
            })
            .unwrap_or_else(|| "unknown".to_string());
        Negotiated {
            protocol,
            cipher,
            bits: suite.map_or(0, suite_bits),
        }
    }

    /// `TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384 (256/256 bits)`: Postfix's
    /// "bits used/bits of the algorithm", equal for every AEAD suite.
    pub fn summary(&self) -> String {
        format!(
            "{} with cipher {} ({}/{} bits)",
            self.protocol, self.cipher, self.bits, self.bits
        )
    }
}

/// The suite's symmetric key size, from its AEAD algorithm rather than its name, so a
/// suite rustls adds later is counted right too.
pub fn suite_bits(suite: SupportedCipherSuite) -> u32 {
    let bytes = match suite {
        SupportedCipherSuite::Tls13(s) => s.aead_alg.key_len(),
        SupportedCipherSuite::Tls12(s) => s.aead_alg.key_block_shape().enc_key_len,
    };
    u32::try_from(bytes * 8).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::ring::ALL_CIPHER_SUITES;

    /// Every suite the ring provider offers, with the bits OpenSSL (and so Postfix)
    /// reports for it.
    const EXPECTED: &[(&str, u32)] = &[
        ("TLS13_AES_256_GCM_SHA384", 256),
        ("TLS13_AES_128_GCM_SHA256", 128),
        ("TLS13_CHACHA20_POLY1305_SHA256", 256),
        ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 256),
        ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 128),
        ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 256),
        ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 256),
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 128),
        ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 256),
    ];

    #[test]
    fn bits_right_for_every_suite_rustls_offers() {
        assert_eq!(
            ALL_CIPHER_SUITES.len(),
            EXPECTED.len(),
            "a suite is not pinned"
        );
        for suite in ALL_CIPHER_SUITES {
            let name = suite.suite().as_str().expect("named suite");
            let want = EXPECTED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, bits)| *bits);
            assert_eq!(Some(suite_bits(*suite)), want, "{name}");
        }
    }

    #[test]
    fn summary_is_postfix_text() {
        let n = Negotiated {
            protocol: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            bits: 256,
        };
        assert_eq!(
            n.summary(),
            "TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384 (256/256 bits)"
        );
        let n = Negotiated {
            protocol: "TLSv1.2".into(),
            cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
            bits: 128,
        };
        assert_eq!(
            n.summary(),
            "TLSv1.2 with cipher TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (128/128 bits)"
        );
    }
}
