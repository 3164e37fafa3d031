//! SMTP TLS reporting (RFC 8460). The smtp client appends one [`event::Event`] per
//! session with a domain that has a TLS policy (MTA-STS or DANE) to a spool file of
//! the current report period under `tlsrpt/` in the queue directory; the `tlsrpt`
//! service, once a period has ended, aggregates each domain's events into the RFC
//! 8460 JSON report ([`report`]), looks up the domain's `_smtp._tls` record
//! ([`rua`]) and mails the gzipped report to its `mailto:` addresses through our own
//! queue ([`message`]). docs/tls-reporting.md has the whole story.

#![forbid(unsafe_code)]

pub mod event;
pub mod message;
pub mod report;
pub mod rua;
