//! The `_smtp._tls.DOMAIN` TXT record (RFC 8460 3): `v=TLSRPTv1; rua=mailto:a@b,https://...`.
//! `mailto:` addresses get the report as mail, `https:` ones by POST (the tlsrpt
//! service's `upload`).

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
                if usable_address(addr) {
                    rua.mailto.push(addr.to_string());
                }
            } else if uri.starts_with("https://") {
                rua.https.push(uri.to_string());
            }
        }
    }
    (!rua.mailto.is_empty() || !rua.https.is_empty()).then_some(rua)
}

/// An address the report can be queued to: %-encoding and URI parameters are allowed
/// in mailto: URIs but the addresses we can use have none, and the domain must be a
/// host name (a record whose strings were split at a comma joins the next URI onto it:
/// `mailto:a@example.orghttps://...` is refused, not mailed).
fn usable_address(addr: &str) -> bool {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains(['%', '?', '<', '>', ' ', '"', '\\', ',', ':', '/'])
        && !domain.is_empty()
        && domain.len() <= 253
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
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
        // Two TXT strings joined without their comma (RFC 8460 3: strings are
        // concatenated): the glued mailto: is no address.
        let glued = parse(&["v=TLSRPTv1; rua=mailto:t@x.examplehttps://r.example/x".into()]);
        assert!(glued.is_none());
        for bad in [
            "mailto:@x",
            "mailto:a@",
            "mailto:a@x..y",
            "mailto:a%40b@x",
            "mailto:a@x?s=1",
        ] {
            assert!(
                parse(&[format!("v=TLSRPTv1; rua={bad}")]).is_none(),
                "{bad}"
            );
        }
    }
}
