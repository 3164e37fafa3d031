//! Delivery scheduling: recipients grouped into requests per destination (transport,
//! nexthop) with a per-transport recipient limit, and per-destination concurrency
//! bookkeeping that decides which queued request may start next. Destinations are
//! served round-robin so one busy destination cannot starve the others. Pure: the
//! caller starts the requests this hands out and reports each one finished.
//!
//! Partial: Postfix's adaptive concurrency (start at 5, grow on success, dead
//! destinations after a failed cohort) is not implemented; the limit is fixed.

use crate::resolve::Route;
use rostfix_proto::DeliveryRecipient;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Recipient and concurrency limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// local_destination_concurrency_limit.
    pub local_concurrency: usize,
    /// default_destination_concurrency_limit.
    pub default_concurrency: usize,
    /// local_destination_recipient_limit; 0 = no limit.
    pub local_recipients: usize,
    /// default_destination_recipient_limit; 0 = no limit.
    pub default_recipients: usize,
    /// `TRANSPORT_destination_concurrency_limit` set explicitly in main.cf.
    pub transport_concurrency: HashMap<String, usize>,
    /// `TRANSPORT_destination_recipient_limit` set explicitly in main.cf.
    pub transport_recipients: HashMap<String, usize>,
    /// Cap on requests in flight over all destinations (one thread each).
    pub total_concurrency: usize,
}

impl Limits {
    /// Requests allowed in flight to one destination of `transport` (at least 1).
    pub fn concurrency(&self, transport: &str) -> usize {
        let n = match self.transport_concurrency.get(transport) {
            Some(&n) => n,
            None if transport == "local" => self.local_concurrency,
            None => self.default_concurrency,
        };
        n.max(1)
    }

    /// Recipients per request for `transport`; `usize::MAX` when unlimited (0).
    pub fn recipients(&self, transport: &str) -> usize {
        let n = match self.transport_recipients.get(transport) {
            Some(&n) => n,
            None if transport == "local" => self.local_recipients,
            None => self.default_recipients,
        };
        if n == 0 {
            usize::MAX
        } else {
            n
        }
    }
}

/// One delivery request waiting for (or holding) a concurrency slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRequest {
    pub queue_id: String,
    pub route: Route,
    pub recipients: Vec<DeliveryRecipient>,
}

/// Groups a message's routed recipients into requests: one destination per request, at
/// most the transport's recipient limit each, recipients in their original order.
pub fn group(
    queue_id: &str,
    routed: Vec<(Route, DeliveryRecipient)>,
    limits: &Limits,
) -> Vec<PendingRequest> {
    // Keep destinations in first-seen order so requests come out deterministically.
    let mut order: Vec<Route> = Vec::new();
    let mut by_route: HashMap<Route, Vec<DeliveryRecipient>> = HashMap::new();
    for (route, rcpt) in routed {
        if !by_route.contains_key(&route) {
            order.push(route.clone());
        }
        by_route.entry(route).or_default().push(rcpt);
    }
    let mut out = Vec::new();
    for route in order {
        let rcpts = by_route.remove(&route).unwrap_or_default();
        let per = limits.recipients(&route.transport);
        let mut chunk = Vec::new();
        for r in rcpts {
            chunk.push(r);
            if chunk.len() >= per {
                out.push(PendingRequest {
                    queue_id: queue_id.to_string(),
                    route: route.clone(),
                    recipients: std::mem::take(&mut chunk),
                });
            }
        }
        if !chunk.is_empty() {
            out.push(PendingRequest {
                queue_id: queue_id.to_string(),
                route,
                recipients: chunk,
            });
        }
    }
    out
}

/// Queued requests per destination and the count in flight.
#[derive(Debug)]
pub struct Scheduler {
    limits: Limits,
    queues: BTreeMap<Route, VecDeque<PendingRequest>>,
    in_flight: HashMap<Route, usize>,
    total_in_flight: usize,
    /// The destination served last: the next pick starts after it (round-robin).
    cursor: Option<Route>,
}

impl Scheduler {
    pub fn new(limits: Limits) -> Scheduler {
        Scheduler {
            limits,
            queues: BTreeMap::new(),
            in_flight: HashMap::new(),
            total_in_flight: 0,
            cursor: None,
        }
    }

    pub fn enqueue(&mut self, req: PendingRequest) {
        self.queues
            .entry(req.route.clone())
            .or_default()
            .push_back(req);
    }

