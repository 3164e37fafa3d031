//! Who the client is, in the forms logs and headers need. The name comes from
//! [`crate::peer_name`] (PTR plus forward confirmation, Postfix's smtpd_peer.c);
//! `name` is the verified name or `unknown`, `reverse_name` the unverified PTR name,
//! and each has Postfix's status (client_name_status / reverse_name_status) so
//! reject_unknown_client_hostname can tell a temporary failure from a permanent one.

use crate::cidr::normalize_ip;
use std::net::{IpAddr, SocketAddr};

/// How a name lookup ended (Postfix's SMTPD_PEER_CODE_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NameStatus {
    Ok,
    /// A DNS timeout or server failure: the caller answers 450.
    Temp,
    /// No PTR, a malformed name, or lookups turned off.
    Perm,
    /// The PTR name does not resolve back to the address.
    Forged,
}

/// The connected client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Verified host name, or "unknown". XCLIENT NAME= may set it too.
    pub name: String,
    /// The PTR name, unverified, or "unknown".
    pub reverse_name: String,
    pub name_status: NameStatus,
    pub reverse_name_status: NameStatus,
    /// The address (IPv4-mapped IPv6 shown as IPv4); None for a UNIX-domain client.
    pub ip: Option<IpAddr>,
    /// The client's TCP port, 0 when not known (a UNIX-domain client). Milters get it
    /// in CONNECT and `{client_port}`.
    pub port: u16,
    /// Our end of the connection (the address and port the client reached), for the
    /// `{daemon_addr}` and `{daemon_port}` milter macros; None when not known.
    pub server: Option<SocketAddr>,
}

impl ClientInfo {
    /// A TCP client whose name is not (yet) known.
    pub fn from_ip(ip: IpAddr) -> ClientInfo {
        ClientInfo {
            name: "unknown".into(),
            reverse_name: "unknown".into(),
            name_status: NameStatus::Perm,
            reverse_name_status: NameStatus::Perm,
            ip: Some(normalize_ip(ip)),
            port: 0,
            server: None,
        }
    }

    /// A TCP client from its and our socket addresses.
    pub fn from_endpoints(client: SocketAddr, server: Option<SocketAddr>) -> ClientInfo {
        ClientInfo {
            port: client.port(),
            server: server.map(|s| SocketAddr::new(normalize_ip(s.ip()), s.port())),
            ..ClientInfo::from_ip(client.ip())
        }
    }

    /// A client on a UNIX-domain socket (local tests, a proxy in front of us).
    pub fn local_socket() -> ClientInfo {
        ClientInfo {
            name: "localhost".into(),
            reverse_name: "localhost".into(),
            name_status: NameStatus::Ok,
            reverse_name_status: NameStatus::Ok,
            ip: None,
            port: 0,
            server: None,
        }
    }

    /// The address as text: `192.0.2.1`, `2001:db8::1`, or `unix`.
    pub fn addr(&self) -> String {
        match self.ip {
            Some(ip) => ip.to_string(),
            None => "unix".into(),
        }
    }

    /// `name[192.0.2.1]` or `unknown[192.0.2.1]`, the form used in every log line.
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
