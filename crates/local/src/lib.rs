//! The local and virtual delivery agents' logic (the `local` and `virtual` binaries are
//! thin servers around it): for each recipient of a delivery request, expand aliases,
//! `.forward` and `:include:` files ([`expand`]), and deliver to mailboxes (Maildir or
//! mbox), files and commands with the right identity, forwarding what is not local
//! back into the queue ([`resubmit`]); or, for `virtual`, into virtual_mailbox_base
//! ([`virtual_mailbox`]).
//!
//! Covered: alias_maps, owner-* senders, :include:, |command (sysexits mapping,
//! command_time_limit), /file, ~/.forward (forward_path), allow_mail_to_commands /
//! allow_mail_to_files, mailbox_command, luser_relay, expansion_size_limit, duplicate
//! elimination, recipient_delimiter extensions (with optional Maildir++ folders), the
//! Delivered-To loop check, home_mailbox (Maildir or mbox), mail_spool_directory,
//! dotlock + fcntl locking, safe_open checks, mailbox_size_limit.
//!
//! X-Original-To (the recipient as received) on every stored copy.
//!
//! Not yet: mailbox_command_maps, owner-* as the sender of bounces for local leaves
//! (see [`expand`]).

#![deny(unsafe_code)]

pub mod agent;
pub mod attributes;
pub mod command;
pub mod deliver;
pub mod destination;
pub mod dotlock;
pub mod expand;
pub mod expansion_list;
pub mod failure;
pub mod group_commit;
pub mod group_request;
pub mod headers;
pub mod listfile;
pub mod maildir;
pub mod mbox;
pub mod pass;
pub mod privileges;
pub mod recipient;
pub mod resubmit;
pub mod server;
pub mod setup;
pub mod sysexits;
pub mod virtual_mailbox;

#[cfg(test)]
mod expand_tests;
#[cfg(test)]
mod testdir;
#[cfg(test)]
mod testqueue;
