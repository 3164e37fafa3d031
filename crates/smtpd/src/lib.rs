//! smtpd, the SMTP server, as a library: the `smtpd` binary (src/main.rs) only starts
//! the service and hands each client to [`connection::handle`]; the fuzz targets in the
//! repository's `fuzz/` directory and the corpus replay test (tests/fuzz_corpus.rs) use
//! the parsers that take raw client bytes.
//!
//! [`fuzzing`] holds the checks each fuzz target runs, so that `cargo fuzz` and the
//! replay test assert exactly the same properties.

#![deny(unsafe_code)]

pub mod address;
mod anvil_client;
mod auth;
pub mod auth_verify;
mod ccert;
mod ccert_der;
pub mod chunk;
pub mod cidr;
mod client;
pub mod command;
pub mod connection;
pub mod data;
pub mod dsn_params;
pub mod ehlo_discard;
pub mod fuzzing;
mod gate;
mod headers;
mod io;
mod limits;
pub mod metrics;
mod peer_name;
mod policy;
mod proxy_client;
pub mod proxy_filter;
mod queue_sink;
mod received;
pub mod reply;
mod restrictions;
mod sasl;
mod session;
mod session_options;
pub mod settings;
mod sink;
mod stats;
mod storage;
mod tls;
mod tls_certs;
mod tls_ciphers;

/// What main.rs loads before confinement and hands to each connection.
pub use tls::TlsServer;
/// postscreen's own SMTP engine offers STARTTLS with smtpd's settings and stream.
pub use tls::{NetStream, SecurityLevel, TlsError, TlsInfo, TlsSettings, Transport};