    /// The next request allowed to start, now counted as in flight; None when every
    /// destination with work is at its limit, or the total cap is reached.
    pub fn next(&mut self) -> Option<PendingRequest> {
        if self.total_in_flight >= self.limits.total_concurrency.max(1) {
            return None;
        }
        let pick = {
            let after = self.cursor.as_ref();
            let eligible = |(route, q): &(&Route, &VecDeque<PendingRequest>)| {
                !q.is_empty()
                    && self.in_flight.get(*route).copied().unwrap_or(0)
                        < self.limits.concurrency(&route.transport)
            };
            let tail = self
                .queues
                .iter()
                .filter(|(r, _)| after.is_none_or(|a| *r > a));
            let head = self
                .queues
                .iter()
                .filter(|(r, _)| after.is_some_and(|a| *r <= a));
            tail.chain(head).find(eligible).map(|(r, _)| r.clone())
        }?;
        let queue = self.queues.get_mut(&pick)?;
        let req = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&pick);
        }
        *self.in_flight.entry(pick.clone()).or_insert(0) += 1;
        self.total_in_flight += 1;
        self.cursor = Some(pick);
        Some(req)
    }

    /// A request to `route` finished (whatever its outcome): frees its slot.
    pub fn finished(&mut self, route: &Route) {
        if let Some(n) = self.in_flight.get_mut(route) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(route);
            }
            self.total_in_flight = self.total_in_flight.saturating_sub(1);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.total_in_flight
    }

    /// Requests waiting for a slot.
    pub fn queued(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            local_concurrency: 2,
            default_concurrency: 20,
            local_recipients: 1,
            default_recipients: 50,
            transport_concurrency: HashMap::new(),
            transport_recipients: HashMap::new(),
            total_concurrency: 100,
        }
    }

    fn route(t: &str, n: &str) -> Route {
        Route {
            transport: t.into(),
            nexthop: n.into(),
        }
    }

    fn rcpt(i: u64) -> DeliveryRecipient {
        DeliveryRecipient {
            offset: i,
            address: format!("u{i}@x"),
            orig_address: format!("u{i}@x"),
        }
    }

    #[test]
    fn local_gets_one_recipient_per_request() {
        let routed = (0..3).map(|i| (route("local", "h"), rcpt(i))).collect();
        let reqs = group("ID1", routed, &limits());
        assert_eq!(reqs.len(), 3);
        assert!(reqs
            .iter()
            .all(|r| r.recipients.len() == 1 && r.queue_id == "ID1"));
    }

    #[test]
    fn remote_recipients_grouped_by_destination_up_to_the_limit() {
        let mut routed = Vec::new();
        for i in 0..120 {
            routed.push((route("smtp", "a.example"), rcpt(i)));
        }
        routed.push((route("smtp", "b.example"), rcpt(500)));
        let reqs = group("ID", routed, &limits());
        let sizes: Vec<(String, usize)> = reqs
            .iter()
            .map(|r| (r.route.nexthop.clone(), r.recipients.len()))
            .collect();
        assert_eq!(
            sizes,
            vec![
                ("a.example".into(), 50),
                ("a.example".into(), 50),
                ("a.example".into(), 20),
                ("b.example".into(), 1)
            ]
        );
        // Order within a destination is kept.
        assert_eq!(reqs[1].recipients[0].offset, 50);
    }

    #[test]
    fn zero_recipient_limit_means_unlimited() {
        let mut l = limits();
        l.default_recipients = 0;
        let routed = (0..200).map(|i| (route("smtp", "a"), rcpt(i))).collect();
        assert_eq!(group("ID", routed, &l).len(), 1);
    }

    #[test]
    fn per_transport_overrides() {
        let mut l = limits();
        l.transport_concurrency.insert("relay".into(), 3);
        l.transport_recipients.insert("relay".into(), 2);
        assert_eq!(l.concurrency("relay"), 3);
        assert_eq!(l.recipients("relay"), 2);
        assert_eq!(l.concurrency("smtp"), 20);
        assert_eq!(l.concurrency("local"), 2);
        l.local_concurrency = 0;
        assert_eq!(
            l.concurrency("local"),
            1,
            "a zero limit would stall delivery forever"
        );
    }

    #[test]
    fn local_concurrency_is_capped_at_two() {
        let mut s = Scheduler::new(limits());
        for r in group(
            "ID",
            (0..5).map(|i| (route("local", "h"), rcpt(i))).collect(),
            &limits(),
        ) {
            s.enqueue(r);
        }
        assert!(s.next().is_some());
        assert!(s.next().is_some());
        assert!(s.next().is_none());
        assert_eq!((s.in_flight(), s.queued()), (2, 3));
        s.finished(&route("local", "h"));
        let third = s.next().expect("a slot was freed");
        assert_eq!(third.recipients[0].offset, 2);
        assert!(s.next().is_none());
    }

    #[test]
    fn smtp_concurrency_is_per_destination() {
        let mut l = limits();
        l.default_concurrency = 1;
        let mut s = Scheduler::new(l);
        for n in ["a", "a", "b"] {
            s.enqueue(PendingRequest {
                queue_id: "ID".into(),
                route: route("smtp", n),
                recipients: vec![rcpt(1)],
            });
        }
        let first = s.next().expect("a");
        let second = s.next().expect("b is independent of a");
        assert_ne!(first.route, second.route);
        assert!(s.next().is_none(), "a is at its limit");
        s.finished(&route("smtp", "a"));
        assert_eq!(s.next().map(|r| r.route), Some(route("smtp", "a")));
    }

    #[test]
    fn round_robin_between_destinations() {
        let mut s = Scheduler::new(limits());
        for _ in 0..3 {
            s.enqueue(PendingRequest {
                queue_id: "A".into(),
                route: route("smtp", "a"),
                recipients: vec![rcpt(1)],
            });
            s.enqueue(PendingRequest {
                queue_id: "B".into(),
                route: route("smtp", "b"),
                recipients: vec![rcpt(1)],
            });
        }
        let order: Vec<String> = std::iter::from_fn(|| s.next())
            .map(|r| r.route.nexthop)
            .collect();
        assert_eq!(order, ["a", "b", "a", "b", "a", "b"]);
    }

    #[test]
    fn total_cap_applies_across_destinations() {
        let mut l = limits();
        l.total_concurrency = 2;
        let mut s = Scheduler::new(l);
        for n in ["a", "b", "c"] {
            s.enqueue(PendingRequest {
                queue_id: "ID".into(),
                route: route("smtp", n),
                recipients: vec![rcpt(1)],
            });
        }
        assert!(s.next().is_some() && s.next().is_some());
        assert!(s.next().is_none());
        s.finished(&route("smtp", "a"));
        assert!(s.next().is_some());
    }

    #[test]
    fn finishing_an_unknown_route_changes_nothing() {
        let mut s = Scheduler::new(limits());
        s.finished(&route("smtp", "nowhere"));
        assert_eq!(s.in_flight(), 0);
    }
}
