//! MTA-STS (RFC 8461) for Rostfix: the policy file parser and MX matching
//! ([`policy`]), the `_mta-sts` TXT record ([`txt`]), the HTTPS fetch ([`fetch`]),
//! the persistent cache ([`cache`]) and the protocol between the smtp client and the
//! `mtasts` service that does the fetching ([`protocol`]). Why a service: see
//! docs/mta-sts.md.

#![forbid(unsafe_code)]

pub mod cache;
pub mod fetch;
pub mod policy;
pub mod protocol;
pub mod txt;
