//! MX and address lookups with hickory-resolver, run on a tokio current-thread runtime
//! with `block_on` (this agent handles one delivery at a time). The resolver is built
//! before the service chroots, so it has read /etc/resolv.conf (or the test servers
//! of `rostfix_dns_servers`, `ip:port` entries, a Rostfix-specific parameter).
//!
//! Results map to Postfix's verdicts: NXDOMAIN is a permanent "Host or domain name
//! not found" (5.4.4), a null MX (RFC 7505, `0 .`) is "does not accept mail" (5.1.0),
//! anything else (timeout, SERVFAIL, no server) is temporary (4.4.3).
//!
//! With smtp_dns_support_level = dnssec the resolver validates (see rostfix-dns), a
//! bogus answer fails as a temporary error, and each answer says whether DNSSEC proved
//! it ([`Checked::secure`]); DANE needs that for the MX set, the host addresses and the
//! TLSA records ([`Dns::tlsa`]).

use crate::dane::{Tlsa, TlsaAnswer};
use crate::nexthop::order_mx;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::Proof;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, Record};
use hickory_resolver::TokioResolver;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

/// Why a lookup gave no usable answer.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The name does not exist (NXDOMAIN), or has no address at all.
    #[error("Host or domain name not found. Name service error for name={name} type={rtype}: Host not found")]
    NotFound { name: String, rtype: &'static str },
    /// The domain publishes a null MX.
    #[error("Domain {0} does not accept mail (nullMX)")]
    NullMx(String),
    /// A temporary failure.
    #[error("Host or domain name not found. Name service error for name={name} type={rtype}: Host not found, try again")]
    Temporary { name: String, rtype: &'static str },
}

/// Cannot set up the resolver (rostfix-dns builds it).
pub use rostfix_dns::SetupError;

/// A blocking facade over the async resolver.
pub struct Dns {
    runtime: tokio::runtime::Runtime,
    resolver: TokioResolver,
    /// Whether the resolver validates DNSSEC (smtp_dns_support_level = dnssec).
    validating: bool,
}

/// An answer, and whether DNSSEC validation proved every record of it (never true
/// without validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked<T> {
    pub value: T,
    pub secure: bool,
}

impl Dns {
    /// Builds the resolver: `servers` (from rostfix_dns_servers) when not empty, else
    /// the system configuration. Call before chroot.
    pub fn new(servers: &[String], timeout: Duration) -> Result<Dns, SetupError> {
        let rostfix_dns::Resolver { runtime, resolver } =
            rostfix_dns::Resolver::new(servers, timeout)?;
        Ok(Dns {
            runtime,
            resolver,
            validating: false,
        })
    }

    /// A validating resolver (smtp_dns_support_level = dnssec), trusting the DNSKEY
    /// records of `anchor_file` or, without one, the IANA root keys.
    pub fn validating(
        servers: &[String],
        timeout: Duration,
        anchor_file: Option<&Path>,
    ) -> Result<Dns, SetupError> {
        let rostfix_dns::Resolver { runtime, resolver } =
            rostfix_dns::Resolver::validating(servers, timeout, anchor_file)?;
        Ok(Dns {
            runtime,
            resolver,
            validating: true,
        })
    }

    /// Whether answers carry DNSSEC proof.
    pub fn is_validating(&self) -> bool {
        self.validating
    }

    fn secure(&self, records: &[Record]) -> bool {
        self.validating && !records.is_empty() && records.iter().all(|r| r.proof == Proof::Secure)
    }

