//! smtp and lmtp: the SMTP/LMTP client delivery agent (issue 4), one library used by
//! the two binaries.
//!
//! Runs under master as the `smtp`/`relay`/`lmtp` unix services. For each delivery
//! request from qmgr it resolves the next hop (`[host]:port` without MX lookup,
//! `host[:port]` with MX lookup, A/AAAA fallback, null MX; for LMTP `unix:path`,
//! `inet:host:port`), reuses a cached session or opens one (STARTTLS per
//! smtp_tls_security_level / smtp_tls_policy_maps, client SASL for relayhosts), runs
//! the transaction (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN; the message streamed
//! from the queue file, content.rs), marks accepted recipients done in the queue file,
//! answers qmgr with one result per recipient and logs Postfix-shaped `to=<>, relay=,
//! [conn_use=,] delay=, delays=, dsn=, status=` lines.
//!
//! The DNS resolver reads /etc/resolv.conf before the service chroots. The
//! Rostfix-specific parameter `rostfix_dns_servers` (a list of `ip:port`, default empty
//! = the system configuration) points it at other name servers instead; tests use it
//! for a DNS server on loopback.
//!
//! Partial (see docs/ARCHITECTURE.md): no dot-nexthop certificate matching, TLS
//! sessions are not shared between smtp processes, the connection cache is per
//! process (8-bit to 7-bit MIME downgrade and DANE are done: downgrade.rs, dane.rs).

#![forbid(unsafe_code)]

pub mod agent;
pub mod cache;
pub mod conn;
pub mod content;
pub mod dane;
pub mod dane_verify;
pub mod deliver;
pub mod dns;
pub mod downgrade;
pub mod envelope;
pub mod header_flags;
pub mod help;
pub mod mta_sts;
pub mod nexthop;
pub mod policy;
pub mod reply;
pub mod sasl;
pub mod session;
pub mod settings;
pub mod tls;
pub mod tls_report;
pub mod tls_sessions;
pub mod tls_verify;
pub mod xforward;
