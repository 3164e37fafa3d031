//! What qmgr does with a trigger the service skeleton read from public/qmgr (one
//! bounded frame per connection, see rostfix_service's event shape): forward it to the
//! main loop, dropping a wakeup while one is already pending.

use crate::event::Event;
use rostfix_proto::Trigger;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

/// Set when a wakeup is passed to the main loop, cleared by the main loop when it
/// starts a scan of incoming/. Every smtpd sends a wakeup per message; while one is
/// pending, more add nothing (the coming scan sees their files), so they are dropped
/// here instead of waking the main loop once each: under load that thread waits for a
/// CPU at every wakeup.
#[derive(Debug, Clone, Default)]
pub struct WakePending(Arc<AtomicBool>);

impl WakePending {
    /// Marks a wakeup pending; true if one already was.
    fn set(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }

    /// Called as a scan of incoming/ begins: a wakeup after this starts another scan.
    pub fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The skeleton's `on_trigger` for qmgr: passes triggers to the main loop's channel.
pub fn forwarder(tx: Sender<Event>, pending: WakePending) -> impl Fn(Trigger) + Send + Sync {
    move |t| {
        if t == Trigger::Wakeup && pending.set() {
            return;
        }
        if tx.send(Event::Trigger(t)).is_err() {
            log::debug!("trigger dropped: the main loop is gone");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wakeups_are_coalesced_until_a_scan_begins() {
        let (tx, rx) = std::sync::mpsc::channel();
        let pending = WakePending::default();
        let forward = forwarder(tx, pending.clone());
        // Three wakeups before any scan: one reaches the main loop; others pass.
        for t in [
            Trigger::Wakeup,
            Trigger::Wakeup,
            Trigger::Flush,
            Trigger::Wakeup,
        ] {
            forward(t);
        }
        let mut got = Vec::new();
        while let Ok(Event::Trigger(t)) = rx.recv_timeout(Duration::from_millis(100)) {
            got.push(t);
        }
        assert_eq!(got, [Trigger::Wakeup, Trigger::Flush]);
        // A scan began: the next wakeup goes through again.
        pending.clear();
        forward(Trigger::Wakeup);
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::Trigger(t)) => assert_eq!(t, Trigger::Wakeup),
            other => panic!("unexpected {other:?}"),
        }
    }
}
