//! A delivery destination as qmgr schedules it: the transport (a master.cf service,
//! reached at `private/TRANSPORT`) and the next hop. Concurrency, feedback and the
//! dead-destination mark are kept per Route.

/// Where a recipient goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Route {
    /// master.cf service name; requests go to `private/TRANSPORT`.
    pub transport: String,
    pub nexthop: String,
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
    fn hosts_of_nexthops() {
        assert_eq!(nexthop_host("[Mx.Example.com]:587"), "mx.example.com");
        assert_eq!(nexthop_host("example.com"), "example.com");
        assert_eq!(nexthop_host("example.com:2525"), "example.com");
        assert_eq!(nexthop_host("[127.0.0.1]"), "127.0.0.1");
    }
}
