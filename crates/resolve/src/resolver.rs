//! The resolver: main.cf's address-class parameters and tables, opened once, and the
//! functions that classify, route and expand an address. See the crate docs for the
//! rules; this file is their implementation.

use crate::canonical::Canonical;
use crate::domain_list::{normalize_domain, split_list, DomainList};
use crate::error::ResolveError;
use crate::sender_dependent::SenderDependent;
use crate::transport;
use crate::virtual_alias::{self, split_addresses, ExpandError, ExpandLimits};
use rostfix_config::MainCf;
use rostfix_maps::address::{address_queries, split_extension};
use rostfix_maps::{open_map_with, Map, OpenFlags};
use std::net::IpAddr;

/// Diagnostic of an address in a virtual alias domain that has no mapping.
pub const VIRTUAL_ALIAS_UNKNOWN: &str = "5.1.1 User unknown in virtual alias table";

/// Postfix's address classes (ADDRESS_CLASS_README), in the order they are tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// mydestination, inet_interfaces/proxy_interfaces `[ip]` literals, no domain.
    Local,
    /// virtual_alias_domains: only the aliases exist there.
    VirtualAlias,
    /// virtual_mailbox_domains: delivered by virtual_transport.
    VirtualMailbox,
    /// relay_domains: delivered by relay_transport.
    Relay,
    /// Everything else: default_transport, relayhost.
    Default,
}

/// Where an address goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub class: AddressClass,
    /// A master.cf service name, or one of qmgr's built-ins `error`, `discard`, `retry`.
    pub transport: String,
    /// The next hop; for `error`/`discard`/`retry`, the diagnostic text.
    pub nexthop: String,
}

/// A transport name must be a plain service name: it becomes `private/NAME`.
pub fn valid_transport(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The domain part: after the last `@` ("" when there is none).
pub fn domain_of(address: &str) -> &str {
    address.rfind('@').map_or("", |i| &address[i + 1..])
}

/// The resolver (see the crate documentation).
pub struct Resolver {
    pub myhostname: String,
    canonical: Canonical,
    mydestination: DomainList,
    own_addresses: Vec<IpAddr>,
    virtual_alias_domains: DomainList,
    virtual_mailbox_domains: DomainList,
    relay_domains: DomainList,
    local_transport: String,
    virtual_transport: String,
    relay_transport: String,
    default_transport: String,
    relayhost: String,
    sender_dependent: SenderDependent,
    transport_maps: Vec<Box<dyn Map>>,
    transport_parent_matches: bool,
    virtual_alias_maps: Vec<Box<dyn Map>>,
    recipient_delimiter: String,
    propagate_virtual_extension: bool,
    expand_limits: ExpandLimits,
    address_length_limit: usize,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("myhostname", &self.myhostname)
            .field("mydestination", &self.mydestination)
            .field("relayhost", &self.relayhost)
            .finish_non_exhaustive()
    }
}

fn open_tables(
    param: &str,
    value: &str,
    flags: OpenFlags,
) -> Result<Vec<Box<dyn Map>>, ResolveError> {
    split_list(value)
        .iter()
        .map(|spec| {
            open_map_with(spec, flags).map_err(|source| ResolveError::Open {
                param: param.to_string(),
                source,
            })
        })
        .collect()
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n.max(1)).unwrap_or(usize::MAX)
}

/// The addresses named by inet_interfaces / proxy_interfaces entries.
fn interface_addresses(items: &[String]) -> Vec<IpAddr> {
    let loopback = [
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
    ];
    let mut out = Vec::new();
    for item in items {
        let item = item.trim_start_matches('[').trim_end_matches(']');
        match item.to_ascii_lowercase().as_str() {
            "all" => match nix::ifaddrs::getifaddrs() {
                Ok(ifs) => {
                    for i in ifs {
                        let addr = i.address.as_ref();
                        if let Some(v4) = addr.and_then(|a| a.as_sockaddr_in()) {
                            out.push(IpAddr::V4(v4.ip()));
                        } else if let Some(v6) = addr.and_then(|a| a.as_sockaddr_in6()) {
                            out.push(IpAddr::V6(v6.ip()));
                        }
                    }
                }
                Err(e) => {
                    log::warn!("cannot list network interfaces: {e}");
                    out.extend(loopback);
                }
            },
            "loopback-only" | "localhost" => out.extend(loopback),
            other => {
                if let Ok(ip) = other.parse::<IpAddr>() {
                    out.push(ip);
                }
            }
        }
    }
    out
}

