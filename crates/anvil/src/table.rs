//! anvil's state: per (service, client address), the number of open connections and
//! the connection, message, recipient and AUTH counts in the current time unit
//! (`anvil_rate_time_unit`). Pure and clock-injected so that it is unit tested.
//!
//! Rates use Postfix's fixed window: the first event of a client starts a window of one
//! time unit; when an event arrives after the window has passed, the rates restart at
//! zero. Entries with no open connection and an expired window are purged, so memory
//! follows the clients seen in the last time unit.

use rostfix_proto::{AnvilClient, AnvilReply, AnvilRequest};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One client's numbers.
#[derive(Debug, Clone)]
struct Entry {
    count: u32,
    window_start: Instant,
    connections: u32,
    messages: u32,
    recipients: u32,
    auths: u32,
}

/// The largest numbers seen, for the periodic statistics log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maxima {
    pub count: Option<(u32, AnvilClient)>,
    pub connection_rate: Option<(u32, AnvilClient)>,
    pub message_rate: Option<(u32, AnvilClient)>,
    pub recipient_rate: Option<(u32, AnvilClient)>,
}

/// All clients.
#[derive(Debug)]
pub struct Table {
    unit: Duration,
    entries: HashMap<AnvilClient, Entry>,
    pub maxima: Maxima,
}

fn bump_max(slot: &mut Option<(u32, AnvilClient)>, value: u32, who: &AnvilClient) {
    if slot.as_ref().is_none_or(|(m, _)| value > *m) {
        *slot = Some((value, who.clone()));
    }
}

impl Table {
    pub fn new(unit: Duration) -> Table {
        Table {
            unit: unit.max(Duration::from_secs(1)),
            entries: HashMap::new(),
            maxima: Maxima::default(),
        }
    }

    /// Number of clients tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Counts one event at `now` and returns the client's numbers after it.
    pub fn event(&mut self, req: &AnvilRequest, now: Instant) -> AnvilReply {
        let who = match req {
            AnvilRequest::Connect(c)
            | AnvilRequest::Message(c)
            | AnvilRequest::Recipient(c)
            | AnvilRequest::Auth(c)
            | AnvilRequest::Disconnect(c) => c,
        };
        if let AnvilRequest::Disconnect(c) = req {
            self.disconnect(c, now);
            let count = self.entries.get(c).map_or(0, |e| e.count);
            return AnvilReply { count, rate: 0 };
        }
        let unit = self.unit;
        let e = self.entries.entry(who.clone()).or_insert(Entry {
            count: 0,
            window_start: now,
            connections: 0,
            messages: 0,
            recipients: 0,
            auths: 0,
        });
        if now.saturating_duration_since(e.window_start) >= unit {
            e.window_start = now;
            e.connections = 0;
            e.messages = 0;
            e.recipients = 0;
            e.auths = 0;
        }
        let rate = match req {
            AnvilRequest::Connect(_) => {
                e.count = e.count.saturating_add(1);
                e.connections = e.connections.saturating_add(1);
                e.connections
            }
            AnvilRequest::Message(_) => {
                e.messages = e.messages.saturating_add(1);
                e.messages
            }
            AnvilRequest::Recipient(_) => {
                e.recipients = e.recipients.saturating_add(1);
                e.recipients
            }
            AnvilRequest::Auth(_) => {
                e.auths = e.auths.saturating_add(1);
                e.auths
            }
            AnvilRequest::Disconnect(_) => 0,
        };
        let count = e.count;
        match req {
            AnvilRequest::Connect(_) => {
                bump_max(&mut self.maxima.count, count, who);
                bump_max(&mut self.maxima.connection_rate, rate, who);
            }
            AnvilRequest::Message(_) => bump_max(&mut self.maxima.message_rate, rate, who),
            AnvilRequest::Recipient(_) => bump_max(&mut self.maxima.recipient_rate, rate, who),
            _ => {}
        }
        AnvilReply { count, rate }
    }

    /// One connection of `who` is over.
    pub fn disconnect(&mut self, who: &AnvilClient, now: Instant) {
        if let Some(e) = self.entries.get_mut(who) {
            e.count = e.count.saturating_sub(1);
        }
        self.purge_one(who, now);
    }

    fn purge_one(&mut self, who: &AnvilClient, now: Instant) {
        let unit = self.unit;
        if self
            .entries
            .get(who)
            .is_some_and(|e| e.count == 0 && now.saturating_duration_since(e.window_start) >= unit)
        {
            self.entries.remove(who);
        }
    }

    /// Drops every idle client whose window has passed.
    pub fn purge(&mut self, now: Instant) {
        let unit = self.unit;
        self.entries
            .retain(|_, e| e.count > 0 || now.saturating_duration_since(e.window_start) < unit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(addr: &str) -> AnvilClient {
        AnvilClient {
            service: "smtp".into(),
            address: addr.into(),
        }
    }

    #[test]
    fn counts_and_rates() {
        let t0 = Instant::now();
        let mut t = Table::new(Duration::from_secs(60));
        let a = c("192.0.2.1");
        assert_eq!(
            t.event(&AnvilRequest::Connect(a.clone()), t0),
            AnvilReply { count: 1, rate: 1 }
        );
        assert_eq!(
            t.event(&AnvilRequest::Connect(a.clone()), t0),
            AnvilReply { count: 2, rate: 2 }
        );
        assert_eq!(
            t.event(&AnvilRequest::Message(a.clone()), t0),
            AnvilReply { count: 2, rate: 1 }
        );
        assert_eq!(t.event(&AnvilRequest::Recipient(a.clone()), t0).rate, 1);
        assert_eq!(t.event(&AnvilRequest::Auth(a.clone()), t0).rate, 1);
        // Another client and another service are separate.
        assert_eq!(t.event(&AnvilRequest::Connect(c("192.0.2.2")), t0).count, 1);
        let other = AnvilClient {
            service: "submission".into(),
            address: "192.0.2.1".into(),
        };
        assert_eq!(t.event(&AnvilRequest::Connect(other), t0).count, 1);
        t.disconnect(&a, t0);
        assert_eq!(
            t.event(&AnvilRequest::Connect(a.clone()), t0),
            AnvilReply { count: 2, rate: 3 }
        );
        // A new window restarts the rates but not the count.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            t.event(&AnvilRequest::Connect(a.clone()), later),
            AnvilReply { count: 3, rate: 1 }
        );
        assert_eq!(t.maxima.count.as_ref().map(|m| m.0), Some(3));
    }

    #[test]
    fn idle_clients_are_purged() {
        let t0 = Instant::now();
        let mut t = Table::new(Duration::from_secs(60));
        let a = c("192.0.2.1");
        t.event(&AnvilRequest::Connect(a.clone()), t0);
        t.disconnect(&a, t0);
        assert_eq!(t.len(), 1, "the rate window still matters");
        t.purge(t0 + Duration::from_secs(60));
        assert_eq!(t.len(), 0);
        // Disconnects never go below zero.
        t.disconnect(&a, t0);
        assert_eq!(t.len(), 0);
    }

    proptest! {
        #[test]
        fn count_is_connects_minus_disconnects(ops in proptest::collection::vec(any::<bool>(), 0..100)) {
            let t0 = Instant::now();
            let mut t = Table::new(Duration::from_secs(60));
            let a = c("192.0.2.9");
            let mut open: u32 = 0;
            for connect in ops {
                if connect {
                    open += 1;
                    prop_assert_eq!(t.event(&AnvilRequest::Connect(a.clone()), t0).count, open);
                } else {
                    open = open.saturating_sub(1);
                    t.disconnect(&a, t0);
                }
            }
        }
    }
}
