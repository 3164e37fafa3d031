//! Our own addresses for permit_inet_interfaces: the inet_interfaces setting, with
//! `all` meaning every address of every interface (read once, before confinement).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The addresses `inet_interfaces` names; host names are skipped (smtpd resolves
/// nothing at start-up for this).
pub fn own_addresses(items: &[String]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for item in items {
        match item.to_ascii_lowercase().as_str() {
            "all" => {
                if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
                    for a in addrs {
                        let Some(sa) = a.address else { continue };
                        if let Some(v4) = sa.as_sockaddr_in() {
                            out.push(IpAddr::V4(v4.ip()));
                        } else if let Some(v6) = sa.as_sockaddr_in6() {
                            out.push(IpAddr::V6(v6.ip()));
                        }
                    }
                }
                out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
                out.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
            }
            "loopback-only" | "localhost" => {
                out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
                out.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
            }
            other => {
                let bare = other.trim_start_matches('[').trim_end_matches(']');
                if let Ok(ip) = bare.parse() {
                    out.push(ip);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_and_literal() {
        let a = own_addresses(&[
            "loopback-only".into(),
            "[192.0.2.7]".into(),
            "x.test".into(),
        ]);
        assert!(a.contains(&"127.0.0.1".parse().unwrap()));
        assert!(a.contains(&"192.0.2.7".parse().unwrap()));
        assert_eq!(a.len(), 3);
        assert!(own_addresses(&["all".into()]).contains(&"127.0.0.1".parse().unwrap()));
    }
}
