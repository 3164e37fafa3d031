//! The address resolver (a small trivial-rewrite): which transport and next hop deliver a
//! recipient. Local class: the domain is empty or listed in mydestination ->
//! local_transport. Default class: everything else -> default_transport, next hop
//! relayhost or the domain. A `transport:nexthop` value overrides the next hop, as in
//! Postfix's resolve.c. Pure: the tables come in as a [`ResolveConfig`].
//!
//! Not yet supported (partial): virtual_*_domains, relay_domains, transport_maps, own
//! `[ip]` literals as local, and lookup tables (`/file`, `type:table`) inside
//! mydestination; such mydestination entries are ignored (main.rs warns once).

/// What the resolver needs from main.cf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveConfig {
    pub myhostname: String,
    /// Domains, normalized by [`normalize_domain`].
    pub mydestination: Vec<String>,
    /// e.g. `local:$myhostname` (expanded).
    pub local_transport: String,
    /// e.g. `smtp`.
    pub default_transport: String,
    /// e.g. `[mail.example.org]:587`, or empty.
    pub relayhost: String,
}

impl ResolveConfig {
    /// Builds the config, normalizing mydestination and dropping table lookups.
    /// Returns the dropped entries so the caller can warn about them.
    pub fn new(
        myhostname: &str,
        mydestination: &[String],
        local_transport: &str,
        default_transport: &str,
        relayhost: &str,
    ) -> (ResolveConfig, Vec<String>) {
        let mut domains = Vec::new();
        let mut unsupported = Vec::new();
        for entry in mydestination {
            if entry.starts_with('/') || entry.contains(':') {
                unsupported.push(entry.clone());
            } else {
                let d = normalize_domain(entry);
                if !d.is_empty() {
                    domains.push(d);
                }
            }
        }
        let cfg = ResolveConfig {
            myhostname: myhostname.to_string(),
            mydestination: domains,
            local_transport: local_transport.trim().to_string(),
            default_transport: default_transport.trim().to_string(),
            relayhost: relayhost.trim().to_string(),
        };
        (cfg, unsupported)
    }
}

/// Where a recipient goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    /// master.cf service name; requests go to `private/TRANSPORT`.
    pub transport: String,
    pub nexthop: String,
}

/// Why a recipient cannot be routed (a configuration problem: the recipient is deferred).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("bad transport name in configuration: \"{0}\"")]
    BadTransport(String),
}

/// Lower case without a trailing dot: how domains are compared.
pub fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The domain part: what follows the last `@` ("" if there is none). The last one,
/// because a quoted local part may itself contain `@`.
pub fn domain_of(address: &str) -> &str {
    address.rfind('@').map_or("", |i| &address[i + 1..])
}

/// True if `domain` (any case, optional trailing dot) is one of ours.
pub fn is_local_domain(domain: &str, mydestination: &[String]) -> bool {
    let d = normalize_domain(domain);
    d.is_empty() || mydestination.contains(&d)
}

/// Splits `transport[:nexthop]`; an empty nexthop counts as none.
pub fn split_transport(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((t, n)) if !n.is_empty() => (t, Some(n)),
        Some((t, _)) => (t, None),
        None => (spec, None),
    }
}

