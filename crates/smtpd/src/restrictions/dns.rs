//! DNS for the client's name (PTR and its forward confirmation) and the restrictions
//! (reject_unknown_*, DNS block and allow lists, check_*_{mx,ns,a}_access):
//! hickory-resolver on a tokio current-thread runtime with
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
    /// rostfix_dns_servers, for the PTR queries that bypass hickory (ptr_query.rs).
    servers: Vec<std::net::SocketAddr>,
    timeout: Duration,
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
            rostfix_dns::Resolver::new_dns_only(servers, timeout)?;
        Ok(Dns {
            runtime,
            resolver,
            // Resolver::new_dns_only has checked that each entry parses.
            servers: servers.iter().filter_map(|s| s.parse().ok()).collect(),
            timeout,
        })
    }

    /// The resolver of `rostfix_dns_servers` (`ip:port` entries; empty:
    /// /etc/resolv.conf) with smtpd's five-second timeout. Call before chroot.
    pub fn from_config(cf: &rostfix_config::MainCf) -> Result<Dns, DnsSetupError> {
        let servers: Vec<String> = cf
            .get("rostfix_dns_servers")
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Dns::new(&servers, Duration::from_secs(5))
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
                        RData::NS(ns) => out.push(ns.0.to_ascii()),
                        RData::PTR(ptr) => out.push(ptr.0.to_ascii()),
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

    /// TXT records of `name` (each record's strings joined), for the DMARC check of
    /// the bulk-mail hygiene (session/hygiene.rs).
    pub fn txt_records(&self, name: &str) -> Answer<Vec<String>> {
        self.lookup(name, RecordType::TXT)
    }

    /// Whether `name` has a record of any of `types`, asked in that order: Found at
    /// the first, TempFail when none was found and a lookup failed.
    fn any_of(&self, name: &str, types: &[RecordType]) -> Answer<()> {
        let mut temp = false;
        for rtype in types {
            match self.lookup(name, *rtype) {
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

    /// Postfix's reject_unknown_mailhost: MX first, then A/AAAA; a null MX (RFC 7505)
    /// is told apart because Postfix rejects it with its own text.
    pub fn mail_host(&self, domain: &str) -> MailHost {
        let mut temp = false;
        match self.lookup(domain, RecordType::MX) {
            Answer::Found(hosts) if hosts.iter().all(|h| is_root(h)) => return MailHost::NullMx,
            Answer::Found(_) => return MailHost::Found,
            Answer::NotFound => {}
            Answer::TempFail => temp = true,
        }
        match self.any_of(domain, &[RecordType::A, RecordType::AAAA]) {
            Answer::Found(()) => MailHost::Found,
            Answer::TempFail => MailHost::TempFail,
            Answer::NotFound if temp => MailHost::TempFail,
            Answer::NotFound => MailHost::NotFound,
        }
    }

    /// The MX host names of `domain` (a null MX gives none).
    pub fn mx_hosts(&self, domain: &str) -> Answer<Vec<String>> {
        match self.lookup(domain, RecordType::MX) {
            Answer::Found(hosts) => Answer::Found(
                hosts
                    .into_iter()
                    .filter(|h| !is_root(h))
                    .map(|h| h.trim_end_matches('.').to_string())
                    .collect(),
            ),
            other => other,
        }
    }

    /// Postfix's reject_unknown_hostname (HELO names): A or AAAA, else MX (a null MX
    /// counts, MTA names may have one).
    pub fn host_exists(&self, name: &str) -> Answer<()> {
        self.any_of(name, &[RecordType::A, RecordType::AAAA, RecordType::MX])
    }

    /// The names a PTR query for `ip` gives.
    pub fn ptr(&self, ip: IpAddr) -> Answer<Vec<String>> {
        if !self.servers.is_empty() {
            return super::ptr_query::ptr(&self.servers, ip, self.timeout);
        }
        let name = hickory_resolver::proto::rr::Name::from(ip).to_ascii();
        match self.lookup(&name, RecordType::PTR) {
            Answer::Found(names) => Answer::Found(
                names
                    .into_iter()
                    .map(|n| n.trim_end_matches('.').to_string())
                    .collect(),
            ),
            other => other,
        }
    }

    /// The addresses of `name` in the client's family (A for IPv4, AAAA for IPv6), as
    /// Postfix's forward confirmation asks.
    pub fn addresses(&self, name: &str, v6: bool) -> Answer<Vec<IpAddr>> {
        let rtype = if v6 { RecordType::AAAA } else { RecordType::A };
        match self.lookup(name, rtype) {
            Answer::Found(v) => Answer::Found(v.iter().filter_map(|a| a.parse().ok()).collect()),
            Answer::NotFound => Answer::NotFound,
            Answer::TempFail => Answer::TempFail,
        }
    }

    /// MX or NS host names of `domain` (trailing dot removed); a null MX is NotFound.
    pub fn servers(&self, domain: &str, ns: bool) -> Answer<Vec<String>> {
        let rtype = if ns { RecordType::NS } else { RecordType::MX };
        match self.lookup(domain, rtype) {
            Answer::Found(v) => {
                let hosts: Vec<String> = v
                    .iter()
                    .filter(|h| !is_root(h))
                    .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                    .collect();
                if hosts.is_empty() {
                    Answer::NotFound
                } else {
                    Answer::Found(hosts)
                }
            }
            other => other,
        }
    }

    /// Every A and AAAA address of `host`.
    pub fn all_addresses(&self, host: &str) -> Answer<Vec<IpAddr>> {
        let mut out = Vec::new();
        let mut temp = false;
        for v6 in [false, true] {
            match self.addresses(host, v6) {
                Answer::Found(v) => out.extend(v),
                Answer::NotFound => {}
                Answer::TempFail => temp = true,
            }
        }
        match (out.is_empty(), temp) {
            (false, _) => Answer::Found(out),
            (true, true) => Answer::TempFail,
            (true, false) => Answer::NotFound,
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

/// What reject_unknown_{sender,recipient}_domain found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailHost {
    Found,
    /// The only MX is `.` (RFC 7505): the domain says it takes no mail.
    NullMx,
    NotFound,
    TempFail,
}

/// `.` or empty: the root, a null MX's exchange.
fn is_root(host: &str) -> bool {
    host.trim_end_matches('.').is_empty()
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
