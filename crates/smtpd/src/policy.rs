//! The relay check made at RCPT time (the foundation of Postfix's
//! `smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination`).
//!
//! A recipient is local when it has no domain, or its domain (lowercased, trailing dot
//! removed) is in mydestination. Local parts that route elsewhere (`%`, `!` or `@`,
//! also inside quotes: `"user@victim"@local`) are treated as foreign, because a later
//! rewrite could relay them: these are the classic open-relay tricks. Bare `postmaster`
//! is always accepted (RFC 5321 4.5.1). Foreign recipients are accepted only from
//! clients in mynetworks. Restriction lists, SASL and TLS grow on top of this later.

use crate::address::split_mailbox;

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

/// Lowercase, trailing dot removed: the form mydestination entries are kept in.
pub fn normalize_domain(domain: &str) -> String {
    domain.strip_suffix('.').unwrap_or(domain).to_lowercase()
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
    }
}
