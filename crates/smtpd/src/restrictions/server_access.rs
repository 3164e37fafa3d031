//! check_{client,reverse_client,helo,sender,recipient}_{mx,ns,a}_access (Postfix's
//! smtpd_check.c check_server_access): the domain's MX hosts, DNS servers, or (for
//! `_a_`) the name itself are looked up in an access table, first by host name (not
//! for `_a_`), then by each of their addresses. A domain without MX stands for its own
//! mail host; an NS query climbs to the parent domain until it finds servers; an
//! address literal is its own host. Lookup failures skip the check, as Postfix does.

use super::access::{client_keys, domain_keys};
use super::dns::{Answer, Dns};
use super::eval::{Facts, Step};
use super::Restriction;
use rostfix_maps::Map;
use std::sync::Arc;

/// Whose domain is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerOf {
    Client,
    ReverseClient,
    Helo,
    Sender,
    Recipient,
}

/// Which servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerType {
    Mx,
    Ns,
    A,
}

/// One `check_*_{mx,ns,a}_access table`.
#[derive(Clone)]
pub struct ServerAccess {
    pub of: ServerOf,
    pub rtype: ServerType,
    pub table: Arc<dyn Map>,
}

impl std::fmt::Debug for ServerAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name(), self.table.spec())
    }
}

const OFS: [(&str, ServerOf); 5] = [
    ("client", ServerOf::Client),
    ("reverse_client_hostname", ServerOf::ReverseClient),
    ("helo", ServerOf::Helo),
    ("sender", ServerOf::Sender),
    ("recipient", ServerOf::Recipient),
];
const TYPES: [(&str, ServerType); 3] = [
    ("mx", ServerType::Mx),
    ("ns", ServerType::Ns),
    ("a", ServerType::A),
];

/// The parts of a `check_X_Y_access` name, if it is one of these.
pub fn parse_name(name: &str) -> Option<(ServerOf, ServerType)> {
    let middle = name.strip_prefix("check_")?.strip_suffix("_access")?;
    let (who, kind) = middle.rsplit_once('_')?;
    let of = OFS.iter().find(|(n, _)| *n == who)?.1;
    let rtype = TYPES.iter().find(|(n, _)| *n == kind)?.1;
    Some((of, rtype))
}

impl ServerAccess {
    pub fn name(&self) -> &'static str {
        const NAMES: [[&str; 3]; 5] = [
            [
                "check_client_mx_access",
                "check_client_ns_access",
                "check_client_a_access",
            ],
            [
                "check_reverse_client_hostname_mx_access",
                "check_reverse_client_hostname_ns_access",
                "check_reverse_client_hostname_a_access",
            ],
            [
                "check_helo_mx_access",
                "check_helo_ns_access",
                "check_helo_a_access",
            ],
            [
                "check_sender_mx_access",
                "check_sender_ns_access",
                "check_sender_a_access",
            ],
            [
                "check_recipient_mx_access",
                "check_recipient_ns_access",
                "check_recipient_a_access",
            ],
        ];
        let i = OFS.iter().position(|(_, o)| *o == self.of).unwrap_or(0);
        let j = TYPES
            .iter()
            .position(|(_, t)| *t == self.rtype)
            .unwrap_or(0);
        NAMES[i][j]
    }
}

/// Builds the restriction for a parsed name.
pub fn restriction(of: ServerOf, rtype: ServerType, table: Arc<dyn Map>) -> Restriction {
    Restriction::ServerAccess(ServerAccess { of, rtype, table })
}

/// Looks keys up in the table: (keys, what the reply names, its class) -> the step
/// of the first hit.
pub(super) type TableHit<'h> = dyn FnMut(&[String], &str, &str) -> Option<Step> + 'h;

/// Evaluates one check; `hit` turns a table value into the step (the access-table
/// semantics of eval.rs).
pub(super) fn check(
    s: &ServerAccess,
    f: &Facts<'_>,
    dns: Option<&Dns>,
    hit: &mut TableHit<'_>,
) -> Step {
    let Some(dns) = dns else {
        return Step::Go;
    };
    let known = |n: &str| n != "unknown" && !n.is_empty();
    let (name, what, class) = match s.of {
        ServerOf::Client if known(f.client_name) => {
            (f.client_name, f.client_log.clone(), "Client host")
        }
        ServerOf::ReverseClient if known(f.reverse_client_name) => (
            f.reverse_client_name,
            f.reverse_client_name.to_string(),
            "Unverified Client host",
        ),
        ServerOf::Helo => match f.helo {
            Some(h) => (h, h.to_string(), "Helo command"),
            None => return Step::Go,
        },
        ServerOf::Sender => match f.sender.filter(|s| !s.is_empty()) {
            Some(a) => (a, a.to_string(), "Sender address"),
            None => return Step::Go,
        },
        ServerOf::Recipient => match f.recipient {
            Some(a) => (a, a.to_string(), "Recipient address"),
            None => return Step::Go,
        },
        _ => return Step::Go,
    };
    let domain = name.rsplit_once('@').map_or(name, |(_, d)| d);
    if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let bare = inner.strip_prefix("IPv6:").unwrap_or(inner);
        if s.rtype == ServerType::Ns || bare.parse::<std::net::IpAddr>().is_err() {
            return Step::Go;
        }
        return hit(&client_keys("unknown", bare), &what, class).unwrap_or(Step::Go);
    }
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let servers = match s.rtype {
        ServerType::A => vec![domain.clone()],
        ServerType::Mx => match dns.servers(&domain, false) {
            Answer::Found(v) => v,
            Answer::NotFound => vec![domain.clone()],
            Answer::TempFail => {
                log::warn!("Unable to look up MX host for {domain}: Host not found, try again");
                return Step::Go;
            }
        },
        ServerType::Ns => {
            let mut d = domain.as_str();
            loop {
                match dns.servers(d, true) {
                    Answer::Found(v) => break v,
                    Answer::NotFound => match d.split_once('.') {
                        Some((_, parent)) if !parent.is_empty() => d = parent,
                        _ => return Step::Go,
                    },
                    Answer::TempFail => {
                        log::warn!("Unable to look up NS host for {d}: Host not found, try again");
                        return Step::Go;
                    }
                }
            }
        }
    };
    for server in servers.iter().take(100) {
        if s.rtype != ServerType::A {
            if let Some(step) = hit(&domain_keys(server), &what, class) {
                return step;
            }
        }
        if let Answer::Found(addrs) = dns.all_addresses(server) {
            for a in addrs {
                if let Some(step) = hit(&client_keys("unknown", &a.to_string()), &what, class) {
                    return step;
                }
            }
        }
    }
    Step::Go
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_name("check_reverse_client_hostname_ns_access"),
            Some((ServerOf::ReverseClient, ServerType::Ns))
        );
        assert_eq!(
            parse_name("check_sender_mx_access"),
            Some((ServerOf::Sender, ServerType::Mx))
        );
        assert_eq!(parse_name("check_client_access"), None);
        assert_eq!(parse_name("check_client_b_access"), None);
        let t: Arc<dyn Map> = Arc::from(rostfix_maps::open_map("inline:{a=OK}").unwrap());
        for (who, of) in OFS {
            for (kind, rtype) in TYPES {
                let s = ServerAccess {
                    of,
                    rtype,
                    table: t.clone(),
                };
                assert_eq!(s.name(), format!("check_{who}_{kind}_access"));
            }
        }
    }
}
