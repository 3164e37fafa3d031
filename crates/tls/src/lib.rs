//! What smtpd (server) and smtp (client) share about TLS, so both speak of a session
//! in the same words: [`Negotiated`], the protocol, cipher and key bits of a finished
//! handshake with Postfix's summary text, and [`protocol_versions`], a Postfix
//! protocol list as the rustls versions to offer.

#![forbid(unsafe_code)]

mod negotiated;
mod versions;

pub use negotiated::{suite_bits, Negotiated};
pub use versions::protocol_versions;
