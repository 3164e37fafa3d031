//! The relay check made at RCPT time (the foundation of Postfix's
//! `smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination`).
//!
//! A recipient is local when it has no domain, or its domain (lowercased, trailing dot
//! removed) is in mydestination, or it is an `[address]` literal of one of our
//! inet_interfaces / proxy_interfaces addresses (Postfix's resolve_local; smtpd's settings
//! add those literals, in [`address_literal`] form, to the list it passes here). Local parts that route elsewhere (`%`, `!` or `@`,
//! also inside quotes: `"user@victim"@local`) are treated as foreign, because a later
//! rewrite could relay them: these are the classic open-relay tricks. Bare `postmaster`
//! is always accepted (RFC 5321 4.5.1). Foreign recipients are accepted only from
//! clients in mynetworks. Restriction lists, SASL and TLS grow on top of this later.

use crate::address::split_mailbox;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the relay check decided for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayVerdict {
    /// Mail for us.
    Local,
    /// Foreign, but the client may relay (in mynetworks).
    Relay,
    /// Foreign and the client may not relay.
    Denied,
}

/// Decides for `recipient` (already parsed, source route removed).
/// `mydestination` must hold lowercased domains without a trailing dot.
pub fn check_relay(
    recipient: &str,
    client_trusted: bool,
    mydestination: &[String],
) -> RelayVerdict {
    if recipient.eq_ignore_ascii_case("postmaster") {
        return RelayVerdict::Local;
    }
    let (local, domain) = split_mailbox(recipient);
    let routed = local.contains(['%', '!', '@']);
    let local_domain = match domain {
        None => true,
        Some(d) => is_my_destination(d, mydestination),
    };
    if local_domain && !routed {
        RelayVerdict::Local
    } else if client_trusted {
        RelayVerdict::Relay
    } else {
        RelayVerdict::Denied
    }
}

/// Case-insensitive match of a domain against mydestination.
pub fn is_my_destination(domain: &str, mydestination: &[String]) -> bool {
    let d = normalize_domain(domain);
    mydestination.contains(&d)
}

/// Lowercase, trailing dot removed: the form mydestination entries are kept in. An
/// address literal takes [`address_literal`]'s form, so `[IPv6:0::1]` and `[ipv6:::1]`
/// compare equal.
pub fn normalize_domain(domain: &str) -> String {
    let d = domain.strip_suffix('.').unwrap_or(domain).to_lowercase();
    let ip = d
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .and_then(|inner| match inner.strip_prefix("ipv6:") {
            Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            None => inner.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        });
    match ip {
        Some(ip) => address_literal(ip),
        None => d,
    }
}

/// The domain-literal form of an address: `[192.0.2.1]`, `[ipv6:2001:db8::1]`.
pub fn address_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[ipv6:{v6}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest() -> Vec<String> {
        ["mx.example.com", "localhost.example.com", "localhost"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn local_domains_accepted_from_anywhere() {
        assert_eq!(
            check_relay("user@mx.example.com", false, &dest()),
            RelayVerdict::Local
        );
        assert_eq!(
            check_relay("User@MX.Example.COM.", false, &dest()),
            RelayVerdict::Local
        );
        assert_eq!(check_relay("user", false, &dest()), RelayVerdict::Local);
        assert_eq!(
            check_relay("PostMaster", false, &dest()),
            RelayVerdict::Local
        );
    }

    #[test]
    fn foreign_domains_need_mynetworks() {
        assert_eq!(
            check_relay("user@victim.example", false, &dest()),
            RelayVerdict::Denied
        );
        assert_eq!(
            check_relay("user@victim.example", true, &dest()),
            RelayVerdict::Relay
        );
        assert_eq!(
            check_relay("postmaster@victim.example", false, &dest()),
            RelayVerdict::Denied
        );
    }

    #[test]
    fn routing_tricks_are_foreign() {
        for rcpt in [
            "user%victim.example@mx.example.com",
            "victim.example!user@mx.example.com",
            "\"user@victim.example\"@mx.example.com",
            "user@victim.example@localhost",
            "user%victim.example",
            "victim!user",
        ] {
            assert_eq!(
                check_relay(rcpt, false, &dest()),
                RelayVerdict::Denied,
                "{rcpt}"
            );
            assert_eq!(
                check_relay(rcpt, true, &dest()),
                RelayVerdict::Relay,
                "{rcpt}"
            );
        }
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize_domain("Example.COM."), "example.com");
        assert!(is_my_destination("LOCALHOST.", &dest()));
        assert!(!is_my_destination("localhost.evil", &dest()));
        assert_eq!(normalize_domain("[IPv6:0:0::1]"), "[ipv6:::1]");
        assert_eq!(normalize_domain("[127.0.0.1]"), "[127.0.0.1]");
        // Not an address: left as text, never equal to a literal of ours.
        assert_eq!(normalize_domain("[127.0.0.01]"), "[127.0.0.01]");
    }

    #[test]
    fn own_address_literals_are_local() {
        let mut d = dest();
        d.push(address_literal("127.0.0.1".parse().unwrap()));
        d.push(address_literal("::1".parse().unwrap()));
        for rcpt in ["user@[127.0.0.1]", "user@[IPv6:::1]", "user@[ipv6:0::1]"] {
            assert_eq!(check_relay(rcpt, false, &d), RelayVerdict::Local, "{rcpt}");
        }
        for rcpt in [
            "user@[127.0.0.2]",
            "user%far.example@[127.0.0.1]",
            "user@[::1]",
        ] {
            assert_eq!(check_relay(rcpt, false, &d), RelayVerdict::Denied, "{rcpt}");
        }
        // Without the literals (another interface list) the same address is foreign.
        assert_eq!(
            check_relay("user@[127.0.0.1]", false, &dest()),
            RelayVerdict::Denied
        );
    }
}
