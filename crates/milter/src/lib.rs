//! The Sendmail milter protocol (version 6) client behind smtpd_milters and
//! non_smtpd_milters: the wire codec (codec.rs), main.cf settings (config.rs), one
//! milter connection (client.rs), the ordered list of a session's milters (chain.rs)
//! and the message model milter edits apply to (message.rs).
//!
//! Beyond the basic events it speaks Postfix's extensions: the unknown-command event,
//! the macro lists a milter names in its negotiation reply (SMFIR_SETSYMLIST),
//! SMFIP_HDR_LEADSPC and SMFIP_RCPT_REJ (docs/milters.md).

#![forbid(unsafe_code)]

pub mod chain;
pub mod client;
pub mod codec;
pub mod config;
/// Properties the fuzz targets check (also replayed over the corpus by `cargo test`).
pub mod fuzzing;
pub mod message;

pub use chain::{ConnectInfo, MacroLookup, Milters, Verdict};
pub use config::{ConfigError, DefaultAction, MilterConfig, MilterSpec};
pub use message::{EnvelopeEdits, Message};
