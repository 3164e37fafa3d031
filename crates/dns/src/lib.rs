//! The DNS resolver set-up shared by the smtp client (MX and address lookups) and
//! smtpd (DNSBL and unknown-domain restrictions): hickory-resolver on a tokio
//! current-thread runtime, used with `block_on` because each of those processes serves
//! one delivery or client at a time. Built before the service chroots, so it has read
//! /etc/resolv.conf, or uses the test servers of `rostfix_dns_servers` (`ip:port`
//! entries, a Rostfix-specific parameter). Each lookup is bounded by `timeout` per
//! attempt and two attempts.
//!
//! [`Resolver::validating`] turns on DNSSEC validation (for DANE in the smtp client):
//! hickory then checks every answer from the trust anchors (the IANA root keys
//! built into hickory, or the DNSKEY records of `rostfix_dnssec_trust_anchor`), fails
//! bogus answers, and marks each record Secure or Insecure.

#![forbid(unsafe_code)]

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::TokioResolver;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Cannot set up the resolver.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot start the DNS runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot read the resolver configuration: {0}")]
    Config(String),
    #[error("bad rostfix_dns_servers entry {0:?}: want ip:port")]
    Server(String),
    #[error("cannot read DNSSEC trust anchor file {path}: {why}")]
    TrustAnchor { path: String, why: String },
}

/// The runtime and the resolver that runs on it.
pub struct Resolver {
    pub runtime: tokio::runtime::Runtime,
    pub resolver: TokioResolver,
}

/// Why a simple lookup ([`Resolver::txt`], [`Resolver::mx`], ...) gave no answer
/// worth reading.
#[derive(Debug, thiserror::Error)]
pub enum TxtError {
    /// No such name, or no TXT record at it.
    #[error("no TXT record")]
    None,
    /// A timeout or server failure: try again later.
    #[error("{0}")]
    Failed(String),
}

fn simple_error(e: hickory_resolver::net::NetError) -> TxtError {
    use hickory_resolver::net::{DnsError, NetError};
    use hickory_resolver::proto::op::ResponseCode;
    match e {
        NetError::Dns(
            DnsError::NoRecordsFound(_) | DnsError::ResponseCode(ResponseCode::NXDomain),
        ) => TxtError::None,
        other => TxtError::Failed(other.to_string()),
    }
}