    /// The TLSA records at `_port._tcp.host`: usable for DANE only when validated, so
    /// an insecure answer counts as none (RFC 7672 section 2.2); SERVFAIL, bogus
    /// answers and timeouts are errors.
    pub fn tlsa(&self, host: &str, port: u16) -> TlsaAnswer {
        let qname = format!("_{port}._tcp.{}.", host.trim_end_matches('.'));
        let answer = self
            .runtime
            .block_on(self.resolver.tlsa_lookup(qname.as_str()));
        let lookup = match answer {
            Ok(l) => l,
            Err(e) => {
                return match classify(&e) {
                    Class::NxDomain | Class::NoData => TlsaAnswer::NotFound,
                    Class::Temporary => {
                        log::warn!("DANE TLSA lookup problem: {qname}: {e}");
                        TlsaAnswer::Error
                    }
                }
            }
        };
        if !self.secure(lookup.answers()) {
            return TlsaAnswer::NotFound;
        }
        let records: Vec<Tlsa> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TLSA(t) => Some(Tlsa {
                    usage: t.cert_usage.into(),
                    selector: t.selector.into(),
                    mtype: t.matching.into(),
                    data: t.cert_data.clone(),
                }),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            TlsaAnswer::NotFound
        } else {
            TlsaAnswer::Records(records)
        }
    }

    /// MX hosts of `domain` in delivery order, or `None` when it has no MX records
    /// (the caller then uses the domain's own addresses).
    pub fn mx(&self, domain: &str) -> Result<Option<Checked<Vec<String>>>, LookupError> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let answer = self
            .runtime
            .block_on(self.resolver.mx_lookup(fqdn.as_str()));
        let lookup = match answer {
            Ok(l) => l,
            Err(e) => {
                return match classify(&e) {
                    Class::NxDomain => Err(LookupError::NotFound {
                        name: domain.into(),
                        rtype: "MX",
                    }),
                    Class::NoData => Ok(None),
                    Class::Temporary => Err(LookupError::Temporary {
                        name: domain.into(),
                        rtype: "MX",
                    }),
                }
            }
        };
        let mut hosts = Vec::new();
        for record in lookup.answers() {
            if let RData::MX(mx) = &record.data {
                hosts.push((mx.preference, mx.exchange.to_ascii()));
            }
        }
        if hosts.is_empty() {
            return Ok(None);
        }
        let secure = self.secure(lookup.answers());
        mx_hosts(domain, hosts).map(|value| Some(Checked { value, secure }))
    }

    /// IPv4 and IPv6 addresses of `host`.
    pub fn addresses(&self, host: &str) -> Result<Checked<Vec<IpAddr>>, LookupError> {
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        match self
            .runtime
            .block_on(self.resolver.lookup_ip(fqdn.as_str()))
        {
            Ok(ips) => {
                let list: Vec<IpAddr> = ips.iter().collect();
                if list.is_empty() {
                    Err(LookupError::NotFound {
                        name: host.into(),
                        rtype: "A",
                    })
                } else {
                    Ok(Checked {
                        value: list,
                        secure: self.secure(ips.as_lookup().answers()),
                    })
                }
            }
            Err(e) => Err(match classify(&e) {
                Class::NxDomain | Class::NoData => LookupError::NotFound {
                    name: host.into(),
                    rtype: "A",
                },
                Class::Temporary => LookupError::Temporary {
                    name: host.into(),
                    rtype: "A",
                },
            }),
        }
    }
}

/// Applies the null MX rule and the preference order to raw MX answers.
pub fn mx_hosts(domain: &str, hosts: Vec<(u16, String)>) -> Result<Vec<String>, LookupError> {
    let is_root = |h: &str| h.is_empty() || h == ".";
    if hosts.iter().any(|(_, h)| is_root(h)) {
        // RFC 7505: a null MX (alone, as it must be) means no mail at all.
        return Err(LookupError::NullMx(domain.into()));
    }
    Ok(order_mx(hosts, crate::nexthop::weak_rand())
        .into_iter()
        .map(|(_, h)| h.trim_end_matches('.').to_ascii_lowercase())
        .collect())
}

enum Class {
    NxDomain,
    NoData,
    Temporary,
}

fn classify(e: &NetError) -> Class {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => {
            if nr.response_code == ResponseCode::NXDomain {
                Class::NxDomain
            } else {
                Class::NoData
            }
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::NXDomain)) => Class::NxDomain,
        // A validating resolver's negative answer whose denial is provably insecure
        // (an unsigned zone) is an ordinary "no such name/data"; a bogus one stays a
        // temporary failure, so that a forged denial cannot switch DANE off.
        NetError::Dns(DnsError::Nsec {
            proof: Proof::Insecure,
            response,
            ..
        }) => {
            if response.response_code == ResponseCode::NXDomain {
                Class::NxDomain
            } else {
                Class::NoData
            }
        }
        _ => Class::Temporary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_mx_and_order() {
        assert_eq!(
            mx_hosts("n.test", vec![(0, ".".into())]),
            Err(LookupError::NullMx("n.test".into()))
        );
        assert_eq!(
            mx_hosts(
                "b.test",
                vec![(20, "MX2.b.test.".into()), (10, "mx1.b.test.".into())]
            ),
            Ok(vec!["mx1.b.test".to_string(), "mx2.b.test".to_string()])
        );
    }

    #[test]
    fn bad_server_entry_is_rejected() {
        assert!(matches!(
            Dns::new(&["nonsense".into()], Duration::from_secs(1)),
            Err(SetupError::Server(_))
        ));
    }
}