impl Resolver {
    /// Reads every parameter and opens every table. A table that cannot be opened is an
    /// error (the caller logs it and defers mail: routing without it would be wrong).
    pub fn from_config(cfg: &MainCf) -> Result<Resolver, ResolveError> {
        let parent = cfg.get_list("parent_domain_matches_subdomains");
        let parent_has = |name: &str| parent.iter().any(|p| p == name);
        let list = |name: &str, parent_matches: bool| {
            DomainList::new(name, &split_list(&cfg.get(name)), parent_matches)
        };
        let myhostname = cfg.get("myhostname");
        let mut ifaces = cfg.get_list("inet_interfaces");
        ifaces.extend(cfg.get_list("proxy_interfaces"));
        Ok(Resolver {
            canonical: Canonical::from_config(cfg),
            mydestination: list("mydestination", parent_has("mydestination"))?,
            own_addresses: interface_addresses(&ifaces),
            virtual_alias_domains: list(
                "virtual_alias_domains",
                parent_has("virtual_alias_domains"),
            )?,
            virtual_mailbox_domains: list(
                "virtual_mailbox_domains",
                parent_has("virtual_mailbox_domains"),
            )?,
            relay_domains: list("relay_domains", parent_has("relay_domains"))?,
            local_transport: cfg.get("local_transport").trim().to_string(),
            virtual_transport: cfg.get("virtual_transport").trim().to_string(),
            relay_transport: cfg.get("relay_transport").trim().to_string(),
            default_transport: cfg.get("default_transport").trim().to_string(),
            relayhost: cfg.get("relayhost").trim().to_string(),
            sender_dependent: SenderDependent::from_config(cfg)?,
            transport_maps: open_tables(
                "transport_maps",
                &cfg.get("transport_maps"),
                // As Postfix's trivial-rewrite (NO_REGSUB): a regexp transport must
                // not build a transport or next hop out of the address.
                OpenFlags::PARANOID,
            )?,
            transport_parent_matches: parent_has("transport_maps"),
            virtual_alias_maps: open_tables(
                "virtual_alias_maps",
                &cfg.get("virtual_alias_maps"),
                OpenFlags::default(),
            )?,
            recipient_delimiter: cfg.get("recipient_delimiter"),
            propagate_virtual_extension: cfg
                .get_list("propagate_unmatched_extensions")
                .iter()
                .any(|p| p == "virtual"),
            expand_limits: ExpandLimits {
                recursion: to_usize(cfg.get_int("virtual_alias_recursion_limit")),
                expansion: to_usize(cfg.get_int("virtual_alias_expansion_limit")),
            },
            address_length_limit: to_usize(cfg.get_int("virtual_alias_address_length_limit")),
            myhostname,
        })
    }

    /// Builds a resolver from main.cf text (tests, tools).
    pub fn from_main_cf_text(text: &str) -> Result<Resolver, Box<dyn std::error::Error>> {
        let cfg = MainCf::parse(text, std::path::Path::new("/nonexistent/main.cf"))?;
        Ok(Resolver::from_config(&cfg)?)
    }

    /// The canonical form of an envelope address (see [`Canonical`]).
    pub fn canonicalize(&self, address: &str, local_context: bool) -> String {
        self.canonical.canonicalize(address, local_context)
    }

    /// recipient_delimiter (for callers splitting extensions themselves).
    pub fn recipient_delimiter(&self) -> &str {
        &self.recipient_delimiter
    }

