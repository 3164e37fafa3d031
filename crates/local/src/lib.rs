//! The local delivery agent's logic (the `local` binary is a thin server around it):
//! for each recipient of a delivery request, find the user, and append the message to
//! the user's Maildir or mbox with the user's identity.
//!
//! Covered now: recipient_delimiter extensions, the Delivered-To loop check, home_mailbox
//! (Maildir or mbox), mail_spool_directory (mbox or Maildir), dotlock + fcntl locking,
//! safe_open checks, mailbox_size_limit.
//!
//! Not yet (a later issue): aliases, `.forward` files, mailbox_command,
//! mailbox_transport, fallback_transport, delivery to files and commands, duplicate
//! recipient elimination, X-Original-To. Until then every known user gets its mailbox.

pub mod agent;
pub mod deliver;
pub mod destination;
pub mod dotlock;
pub mod failure;
pub mod headers;
pub mod logline;
pub mod maildir;
pub mod mbox;
pub mod privileges;
pub mod recipient;
pub mod server;

#[cfg(test)]
mod testdir;
