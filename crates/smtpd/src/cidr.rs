//! A small CIDR matcher for `mynetworks`: `127.0.0.0/8`, `[::1]/128`,
//! `[::ffff:127.0.0.0]/104`, bare addresses (`192.0.2.1`, `::1`, `[::1]`).
//!
//! IPv4-mapped IPv6 networks (`::ffff:0:0/96` and narrower) are stored as the IPv4
//! network they mean, and client addresses are normalized the same way
//! ([`normalize_ip`]), so a dual-stack socket reporting `::ffff:127.0.0.1` matches
//! `127.0.0.0/8` and `[::ffff:127.0.0.0]/104` alike. Host bits set below the prefix
//! (`10.1.2.3/8`) are cleared, i.e. the entry means the network that contains it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A malformed network pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad net/mask pattern: {0}")]
pub struct CidrError(pub String);

/// One network: address with host bits cleared, and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// IPv4-mapped IPv6 addresses become plain IPv4 addresses.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

impl Cidr {
    /// Parses one pattern.
    pub fn parse(pattern: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError(pattern.to_string());
        let (addr_part, prefix_part) = match pattern.rsplit_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (pattern, None),
        };
        let addr_text = match addr_part.strip_prefix('[') {
            Some(rest) => rest.strip_suffix(']').ok_or_else(bad)?,
            None => addr_part,
        };
        let ip: IpAddr = addr_text.parse().map_err(|_| bad())?;
        // A bracketed IPv4 address is not a form Postfix accepts either.
        if addr_part.starts_with('[') && ip.is_ipv4() {
            return Err(bad());
        }
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_part {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr::new(ip, prefix))
    }

    fn new(ip: IpAddr, prefix: u8) -> Cidr {
        match ip {
            IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => {
                let v4 = v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED);
                Cidr::new(IpAddr::V4(v4), prefix - 96)
            }
            IpAddr::V4(v4) => {
                let net = u32::from(v4) & mask32(prefix);
                Cidr {
                    net: IpAddr::V4(Ipv4Addr::from(net)),
                    prefix,
                }
            }
            IpAddr::V6(v6) => {
                let net = u128::from(v6) & mask128(prefix);
                Cidr {
                    net: IpAddr::V6(Ipv6Addr::from(net)),
                    prefix,
                }
            }
        }
    }

    /// True when `ip` (normalized first) lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, normalize_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                u32::from(a) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                u128::from(a) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

/// A list of networks (`mynetworks`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkList(Vec<Cidr>);

impl NetworkList {
    /// Parses every pattern; the first bad one is the error.
    pub fn parse<'a>(
        patterns: impl IntoIterator<Item = &'a str>,
    ) -> Result<NetworkList, CidrError> {
        patterns
            .into_iter()
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(NetworkList)
    }

    /// True when `ip` is in any of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// No network at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_networks() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains(ip("127.0.0.1")));
        assert!(c.contains(ip("127.255.255.255")));
        assert!(!c.contains(ip("128.0.0.1")));
        assert!(!c.contains(ip("::1")));
        let c = Cidr::parse("192.168.1.0/24").unwrap();
        assert!(c.contains(ip("192.168.1.77")));
        assert!(!c.contains(ip("192.168.2.1")));
    }

    #[test]
    fn bare_addresses_are_hosts() {
        let c = Cidr::parse("192.0.2.1").unwrap();
        assert!(c.contains(ip("192.0.2.1")));
        assert!(!c.contains(ip("192.0.2.2")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("[::1]").unwrap().contains(ip("::1")));
    }

    #[test]
    fn ipv6_networks_in_brackets() {
        let c = Cidr::parse("[::1]/128").unwrap();
        assert!(c.contains(ip("::1")));
        assert!(!c.contains(ip("::2")));
        let c = Cidr::parse("[2001:db8::]/32").unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
    }

    #[test]
    fn mapped_networks_and_clients() {
        let c = Cidr::parse("[::ffff:127.0.0.0]/104").unwrap();
        assert!(c.contains(ip("127.0.0.1")));
        assert!(c.contains(ip("::ffff:127.0.0.1")));
        assert!(!c.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("127.0.0.0/8")
            .unwrap()
            .contains(ip("::ffff:127.9.9.9")));
    }

    #[test]
    fn zero_prefix_and_host_bits() {
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("203.0.113.9")));
        assert!(Cidr::parse("[::]/0").unwrap().contains(ip("2001:db8::1")));
        assert!(Cidr::parse("10.1.2.3/8")
            .unwrap()
            .contains(ip("10.200.0.1")));
    }

    #[test]
    fn bad_patterns() {
        for p in [
            "",
            "127.0.0.0/33",
            "[::1]/129",
            "x/8",
            "127.0.0.0/",
            "127.0.0.0/+8",
            "[127.0.0.1]",
            "[::1",
            "1.2.3/8",
        ] {
            assert!(Cidr::parse(p).is_err(), "{p}");
        }
    }

    #[test]
    fn list_matches_any() {
        let l = NetworkList::parse(["127.0.0.0/8", "[::ffff:127.0.0.0]/104", "[::1]/128"]).unwrap();
        assert!(l.contains(ip("127.0.0.1")));
        assert!(l.contains(ip("::1")));
        assert!(!l.contains(ip("192.0.2.1")));
        assert!(NetworkList::parse(["127.0.0.0/8", "bogus"]).is_err());
        assert!(!NetworkList::default().contains(ip("127.0.0.1")));
    }

    proptest! {
        #[test]
        fn v4_prefix_matches_arithmetic(a in any::<u32>(), b in any::<u32>(), p in 0u8..=32) {
            let c = Cidr::parse(&format!("{}/{}", Ipv4Addr::from(a), p)).unwrap();
            let same = p == 0 || (a >> (32 - u32::from(p))) == (b >> (32 - u32::from(p)));
            prop_assert_eq!(c.contains(IpAddr::V4(Ipv4Addr::from(b))), same);
        }

        #[test]
        fn parse_never_panics(s in ".{0,60}") {
            let _ = Cidr::parse(&s);
        }
    }
}
