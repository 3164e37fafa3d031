//! rostfix-rewrite: the address rewriting Postfix's cleanup(8) does before a message is
//! queued, for the two programs that write new queue files (smtpd and pickup).
//!
//! - [`canonical`]: canonical_maps, sender_canonical_maps, recipient_canonical_maps as
//!   canonical(5) describes them (the `user@domain`, `user`, `@domain` lookup order,
//!   recipient_delimiter extensions propagated, results looked up again up to 10
//!   times, as cleanup_map11 does).
//! - [`masquerade`]: masquerade_domains (with `!domain` exceptions) and
//!   masquerade_exceptions.
//! - [`header`]: which message headers carry sender or recipient addresses, and
//!   replacing the addresses inside one header's text.
//! - [`rewriter`]: the parameters read from main.cf (canonical_classes,
//!   masquerade_classes, always_bcc, sender_bcc_maps, recipient_bcc_maps,
//!   local_header_rewrite_clients, remote_header_rewrite_domain) and the operations
//!   the writers call, in cleanup's order: envelope sender, each recipient, the
//!   automatic BCC recipients, then each address header.
//!
//! Everything here is a pure function of addresses and tables; the callers decide
//! when it applies. Under receive_override_options = no_address_mappings the tables,
//! masquerading and BCC are off ([`Rewriter::without_mappings`]) but addresses are
//! still put in canonical form, headers included, as Postfix's cleanup does.
//!
//! Header addresses are looked up unquoted and written back re-quoted, as Postfix
//! does ([`quote`]). Before the tables every address is put in trivial-rewrite's canonical form
//! (rostfix_resolve::canonical: `@$myorigin`, swap_bangpath and allow_percent_hack for
//! addresses without `@`); routing `user%site@ourdomain` to `site` (the resolve half
//! of the percent hack) is qmgr's, through rostfix_resolve.

#![forbid(unsafe_code)]

pub mod canonical;
pub mod error;
pub mod header;
pub mod masquerade;
pub mod quote;
pub mod rewriter;

pub use error::RewriteError;
pub use header::HeaderRole;
pub use rewriter::{ClientRule, HeaderContext, Rewriter};
pub use rostfix_resolve::canonical::AddressForms;
