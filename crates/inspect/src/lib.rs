//! Content inspection as Postfix's cleanup(8) does it, for the two programs that write
//! new queue files (smtpd and pickup): header_checks, mime_header_checks,
//! nested_header_checks and body_checks with every action of header_checks(5).
//!
//! It lives in its own crate because both writers need the same behaviour and neither
//! should depend on the other; it depends only on the configuration, the tables and
//! the queue's envelope type.
//!
//! - [`mime`] splits the content into logical headers and body lines, MIME-aware.
//! - [`action`] parses a table's result (`REJECT text`, `PREPEND header`, ...).
//! - [`settings`] reads the parameters and receive_override_options.
//! - [`inspector`] runs the tables over the content as it streams to the queue file,
//!   rewriting it (IGNORE, PREPEND, REPLACE), logging each action in Postfix's shape
//!   and collecting the message's fate ([`outcome::Outcome`]).

#![forbid(unsafe_code)]

pub mod action;
pub mod fuzzing;
pub mod inspector;
pub mod mime;
pub mod outcome;
pub mod settings;

pub use inspector::{HeaderRewrite, Inspector};
pub use outcome::{LogContext, Outcome, Verdict};
pub use settings::{ContentChecks, ReceiveOverrides, SettingsError};