/// A transport name becomes a socket path under private/, so it must be a plain name.
fn valid_transport(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Resolves one recipient address.
pub fn resolve(address: &str, cfg: &ResolveConfig) -> Result<Route, ResolveError> {
    let domain = domain_of(address);
    let (spec, fallback_transport) = if is_local_domain(domain, &cfg.mydestination) {
        (cfg.local_transport.as_str(), "local")
    } else {
        (cfg.default_transport.as_str(), "smtp")
    };
    let (transport, explicit_nexthop) = split_transport(spec);
    let transport = if transport.is_empty() {
        fallback_transport
    } else {
        transport
    };
    if !valid_transport(transport) {
        return Err(ResolveError::BadTransport(transport.to_string()));
    }
    let nexthop = match explicit_nexthop {
        Some(n) => n.to_string(),
        None if fallback_transport == "local" => cfg.myhostname.clone(),
        None if !cfg.relayhost.is_empty() => cfg.relayhost.clone(),
        None => normalize_domain(domain),
    };
    Ok(Route {
        transport: transport.to_string(),
        nexthop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(relayhost: &str) -> ResolveConfig {
        let dest: Vec<String> = [
            "mail.example.org",
            "localhost.example.org",
            "localhost",
            "Example.ORG.",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        ResolveConfig::new(
            "mail.example.org",
            &dest,
            "local:mail.example.org",
            "smtp",
            relayhost,
        )
        .0
    }

    fn route(t: &str, n: &str) -> Route {
        Route {
            transport: t.into(),
            nexthop: n.into(),
        }
    }

    #[test]
    fn local_domains_match_case_insensitively_and_ignore_trailing_dot() {
        let c = cfg("");
        let local = route("local", "mail.example.org");
        assert_eq!(resolve("alice@mail.example.org", &c), Ok(local.clone()));
        assert_eq!(resolve("alice@MAIL.Example.Org", &c), Ok(local.clone()));
        assert_eq!(resolve("alice@mail.example.org.", &c), Ok(local.clone()));
        // The configured entry had upper case and a trailing dot.
        assert_eq!(resolve("bob@example.org", &c), Ok(local.clone()));
        assert_eq!(resolve("root@localhost", &c), Ok(local));
    }

    #[test]
    fn no_domain_is_local() {
        assert_eq!(
            resolve("root", &cfg("")),
            Ok(route("local", "mail.example.org"))
        );
        assert_eq!(
            resolve("root@", &cfg("")),
            Ok(route("local", "mail.example.org"))
        );
    }

    #[test]
    fn remote_goes_to_domain_without_relayhost() {
        assert_eq!(
            resolve("bob@Example.NET.", &cfg("")),
            Ok(route("smtp", "example.net"))
        );
        // A subdomain of a local domain is not local.
        assert_eq!(
            resolve("x@sub.example.org", &cfg("")),
            Ok(route("smtp", "sub.example.org"))
        );
    }

    #[test]
    fn relayhost_is_the_nexthop_for_remote_only() {
        let c = cfg("[relay.example.com]:587");
        assert_eq!(
            resolve("bob@example.net", &c),
            Ok(route("smtp", "[relay.example.com]:587"))
        );
        assert_eq!(
            resolve("alice@example.org", &c),
            Ok(route("local", "mail.example.org"))
        );
    }

    #[test]
    fn explicit_transport_nexthop_wins_over_relayhost() {
        let mut c = cfg("[relay.example.com]");
        c.default_transport = "smtp:[smarthost]:25".into();
        assert_eq!(
            resolve("bob@example.net", &c),
            Ok(route("smtp", "[smarthost]:25"))
        );
    }

    #[test]
    fn local_transport_without_nexthop_uses_myhostname() {
        let mut c = cfg("");
        c.local_transport = "local".into();
        assert_eq!(
            resolve("alice@localhost", &c),
            Ok(route("local", "mail.example.org"))
        );
    }

    #[test]
    fn quoted_local_part_with_at_uses_last_at() {
        assert_eq!(
            resolve("\"a@b\"@example.net", &cfg("")),
            Ok(route("smtp", "example.net"))
        );
        assert_eq!(
            resolve("\"x@example.net\"@localhost", &cfg("")),
            Ok(route("local", "mail.example.org"))
        );
    }

    #[test]
    fn transport_names_cannot_escape_private() {
        let mut c = cfg("");
        c.default_transport = "../public/qmgr".into();
        assert!(resolve("bob@example.net", &c).is_err());
        c.default_transport = "".into();
        assert_eq!(
            resolve("bob@example.net", &c),
            Ok(route("smtp", "example.net"))
        );
    }

    #[test]
    fn table_lookups_in_mydestination_are_reported() {
        let dest = vec![
            "hash:/etc/rostfix/domains".to_string(),
            "/etc/rostfix/d".into(),
            "a.org".into(),
        ];
        let (c, dropped) = ResolveConfig::new("h", &dest, "local", "smtp", "");
        assert_eq!(c.mydestination, vec!["a.org".to_string()]);
        assert_eq!(dropped.len(), 2);
    }

    #[test]
    fn split_transport_forms() {
        assert_eq!(split_transport("smtp"), ("smtp", None));
        assert_eq!(split_transport("smtp:"), ("smtp", None));
        assert_eq!(split_transport("smtp:[h]:25"), ("smtp", Some("[h]:25")));
    }
}
