//! Who the client is, in the forms logs and headers need. Reverse DNS is not done
//! (yet), so the name is always `unknown`, as Postfix logs a client without a name.

use crate::cidr::normalize_ip;
use std::net::IpAddr;

/// The connected client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Verified host name, or "unknown".
    pub name: String,
    /// The address (IPv4-mapped IPv6 shown as IPv4); None for a UNIX-domain client.
    pub ip: Option<IpAddr>,
}

impl ClientInfo {
    /// A TCP client without reverse DNS.
    pub fn from_ip(ip: IpAddr) -> ClientInfo {
        ClientInfo {
            name: "unknown".into(),
            ip: Some(normalize_ip(ip)),
        }
    }

    /// A client on a UNIX-domain socket (local tests, a proxy in front of us).
    pub fn local_socket() -> ClientInfo {
        ClientInfo {
            name: "localhost".into(),
            ip: None,
        }
    }

    /// The address as text: `192.0.2.1`, `2001:db8::1`, or `unix`.
    pub fn addr(&self) -> String {
        match self.ip {
            Some(ip) => ip.to_string(),
            None => "unix".into(),
        }
    }

    /// `unknown[192.0.2.1]`, the form used in every log line.
    pub fn log_name(&self) -> String {
        format!("{}[{}]", self.name, self.addr())
    }

    /// Inside the brackets of Received: `192.0.2.1` or `IPv6:2001:db8::1`.
    pub fn received_literal(&self) -> String {
        match self.ip {
            Some(IpAddr::V6(v6)) => format!("IPv6:{v6}"),
            _ => self.addr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let c = ClientInfo::from_ip("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(c.log_name(), "unknown[192.0.2.1]");
        assert_eq!(c.received_literal(), "192.0.2.1");
        let c = ClientInfo::from_ip("2001:db8::1".parse().unwrap());
        assert_eq!(c.log_name(), "unknown[2001:db8::1]");
        assert_eq!(c.received_literal(), "IPv6:2001:db8::1");
        assert_eq!(ClientInfo::local_socket().log_name(), "localhost[unix]");
    }
}
