//! MX lookups for bucket matching, off the main loop: one helper thread owns a
//! rostfix-dns resolver (built before the chroot, so it read /etc/resolv.conf or uses
//! rostfix_dns_servers) and answers one domain at a time over the main loop's event
//! channel. Each lookup is bounded by the resolver's timeout and attempts.

use crate::event::Event;
use std::sync::mpsc::{channel, Sender};

/// What a lookup found: the MX host names in preference order; a domain without MX
/// records is its own mail host (RFC 5321 5.1), so it is given as the only host.
/// Err when DNS failed (timeout, SERVFAIL): the domain is not shaped until asked again.
pub type MxAnswer = Result<Vec<String>, String>;

/// The request side of the lookup thread.
#[derive(Debug)]
pub struct MxLookups {
    tx: Sender<String>,
}

impl MxLookups {
    /// Starts the thread; answers come back as [`Event::Mx`].
    pub fn start(dns: rostfix_dns::Resolver, events: Sender<Event>) -> std::io::Result<Self> {
        let (tx, rx) = channel::<String>();
        std::thread::Builder::new()
            .name("shaping-mx".into())
            .spawn(move || {
                while let Ok(domain) = rx.recv() {
                    let answer = match dns.mx(&domain) {
                        Ok(hosts) if !hosts.is_empty() => {
                            Ok(hosts.into_iter().map(|(_, h)| h).collect())
                        }
                        Ok(_) | Err(rostfix_dns::TxtError::None) => Ok(vec![domain.clone()]),
                        Err(rostfix_dns::TxtError::Failed(why)) => Err(why),
                    };
                    if events.send(Event::Mx(domain, answer)).is_err() {
                        return; // the main loop is gone
                    }
                }
            })?;
        Ok(MxLookups { tx })
    }

    /// Asks for `domain`'s MX hosts; false when the thread has ended.
    pub fn ask(&self, domain: &str) -> bool {
        self.tx.send(domain.to_string()).is_ok()
    }
}
