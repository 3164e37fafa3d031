//! A delivery destination as qmgr schedules it: the transport (a master.cf service,
//! reached at `private/TRANSPORT`) and the next hop, and, for a transport whose
//! recipient limit is 1 (local, by default), the recipient: as in Postfix, such a
//! transport's destination is the recipient, so `local_destination_concurrency_limit`
//! counts parallel deliveries to one mailbox, not to all local mail. Concurrency,
//! feedback and the dead-destination mark are kept per Route.

/// Where a recipient goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    /// master.cf service name; requests go to `private/TRANSPORT`.
    pub transport: String,
    pub nexthop: String,
    /// The recipient (lower case) when the destination is the recipient; empty when
    /// it is the next hop.
    pub recipient: String,
}

impl Route {
    /// The destination `nexthop` of `transport`.
    pub fn new(transport: impl Into<String>, nexthop: impl Into<String>) -> Route {
        Route {
            transport: transport.into(),
            nexthop: nexthop.into(),
            recipient: String::new(),
        }
    }

    /// The same transport and next hop for one recipient (a per-recipient destination).
    pub fn for_recipient(&self, address: &str) -> Route {
        Route {
            recipient: address.to_lowercase(),
            ..self.clone()
        }
    }

    /// The transport and next hop alone: what the agent streams of per-recipient
    /// destinations are shared by (worker.rs).
    pub fn pool(&self) -> Route {
        Route::new(self.transport.clone(), self.nexthop.clone())
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.recipient.is_empty() {
            write!(f, "{}", self.nexthop)
        } else {
            write!(f, "{} ({})", self.nexthop, self.recipient)
        }
    }
}

/// The host part of a next hop: `[mx.example.com]:587` -> `mx.example.com`, lower case.
pub fn nexthop_host(nexthop: &str) -> String {
    let n = nexthop.trim();
    let host = if let Some(rest) = n.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else if n.matches(':').count() == 1 {
        n.split(':').next().unwrap_or(n)
    } else {
        n
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_recipient_route_shares_its_pool_with_the_next_hop() {
        let hop = Route::new("local", "mx.example.org");
        let alice = hop.for_recipient("Alice@Example.org");
        assert_eq!(alice.recipient, "alice@example.org");
        assert_ne!(alice, hop);
        assert_eq!(alice.pool(), hop);
        assert_eq!(alice.to_string(), "mx.example.org (alice@example.org)");
        assert_eq!(hop.to_string(), "mx.example.org");
    }

    #[test]
    fn hosts_of_nexthops() {
        assert_eq!(nexthop_host("[Mx.Example.com]:587"), "mx.example.com");
        assert_eq!(nexthop_host("example.com"), "example.com");
        assert_eq!(nexthop_host("example.com:2525"), "example.com");
        assert_eq!(nexthop_host("[127.0.0.1]"), "127.0.0.1");
    }
}
