//! DNSBL queries for one client, run beside the greeting wait: every domain of
//! postscreen_dnsbl_sites is asked at once on the shared resolver, and each answer is
//! sent back as soon as it arrives, so that the score at the end of
//! postscreen_greet_wait counts whatever has come in (as Postfix's does; a lookup
//! still running then is not waited for).

use crate::dnsbl::{query_name, Reply};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::{RData, RecordType};
use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::Arc;

/// The resolver every client thread shares (built before the chroot).
pub struct Dnsbl {
    dns: rostfix_dns::Resolver,
}

impl std::fmt::Debug for Dnsbl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dnsbl")
    }
}

impl Dnsbl {
    pub fn new(dns: rostfix_dns::Resolver) -> Dnsbl {
        Dnsbl { dns }
    }

    /// Starts the lookups of `client` in `domains` on a thread of their own; each
    /// [`Reply`] arrives on the returned channel (a failed lookup as "not listed").
    pub fn start(
        self: &Arc<Self>,
        client: IpAddr,
        domains: Vec<String>,
    ) -> std::io::Result<mpsc::Receiver<Reply>> {
        let (tx, rx) = mpsc::channel();
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("dnsbl".into())
            .spawn(move || me.run(client, domains, tx))?;
        Ok(rx)
    }

    fn run(&self, client: IpAddr, domains: Vec<String>, tx: mpsc::Sender<Reply>) {
        let handles: Vec<_> = domains
            .into_iter()
            .map(|domain| {
                let resolver = self.dns.resolver.clone();
                let tx = tx.clone();
                let name = format!("{}.", query_name(client, &domain));
                self.dns.runtime.spawn(async move {
                    let result = resolver.lookup(name.as_str(), RecordType::A).await;
                    // The client may be gone (its receiver dropped): nothing to tell.
                    let _ = tx.send(to_reply(domain, result));
                })
            })
            .collect();
        drop(tx);
        // Several client threads may be here at once: tokio lets one of them drive the
        // current-thread runtime while the others wait for their own tasks.
        self.dns.runtime.block_on(async move {
            for h in handles {
                let _ = h.await;
            }
        });
    }
}

fn to_reply(domain: String, result: Result<hickory_resolver::lookup::Lookup, NetError>) -> Reply {
    match result {
        Ok(lookup) => {
            let mut addrs = Vec::new();
            let mut ttl: Option<u32> = None;
            for record in lookup.answers() {
                if let RData::A(a) = &record.data {
                    addrs.push(a.0);
                    ttl = Some(ttl.map_or(record.ttl, |t| t.min(record.ttl)));
                }
            }
            Reply { domain, addrs, ttl }
        }
        Err(NetError::Dns(DnsError::NoRecordsFound(none))) => Reply {
            domain,
            addrs: Vec::new(),
            ttl: none.negative_ttl,
        },
        Err(e) => {
            log::warn!("dnsbl lookup in {domain}: {e}");
            Reply {
                domain,
                addrs: Vec::new(),
                ttl: None,
            }
        }
    }
}
