//! DNS for the restrictions (reject_unknown_*_domain, reject_rbl_client,
//! reject_rhsbl_sender): hickory-resolver on a tokio current-thread runtime with
//! `block_on`, the same pattern as the smtp client (smtpd serves one client at a
//! time). Built before the chroot, from `rostfix_dns_servers` (`ip:port` entries) or
//! /etc/resolv.conf.

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use std::net::IpAddr;
use std::time::Duration;

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    Found(T),
    /// NXDOMAIN or no records of the type.
    NotFound,
    /// Timeout, SERVFAIL, no server: the caller answers 4xx.
    TempFail,
}

/// Cannot set the resolver up (rostfix-dns builds it).
pub use rostfix_dns::SetupError as DnsSetupError;

/// A blocking facade over the async resolver.
pub struct Dns {
    runtime: tokio::runtime::Runtime,
    resolver: TokioResolver,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dns")
    }
}

impl Dns {
    /// Call before chroot: it reads /etc/resolv.conf when `servers` is empty.
    pub fn new(servers: &[String], timeout: Duration) -> Result<Dns, DnsSetupError> {
        let rostfix_dns::Resolver { runtime, resolver } =
            rostfix_dns::Resolver::new(servers, timeout)?;
        Ok(Dns { runtime, resolver })
    }

    fn fqdn(name: &str) -> String {
        format!("{}.", name.trim_end_matches('.'))
    }

    /// Records of `rtype` for `name`, as text (addresses, TXT strings joined, MX hosts).
    fn lookup(&self, name: &str, rtype: RecordType) -> Answer<Vec<String>> {
        let fqdn = Dns::fqdn(name);
        match self
            .runtime
            .block_on(self.resolver.lookup(fqdn.as_str(), rtype))
        {
            Ok(l) => {
                let mut out = Vec::new();
                for r in l.answers() {
                    match &r.data {
                        RData::A(a) => out.push(a.0.to_string()),
                        RData::AAAA(a) => out.push(a.0.to_string()),
                        RData::MX(mx) => out.push(mx.exchange.to_ascii()),
                        RData::TXT(t) => out.push(
                            t.txt_data
                                .iter()
                                .map(|d| String::from_utf8_lossy(d).into_owned())
                                .collect(),
                        ),
                        _ => {}
                    }
                }
                if out.is_empty() {
                    Answer::NotFound
                } else {
                    Answer::Found(out)
                }
            }
            Err(e) if is_not_found(&e) => Answer::NotFound,
            Err(_) => Answer::TempFail,
        }
    }

    /// Does `domain` have an MX, A or AAAA record (Postfix's "domain exists" test)?
    pub fn domain_exists(&self, domain: &str) -> Answer<()> {
        let mut temp = false;
        for rtype in [RecordType::MX, RecordType::A, RecordType::AAAA] {
            match self.lookup(domain, rtype) {
                Answer::Found(_) => return Answer::Found(()),
                Answer::NotFound => {}
                Answer::TempFail => temp = true,
            }
        }
        if temp {
            Answer::TempFail
        } else {
            Answer::NotFound
        }
    }

    /// A records of a DNSBL query name.
    pub fn a(&self, name: &str) -> Answer<Vec<String>> {
        self.lookup(name, RecordType::A)
    }

    /// The first TXT string of `name`, if any (the DNSBL's reason).
    pub fn txt(&self, name: &str) -> Option<String> {
        match self.lookup(name, RecordType::TXT) {
            Answer::Found(v) => v.into_iter().next(),
            _ => None,
        }
    }
}

fn is_not_found(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Dns(DnsError::NoRecordsFound(_))
            | NetError::Dns(DnsError::ResponseCode(ResponseCode::NXDomain))
    )
}

/// The DNSBL query name for a client address: reversed octets (IPv4) or nibbles (IPv6).
pub fn rbl_query(ip: IpAddr, domain: &str) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{domain}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for byte in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            s.push_str(domain);
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names() {
        assert_eq!(
            rbl_query("192.0.2.1".parse().unwrap(), "zen.test"),
            "1.2.0.192.zen.test"
        );
        let q = rbl_query("2001:db8::1".parse().unwrap(), "bl.test");
        assert!(q.starts_with("1.0.0.0.0.0.0.0"), "{q}");
        assert!(q.ends_with("8.b.d.0.1.0.0.2.bl.test"), "{q}");
    }

    #[test]
    fn bad_server_entry() {
        assert!(matches!(
            Dns::new(&["nope".into()], Duration::from_secs(1)),
            Err(DnsSetupError::Server(_))
        ));
    }
}
