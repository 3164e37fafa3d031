//! A Postfix protocol list (`smtpd_tls_protocols`, `smtp_tls_mandatory_protocols`, ...)
//! as the rustls versions to offer, newest first.

use rostfix_config::{parse_tls_protocols, ProtocolListError};
use rustls::SupportedProtocolVersion;

/// The versions `spec` allows; the caller words the error with its parameter name.
pub fn protocol_versions(
    spec: &str,
) -> Result<Vec<&'static SupportedProtocolVersion>, ProtocolListError> {
    let allowed = parse_tls_protocols(spec)?;
    let mut versions = Vec::new();
    if allowed.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if allowed.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::version::{TLS12, TLS13};

    #[test]
    fn newest_first_and_errors_passed_on() {
        assert_eq!(protocol_versions(">=TLSv1.2"), Ok(vec![&TLS13, &TLS12]));
        assert_eq!(protocol_versions("!TLSv1.2"), Ok(vec![&TLS13]));
        assert_eq!(protocol_versions("TLSv1.2"), Ok(vec![&TLS12]));
        assert_eq!(protocol_versions("TLSv1"), Err(ProtocolListError::NoneLeft));
        assert_eq!(
            protocol_versions("bogus"),
            Err(ProtocolListError::Unknown("bogus".into()))
        );
    }
}
