//! inet service names (`host:port`, `[v6]:port`, `port`) and inet_interfaces /
//! inet_protocols turned into the socket addresses master binds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Which address families inet_protocols allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    pub v4: bool,
    pub v6: bool,
}

/// Parses inet_protocols (`all`, `ipv4`, `ipv6`, or a list of the last two).
pub fn parse_protocols(list: &[String]) -> Result<Protocols, String> {
    let mut protocols = Protocols {
        v4: false,
        v6: false,
    };
    for item in list {
        match item.to_ascii_lowercase().as_str() {
            "all" => protocols = Protocols { v4: true, v6: true },
            "ipv4" => protocols.v4 = true,
            "ipv6" => protocols.v6 = true,
            other => return Err(format!("inet_protocols: unknown protocol \"{other}\"")),
        }
    }
    if !protocols.v4 && !protocols.v6 {
        return Err("inet_protocols: no protocol given".to_string());
    }
    Ok(protocols)
}

/// The port of a service column: a number 1-65535 or a well-known mail service name.
pub fn service_port(text: &str) -> Option<u16> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u16>().ok().filter(|port| *port != 0);
    }
    match text {
        "smtp" => Some(25),
        "submission" => Some(587),
        "submissions" | "smtps" => Some(465),
        _ => None,
    }
}

/// Splits an inet service name into its host (if any, brackets removed) and port.
pub fn parse_inet_name(name: &str) -> Result<(Option<String>, u16), String> {
    let bad_port = |port: &str| format!("unknown service port \"{port}\"");
    if let Some(rest) = name.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| format!("malformed address \"{name}\": expected [address]:port"))?;
        if host.is_empty() {
            return Err(format!("malformed address \"{name}\": empty host"));
        }
        let port_number = service_port(port).ok_or_else(|| bad_port(port))?;
        return Ok((Some(host.to_string()), port_number));
    }
    match name.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err(format!(
            "malformed address \"{name}\": an IPv6 address must be written [address]:port"
        )),
        Some((host, port)) => {
            if host.is_empty() {
                return Err(format!("malformed address \"{name}\": empty host"));
            }
            let port_number = service_port(port).ok_or_else(|| bad_port(port))?;
            Ok((Some(host.to_string()), port_number))
        }
        None => Ok((None, service_port(name).ok_or_else(|| bad_port(name))?)),
    }
}

/// The addresses of one host: a literal IP (with or without brackets), `localhost`, or
/// a name resolved by the system resolver, filtered by `protocols`.
pub fn resolve_host(host: &str, protocols: Protocols) -> Result<Vec<IpAddr>, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let allowed = |ip: &IpAddr| (ip.is_ipv4() && protocols.v4) || (ip.is_ipv6() && protocols.v6);
    let found: Vec<IpAddr> = if bare.eq_ignore_ascii_case("localhost") {
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
    } else {
        (bare, 0)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve host \"{bare}\": {e}"))?
            .map(|addr| addr.ip())
            .collect()
    };
    let mut addrs: Vec<IpAddr> = Vec::new();
    for ip in found.into_iter().filter(allowed) {
        if !addrs.contains(&ip) {
            addrs.push(ip);
        }
    }
    if addrs.is_empty() {
        return Err(format!(
            "host \"{bare}\" has no address of an enabled protocol (inet_protocols)"
        ));
    }
    Ok(addrs)
}

/// The addresses inet_interfaces names: `all` (wildcards of each enabled family),
/// `loopback-only` (127.0.0.1, or ::1 without IPv4), or hosts and addresses.
pub fn interface_addrs(list: &[String], protocols: Protocols) -> Result<Vec<IpAddr>, String> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    let add = |ip: IpAddr, addrs: &mut Vec<IpAddr>| {
        if !addrs.contains(&ip) {
            addrs.push(ip);
        }
    };
    for item in list {
        match item.to_ascii_lowercase().as_str() {
            "all" => {
                if protocols.v4 {
                    add(IpAddr::V4(Ipv4Addr::UNSPECIFIED), &mut addrs);
                }
                if protocols.v6 {
                    add(IpAddr::V6(Ipv6Addr::UNSPECIFIED), &mut addrs);
                }
            }
            "loopback-only" => {
                if protocols.v4 {
                    add(IpAddr::V4(Ipv4Addr::LOCALHOST), &mut addrs);
                } else {
                    add(IpAddr::V6(Ipv6Addr::LOCALHOST), &mut addrs);
                }
            }
            _ => {
                for ip in resolve_host(item, protocols)? {
                    add(ip, &mut addrs);
                }
            }
        }
    }
    if addrs.is_empty() {
        return Err("inet_interfaces: no address to listen on".to_string());
    }
    Ok(addrs)
}

