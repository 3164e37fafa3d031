//! rostfix-resolve: Postfix's trivial-rewrite as a library. Every process that must know
//! where an address goes (qmgr; local and virtual delivery for the virtual classes)
//! builds one [`Resolver`] from main.cf and calls pure methods on it.
//!
//! # API
//!
//! ```no_run
//! # fn demo(cfg: &rostfix_config::MainCf) -> Result<(), Box<dyn std::error::Error>> {
//! use rostfix_resolve::{AddressClass, Resolver};
//! let r = Resolver::from_config(cfg)?;                 // opens transport/alias tables
//! let addr = r.canonicalize("joe", true);              // "joe@$myorigin"
//! for a in r.expand_virtual(&addr)? {                  // virtual_alias_maps, recursive
//!     let route = r.resolve(&a)?;                      // class, transport, nexthop
//!     if route.class == AddressClass::VirtualMailbox { /* virtual_transport */ }
//! }
//! let _ = r.is_local_domain("example.com")?;            // mydestination, [own ip]
//! # Ok(()) }
//! ```
//!
//! - [`Resolver::canonicalize`]: unqualified `user` -> `user@$myorigin`
//!   (append_at_myorigin), `user@host` -> `user@host.$mydomain` (append_dot_mydomain),
//!   in the local rewrite context only; see [`canonical`].
//! - [`Resolver::classify`] and [`Resolver::resolve`]: the address classes, tested in
//!   this order: local (empty domain, mydestination incl. tables and files, `[ip]`
//!   literals of inet_interfaces / proxy_interfaces addresses) -> local_transport,
//!   nexthop its own or $myhostname; virtual alias (virtual_alias_domains) -> the
//!   built-in `error` transport with [`VIRTUAL_ALIAS_UNKNOWN`] (only an address left
//!   unexpanded gets there); virtual mailbox (virtual_mailbox_domains) ->
//!   virtual_transport, nexthop the domain; relay (relay_domains) -> relay_transport;
//!   default -> default_transport. Relay and default use relayhost as nexthop when set
//!   (`[host]:port` means no MX lookup, `host` an MX lookup: the smtp client's rule),
//!   else the domain; a nexthop written in the class's transport (`smtp:[gw]:25`) wins.
//!   Then transport_maps may override both parts ([`transport`]: `user@domain`,
//!   `domain`, `.domain`, `*`; empty parts keep or reset as transport(5) says).
//!   `error`, `discard` and `retry` are transports qmgr handles itself: their nexthop is
//!   the diagnostic text (`error:5.1.1 no such user`).
//! - [`Resolver::expand_virtual`]: virtual_alias_maps expansion with
//!   virtual_alias_recursion_limit / virtual_alias_expansion_limit ([`virtual_alias`]).
//! - [`Resolver::is_local_domain`], [`Resolver::is_virtual_alias_domain`],
//!   [`Resolver::is_virtual_mailbox_domain`], [`Resolver::is_relay_domain`]: the
//!   domain tests, for delivery agents and smtpd.
//!
//! Errors ([`ResolveError`], [`ExpandError`]) are temporary: a table that cannot be
//! read or a limit exceeded defers the recipient, never bounces it.
//!
//! Domain lists: see [`domain_list`] (names, `.subdomain`, `!negation`, `/file`,
//! `type:table`; parent matching per parent_domain_matches_subdomains). The lists and
//! tables are opened once; file-backed tables reload themselves when the file changes
//! (rostfix-maps), plain domain names need a restart of the process holding them.
//!
//! - [`Resolver::resolve_from`]: the same with the envelope sender, for
//!   sender_dependent_relayhost_maps and sender_dependent_default_transport_maps
//!   ([`sender_dependent`]).
//!
//! - [`Resolver::route_local_part`]: the resolve half of allow_percent_hack /
//!   swap_bangpath (`user%site@ourdomain` -> `user@site`); the rewrite half, for
//!   addresses without `@`, is in [`canonical`].
//!
//! Not done (partial): relayhost lists (only one relayhost). canonical_maps and masquerading are crates/rewrite's (cleanup's work).

#![forbid(unsafe_code)]

pub mod canonical;
pub mod domain_list;
pub mod error;
pub mod resolver;
#[cfg(test)]
mod resolver_sender_tests;
#[cfg(test)]
mod resolver_tests;
pub mod sender_dependent;
pub mod transport;
pub mod virtual_alias;

pub use canonical::Canonical;
pub use domain_list::{normalize_domain, split_list, DomainList};
pub use error::ResolveError;
pub use resolver::{
    domain_of, valid_transport, AddressClass, Resolution, Resolver, VIRTUAL_ALIAS_UNKNOWN,
};
pub use virtual_alias::{ExpandError, ExpandLimits};