    /// True for an empty domain, a mydestination domain, or an `[ip]` literal of one of
    /// our inet_interfaces / proxy_interfaces addresses.
    pub fn is_local_domain(&self, domain: &str) -> Result<bool, ResolveError> {
        let d = normalize_domain(domain);
        if d.is_empty() {
            return Ok(true);
        }
        if let Some(lit) = d.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            let lit = lit.strip_prefix("ipv6:").unwrap_or(lit);
            return Ok(lit
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.own_addresses.contains(&ip)));
        }
        self.mydestination.matches(&d)
    }

    /// True when `domain` is listed in virtual_alias_domains.
    pub fn is_virtual_alias_domain(&self, domain: &str) -> Result<bool, ResolveError> {
        self.virtual_alias_domains.matches(domain)
    }

    /// True when `domain` is listed in virtual_mailbox_domains.
    pub fn is_virtual_mailbox_domain(&self, domain: &str) -> Result<bool, ResolveError> {
        self.virtual_mailbox_domains.matches(domain)
    }

    /// True when `domain` is listed in relay_domains.
    pub fn is_relay_domain(&self, domain: &str) -> Result<bool, ResolveError> {
        self.relay_domains.matches(domain)
    }

    /// The address class of `address`, tested in Postfix's order.
    pub fn classify(&self, address: &str) -> Result<AddressClass, ResolveError> {
        let domain = domain_of(address);
        Ok(if self.is_local_domain(domain)? {
            AddressClass::Local
        } else if self.is_virtual_alias_domain(domain)? {
            AddressClass::VirtualAlias
        } else if self.is_virtual_mailbox_domain(domain)? {
            AddressClass::VirtualMailbox
        } else if self.is_relay_domain(domain)? {
            AddressClass::Relay
        } else {
            AddressClass::Default
        })
    }

    /// Transport and next hop of `address` (already canonical and alias-expanded),
    /// without sender-dependent routing (see [`Resolver::resolve_from`]).
    pub fn resolve(&self, address: &str) -> Result<Resolution, ResolveError> {
        self.resolve_from(None, address)
    }

    /// Transport and next hop of `address` for mail from `sender` (empty: `<>`):
    /// sender_dependent_relayhost_maps and sender_dependent_default_transport_maps
    /// apply when a sender is given.
    pub fn resolve_from(
        &self,
        sender: Option<&str>,
        address: &str,
    ) -> Result<Resolution, ResolveError> {
        let class = self.classify(address)?;
        let domain = normalize_domain(domain_of(address));
        let sender = sender.filter(|_| !self.sender_dependent.is_empty());
        let sender_local = match sender {
            Some(s) if !s.is_empty() => self.is_local_domain(domain_of(s))?,
            _ => false,
        };
        let sender_relayhost = match (sender, class) {
            (Some(s), AddressClass::Relay | AddressClass::Default) => self
                .sender_dependent
                .relayhost(s, &self.recipient_delimiter, sender_local)?,
            _ => None,
        };
        let sender_transport = match (sender, class) {
            (Some(s), AddressClass::Default) => self.sender_dependent.default_transport(
                s,
                &self.recipient_delimiter,
                sender_local,
            )?,
            _ => None,
        };
        let relay_or_domain = || match &sender_relayhost {
            Some(relay) => relay.clone(),
            None if self.relayhost.is_empty() => domain.clone(),
            None => self.relayhost.clone(),
        };
        let default_transport = sender_transport.as_ref().unwrap_or(&self.default_transport);
        let (spec, fallback, default_nexthop) = match class {
            AddressClass::Local => (&self.local_transport, "local", self.myhostname.clone()),
            AddressClass::VirtualAlias => {
                return Ok(Resolution {
                    class,
                    transport: "error".into(),
                    nexthop: VIRTUAL_ALIAS_UNKNOWN.into(),
                })
            }
            AddressClass::VirtualMailbox => (&self.virtual_transport, "virtual", domain.clone()),
            AddressClass::Relay => (&self.relay_transport, "relay", relay_or_domain()),
            AddressClass::Default => (default_transport, "smtp", relay_or_domain()),
        };
        let (t, n) = transport::split_transport(spec);
        let mut transport = if t.is_empty() { fallback } else { t }.to_string();
        let mut nexthop = if n.is_empty() {
            default_nexthop
        } else {
            n.to_string()
        };
        let lookup_address = if address.is_empty() {
            format!("{}@{}", "mailer-daemon", self.myhostname)
        } else {
            address.to_string()
        };
        if let Some(entry) = transport::lookup(
            &self.transport_maps,
            &lookup_address,
            &self.recipient_delimiter,
            self.transport_parent_matches,
        )? {
            match (entry.transport.is_empty(), entry.nexthop.is_empty()) {
                (true, true) => {}
                (false, true) => {
                    transport = entry.transport;
                    nexthop = domain.clone();
                }
                (true, false) => nexthop = entry.nexthop,
                (false, false) => {
                    transport = entry.transport;
                    nexthop = entry.nexthop;
                }
            }
        }
        if !valid_transport(&transport) {
            return Err(ResolveError::BadTransport(transport));
        }
        Ok(Resolution {
            class,
            transport,
            nexthop,
        })
    }

    /// One virtual_alias_maps lookup in mail_addr_find order (`user@domain`, the
    /// unextended form, `user` for local domains, `@domain`), first table first. The
    /// results are qualified with `@$myorigin`, and an unmatched extension is
    /// propagated (`user+ext@d` found as `user@d` -> results get `+ext`) when
    /// propagate_unmatched_extensions lists `virtual`.
    pub fn lookup_virtual(&self, address: &str) -> Result<Option<Vec<String>>, ResolveError> {
        let domain = domain_of(address);
        let local_domain = self.is_local_domain(domain)?;
        let local = address.rfind('@').map_or(address, |at| &address[..at]);
        let (_, ext) = split_extension(local, &self.recipient_delimiter);
        let exact = [address.to_string(), local.to_string()];
        for map in &self.virtual_alias_maps {
            let err = |source| ResolveError::Lookup {
                param: "virtual_alias_maps".into(),
                source,
            };
            let queries = if map.is_pattern() {
                vec![address.to_string()]
            } else {
                address_queries(address, &self.recipient_delimiter, local_domain)
            };
            for q in queries {
                let Some(value) = map.lookup(&q).map_err(err)? else {
                    continue;
                };
                let propagate = self.propagate_virtual_extension
                    && ext.is_some()
                    && !exact.contains(&q)
                    && !map.is_pattern();
                let delim = self.recipient_delimiter.chars().next().unwrap_or('+');
                let mut out = Vec::new();
                for a in split_addresses(&value) {
                    if a.len() > self.address_length_limit {
                        log::warn!("virtual_alias_maps: result for {address} too long; skipped");
                        continue;
                    }
                    let mut a = self.canonical.canonicalize(&a, true);
                    if propagate {
                        if let (Some(e), Some(at)) = (ext, a.rfind('@')) {
                            a = format!("{}{delim}{e}{}", &a[..at], &a[at..]);
                        }
                    }
                    out.push(a);
                }
                return Ok(Some(out));
            }
        }
        Ok(None)
    }

    /// The resolve half of swap_bangpath and allow_percent_hack, as trivial-rewrite's
    /// resolve_addr: while the domain is one of ours and the local part is a bang path
    /// or `user%site`, the domain goes and the local part is made `user@site`
    /// (`user%site@ourdomain` -> `user@site`). Other addresses come back unchanged.
    /// Bounded: each round removes a domain, and at most 10 rounds are done.
    pub fn route_local_part(&self, address: &str) -> Result<String, ResolveError> {
        let mut current = address.to_string();
        for _ in 0..10 {
            let Some(at) = current.rfind('@') else {
                break;
            };
            if !self.is_local_domain(&current[at + 1..])? {
                break;
            }
            match self.canonical.forms.apply(&current[..at]) {
                Some(routed) if routed.contains('@') => current = routed,
                _ => break,
            }
        }
        Ok(current)
    }

    /// True if virtual_alias_maps is set (expansion can change anything).
    pub fn has_virtual_aliases(&self) -> bool {
        !self.virtual_alias_maps.is_empty()
    }

    /// Expands `address` through virtual_alias_maps (see [`virtual_alias`]). An address
    /// without a mapping comes back alone, unchanged.
    pub fn expand_virtual(&self, address: &str) -> Result<Vec<String>, ExpandError> {
        if self.virtual_alias_maps.is_empty() {
            return Ok(vec![address.to_string()]);
        }
        virtual_alias::expand(address, self.expand_limits, &mut |a| self.lookup_virtual(a))
    }
}
