//! The `_smtp._tls.DOMAIN` TXT record (RFC 8460 3): `v=TLSRPTv1; rua=mailto:a@b,https://...`.
//! Only `mailto:` addresses are used so far (https POST is not implemented: such
//! destinations are logged and skipped).

/// Where a domain wants its reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rua {
    pub mailto: Vec<String>,
    pub https: Vec<String>,
}

/// The rua of the first TLSRPTv1 record among `records` (RFC 8460: more than one
/// record means none is used).
pub fn parse(records: &[String]) -> Option<Rua> {
    let ours: Vec<&String> = records
        .iter()
        .filter(|r| r.trim_start().starts_with("v=TLSRPTv1"))
        .collect();
    if ours.len() != 1 {
        return None;
    }
    let mut rua = Rua::default();
    for field in ours[0].split(';').map(str::trim) {
        let Some((name, value)) = field.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("rua") {
            continue;
        }
        for uri in value.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            if let Some(addr) = uri.strip_prefix("mailto:") {
                // %-encoding is allowed in URIs; addresses we can use have none.
                if addr.contains('@') && !addr.contains(['%', '?', '<', '>', ' ']) {
                    rua.mailto.push(addr.to_string());
                }
            } else if uri.starts_with("https://") {
                rua.https.push(uri.to_string());
            }
        }
    }
    (!rua.mailto.is_empty() || !rua.https.is_empty()).then_some(rua)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let r =
            parse(&["v=TLSRPTv1; rua=mailto:tls@example.org,https://r.example/x".into()]).unwrap();
        assert_eq!(r.mailto, ["tls@example.org"]);
        assert_eq!(r.https, ["https://r.example/x"]);
        assert!(parse(&["v=spf1 -all".into()]).is_none());
        assert!(parse(&[
            "v=TLSRPTv1; rua=mailto:a@x".into(),
            "v=TLSRPTv1; rua=mailto:b@x".into()
        ])
        .is_none());
        assert!(parse(&["v=TLSRPTv1; rua=ftp://x".into()]).is_none());
    }
}