impl Resolver {
    /// The TXT records at `qname`, each record's strings joined (RFC 7208 3.3 and the
    /// reporting/policy RFCs that reuse it).
    pub fn txt(&self, qname: &str) -> Result<Vec<String>, TxtError> {
        use hickory_resolver::proto::rr::RData;
        let lookup = self
            .runtime
            .block_on(self.resolver.txt_lookup(qname))
            .map_err(simple_error)?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|d| String::from_utf8_lossy(d).into_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    /// The MX records of `domain`: (preference, host without the final dot).
    pub fn mx(&self, domain: &str) -> Result<Vec<(u16, String)>, TxtError> {
        use hickory_resolver::proto::rr::RData;
        let lookup = self
            .runtime
            .block_on(self.resolver.mx_lookup(domain))
            .map_err(simple_error)?;
        let mut out: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((
                    mx.preference,
                    mx.exchange.to_ascii().trim_end_matches('.').to_string(),
                )),
                _ => None,
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// The addresses (A and AAAA) of `host`.
    pub fn addresses(&self, host: &str) -> Result<Vec<std::net::IpAddr>, TxtError> {
        let lookup = self
            .runtime
            .block_on(self.resolver.lookup_ip(host))
            .map_err(simple_error)?;
        Ok(lookup.iter().collect())
    }

    /// The PTR names of `ip`, without the final dot.
    pub fn ptr(&self, ip: std::net::IpAddr) -> Result<Vec<String>, TxtError> {
        let lookup = self
            .runtime
            .block_on(self.resolver.reverse_lookup(ip))
            .map_err(simple_error)?;
        use hickory_resolver::proto::rr::RData;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(n) => Some(n.0.to_ascii().trim_end_matches('.').to_string()),
                _ => None,
            })
            .collect())
    }

    /// `servers` (from rostfix_dns_servers) when not empty, else the system
    /// configuration. Call before chroot.
    pub fn new(servers: &[String], timeout: Duration) -> Result<Resolver, SetupError> {
        Resolver::build(servers, timeout, true, None)
    }

    /// Like [`Resolver::new`], validating DNSSEC: from the DNSKEY records in
    /// `anchor_file` when given (test zones), else from the IANA root keys.
    pub fn validating(
        servers: &[String],
        timeout: Duration,
        anchor_file: Option<&Path>,
    ) -> Result<Resolver, SetupError> {
        let anchors = match anchor_file {
            Some(path) => TrustAnchors::from_file(path).map_err(|e| SetupError::TrustAnchor {
                path: path.display().to_string(),
                why: e.to_string(),
            })?,
            None => TrustAnchors::default(),
        };
        Resolver::build(servers, timeout, true, Some(Arc::new(anchors)))
    }

    /// Like [`Resolver::new`], but with explicit `servers` the answers come from them
    /// alone, never from /etc/hosts: smtpd's client-name lookups must see exactly the
    /// records a test server holds (the system configuration still reads
    /// /etc/hosts, as the C library's resolver does for Postfix).
    pub fn new_dns_only(servers: &[String], timeout: Duration) -> Result<Resolver, SetupError> {
        Resolver::build(servers, timeout, servers.is_empty(), None)
    }

    fn build(
        servers: &[String],
        timeout: Duration,
        hosts_file: bool,
        anchors: Option<Arc<TrustAnchors>>,
    ) -> Result<Resolver, SetupError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SetupError::Runtime)?;
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| SetupError::Config(e.to_string()))?
        } else {
            let mut configs = Vec::new();
            for s in servers {
                let addr: SocketAddr = s.parse().map_err(|_| SetupError::Server(s.clone()))?;
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                configs.push(NameServerConfig::new(addr.ip(), true, vec![udp, tcp]));
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(configs),
                TokioRuntimeProvider::default(),
            )
            .with_options(ResolverOpts::default())
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 2;
        // Mail domains are absolute: never try search-list suffixes.
        opts.ndots = 0;
        if !hosts_file {
            opts.use_hosts_file = ResolveHosts::Never;
        }
        if let Some(anchors) = anchors {
            // /etc/hosts entries carry no proof: a validating lookup must come from DNS.
            opts.use_hosts_file = ResolveHosts::Never;
            builder = builder.with_trust_anchor(anchors);
        }
        let resolver = {
            let _guard = runtime.enter();
            builder
                .build()
                .map_err(|e| SetupError::Config(e.to_string()))?
        };
        Ok(Resolver { runtime, resolver })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_server_entries_are_named() {
        let e = Resolver::new(&["not-an-address".into()], Duration::from_secs(1))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("bad rostfix_dns_servers entry \"not-an-address\": want ip:port")
        );
    }

    #[test]
    fn trust_anchor_file_errors_are_named() {
        let dir = std::env::temp_dir().join(format!("rostfix-dns-ta-{}", std::process::id()));
        std::fs::write(&dir, "this is not a DNSKEY record\n").unwrap();
        let e = Resolver::validating(&["127.0.0.1:9".into()], Duration::from_secs(1), Some(&dir))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&dir);
        assert!(e.starts_with("cannot read DNSSEC trust anchor file"), "{e}");
        let key = ". IN DNSKEY 257 3 13 yWg3+XNZ0DLHngYTaOBIp1SijlT2Ij4gZI8GR3kM9O5ZmL53BalJwfFGZBJfl2yaX1t714rJxrzL//mp/m2yuQ==\n";
        let ok = std::env::temp_dir().join(format!("rostfix-dns-ta-ok-{}", std::process::id()));
        std::fs::write(&ok, key).unwrap();
        let r = Resolver::validating(&["127.0.0.1:9".into()], Duration::from_secs(1), Some(&ok));
        let _ = std::fs::remove_file(&ok);
        assert!(r.is_ok());
    }

    #[test]
    fn explicit_servers_build() {
        assert!(Resolver::new(&["127.0.0.1:9".into()], Duration::from_secs(1)).is_ok());
    }
}
