//! Native DKIM signing (RFC 6376, RFC 8463): keys chosen by the domain of the From:
//! header through OpenDKIM's KeyTable and SigningTable files read as they are
//! (tables.rs), private keys loaded once at start before privileges are dropped
//! (key.rs), and the DKIM-Signature: header computed by the mail-auth crate with
//! relaxed/relaxed canonicalization and From oversigned (sign.rs). keygen.rs makes key
//! pairs and the TXT record to publish (`rostfix dkim-keygen`).
//!
//! Which mail is signed (authenticated, mynetworks, locally submitted) is the caller's
//! decision: smtpd and pickup ask [`Signer::sign`] only for such mail.
//! Verification on receipt is crates/authverify; the DNS readiness check is a later
//! part of issue 15.

#![forbid(unsafe_code)]

mod key;
pub mod keygen;
mod sign;
mod tables;

pub use key::{load_key, KeyKind, LoadedKey};
pub use sign::{
    from_address, header_block, header_fields, to_crlf, KeyRef, Signed, Signer, TableKey,
};
pub use tables::{KeyTable, KeyTableEntry, SigningTable};

/// Why signing cannot be set up or a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {reason}")]
    Syntax {
        path: String,
        line: usize,
        reason: String,
    },
    /// Group- or world-accessible private key (OpenDKIM's RequireSafeKeys).
    #[error("{path}: private key is accessible by group or others (mode {mode:o}); chmod 600 it")]
    UnsafeKey { path: String, mode: u32 },
    /// A private key owned by another user than root or the reader.
    #[error("{path}: private key is owned by uid {uid}, not root; chown root it")]
    KeyOwner { path: String, uid: u32 },
    #[error("{path}: not a usable RSA or Ed25519 private key: {reason}")]
    BadKey { path: String, reason: String },
    #[error("signing table {table}: key name {name} is not in the key table")]
    UnknownKeyName { table: String, name: String },
    #[error("{0}")]
    Param(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("{0}")]
    Keygen(String),
}