/// Every address an inet service listens on.
pub fn inet_endpoints(
    name: &str,
    interfaces: &[String],
    protocols: Protocols,
) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = parse_inet_name(name)?;
    let ips = match host {
        Some(host) => resolve_host(&host, protocols)?,
        None => interface_addrs(interfaces, protocols)?,
    };
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: Protocols = Protocols { v4: true, v6: true };
    const V4: Protocols = Protocols {
        v4: true,
        v6: false,
    };

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ports() {
        assert_eq!(service_port("25"), Some(25));
        assert_eq!(service_port("smtp"), Some(25));
        assert_eq!(service_port("submission"), Some(587));
        assert_eq!(service_port("submissions"), Some(465));
        assert_eq!(service_port("smtps"), Some(465));
        assert_eq!(service_port("65535"), Some(65535));
        assert_eq!(service_port("65536"), None);
        assert_eq!(service_port("0"), None);
        assert_eq!(service_port("imap"), None);
        assert_eq!(service_port(""), None);
        assert_eq!(service_port("-1"), None);
    }

    #[test]
    fn inet_names() {
        assert_eq!(parse_inet_name("smtp"), Ok((None, 25)));
        assert_eq!(parse_inet_name("2525"), Ok((None, 2525)));
        assert_eq!(
            parse_inet_name("127.0.0.1:2525"),
            Ok((Some("127.0.0.1".into()), 2525))
        );
        assert_eq!(
            parse_inet_name("[::1]:submission"),
            Ok((Some("::1".into()), 587))
        );
        assert_eq!(
            parse_inet_name("mx.example:smtp"),
            Ok((Some("mx.example".into()), 25))
        );
        assert!(parse_inet_name("::1:25")
            .unwrap_err()
            .contains("[address]:port"));
        assert!(parse_inet_name("bogus").unwrap_err().contains("bogus"));
        assert!(parse_inet_name("127.0.0.1:bogus").is_err());
        assert!(parse_inet_name(":25").is_err());
        assert!(parse_inet_name("[]:25").is_err());
        assert!(parse_inet_name("[::1]25").is_err());
    }

    #[test]
    fn protocols() {
        assert_eq!(parse_protocols(&list(&["all"])), Ok(ALL));
        assert_eq!(parse_protocols(&list(&["ipv4"])), Ok(V4));
        assert_eq!(parse_protocols(&list(&["ipv4", "ipv6"])), Ok(ALL));
        assert!(parse_protocols(&list(&["ipx"])).is_err());
        assert!(parse_protocols(&[]).is_err());
    }

    #[test]
    fn interfaces() {
        let all = interface_addrs(&list(&["all"]), ALL).unwrap();
        assert_eq!(
            all,
            vec!["0.0.0.0".parse::<IpAddr>().unwrap(), "::".parse().unwrap()]
        );
        assert_eq!(
            interface_addrs(&list(&["all"]), V4).unwrap(),
            vec!["0.0.0.0".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            interface_addrs(&list(&["loopback-only"]), ALL).unwrap(),
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        let explicit = interface_addrs(&list(&["127.0.0.1", "[::1]", "127.0.0.1"]), ALL).unwrap();
        assert_eq!(
            explicit,
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(
            interface_addrs(&list(&["localhost"]), V4).unwrap(),
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert!(interface_addrs(&[], ALL).is_err());
    }

    #[test]
    fn endpoints() {
        let e = inet_endpoints("smtp", &list(&["127.0.0.1"]), ALL).unwrap();
        assert_eq!(e, vec!["127.0.0.1:25".parse::<SocketAddr>().unwrap()]);
        let e = inet_endpoints("[::1]:2525", &list(&["all"]), ALL).unwrap();
        assert_eq!(e, vec!["[::1]:2525".parse::<SocketAddr>().unwrap()]);
        assert!(inet_endpoints("nope", &list(&["all"]), ALL).is_err());
    }

    proptest! {
        #[test]
        fn inet_name_parser_never_panics(name in "\\PC{0,40}") {
            let _ = parse_inet_name(&name);
        }
    }
}
