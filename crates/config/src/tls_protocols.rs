//! Postfix's TLS protocol lists (`smtpd_tls_protocols`, `smtp_tls_mandatory_protocols`,
//! ...): `>=TLSv1.2`, `<=TLSv1.3`, `!SSLv2, !SSLv3, !TLSv1`, or a list of versions to
//! allow, separated by commas, colons or white space. Shared by smtpd and smtp, which
//! turn the result into rustls versions. rustls speaks only TLS 1.2 and 1.3, so older
//! versions can be excluded but never enabled.

const ORDER: [&str; 6] = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

/// Which of the versions rustls can speak a list allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsVersions {
    pub tls12: bool,
    pub tls13: bool,
}

/// Why a protocol list is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolListError {
    #[error("unknown protocol in list: {0}")]
    Unknown(String),
    #[error("no TLS 1.2 or 1.3 left")]
    NoneLeft,
}

/// Parses a protocol list into the TLS 1.2 / 1.3 versions it allows.
pub fn parse_tls_protocols(spec: &str) -> Result<TlsVersions, ProtocolListError> {
    let rank = |v: &str| {
        ORDER
            .iter()
            .position(|o| o.eq_ignore_ascii_case(v))
            .ok_or_else(|| ProtocolListError::Unknown(v.to_string()))
    };
    let mut allowed = [true; 6];
    let mut included: Option<[bool; 6]> = None;
    for item in spec
        .split(|c: char| c == ',' || c == ':' || c.is_whitespace())
        .filter(|i| !i.is_empty())
    {
        if let Some(v) = item.strip_prefix(">=") {
            let r = rank(v)?;
            allowed.iter_mut().take(r).for_each(|a| *a = false);
        } else if let Some(v) = item.strip_prefix("<=") {
            let r = rank(v)?;
            allowed.iter_mut().skip(r + 1).for_each(|a| *a = false);
        } else if let Some(v) = item.strip_prefix('!') {
            allowed[rank(v)?] = false;
        } else {
            included.get_or_insert([false; 6])[rank(item)?] = true;
        }
    }
    if let Some(inc) = included {
        for (a, i) in allowed.iter_mut().zip(inc) {
            *a &= i;
        }
    }
    let v = TlsVersions {
        tls12: allowed[4],
        tls13: allowed[5],
    };
    if !v.tls12 && !v.tls13 {
        return Err(ProtocolListError::NoneLeft);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(tls12: bool, tls13: bool) -> TlsVersions {
        TlsVersions { tls12, tls13 }
    }

    #[test]
    fn postfix_list_forms() {
        assert_eq!(parse_tls_protocols(">=TLSv1.2"), Ok(v(true, true)));
        assert_eq!(parse_tls_protocols(">=TLSv1.3"), Ok(v(false, true)));
        assert_eq!(parse_tls_protocols("<=TLSv1.2"), Ok(v(true, false)));
        assert_eq!(
            parse_tls_protocols("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"),
            Ok(v(true, true))
        );
        assert_eq!(parse_tls_protocols("!TLSv1.2"), Ok(v(false, true)));
        assert_eq!(parse_tls_protocols("TLSv1.2:TLSv1.3"), Ok(v(true, true)));
        assert_eq!(parse_tls_protocols("TLSv1.2"), Ok(v(true, false)));
        assert_eq!(parse_tls_protocols(""), Ok(v(true, true)));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_tls_protocols(">=TLSv9"),
            Err(ProtocolListError::Unknown("TLSv9".into()))
        );
        assert_eq!(
            parse_tls_protocols("TLSv1, TLSv1.1"),
            Err(ProtocolListError::NoneLeft)
        );
        assert_eq!(
            parse_tls_protocols("<=TLSv1.1"),
            Err(ProtocolListError::NoneLeft)
        );
    }
}
