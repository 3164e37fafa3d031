//! The rewriting parameters read once at start, and the operations smtpd and pickup
//! call where Postfix's cleanup would, in its order (cleanup_addr.c):
//!
//! 0. every envelope address is first put in trivial-rewrite's canonical form in the
//!    local context (rostfix_resolve::canonical: `@$myorigin`, `!` and `%` forms);
//! 1. the envelope sender: sender_canonical_maps (when sender_canonical_classes has
//!    envelope_sender), then canonical_maps (canonical_classes), then masquerading
//!    (masquerade_classes); sender_bcc_maps is asked with the result;
//! 2. each recipient: recipient_canonical_maps (recipient_canonical_classes),
//!    canonical_maps, masquerading (envelope_recipient, not in masquerade_classes by
//!    default); recipient_bcc_maps is asked with the result;
//! 3. always_bcc; every BCC address is rewritten as a recipient and added once,
//!    with DSN NOTIFY=NEVER (Postfix never sends notices about automatic BCCs);
//! 4. the address headers ([`crate::header`]) of the header_sender and
//!    header_recipient classes, only in a header rewriting context: the client
//!    matches local_header_rewrite_clients (mail submitted with sendmail always
//!    does), or remote_header_rewrite_domain is set. Unqualified header addresses get
//!    `@$myorigin` in the local context, `@$remote_header_rewrite_domain` otherwise.
//!    Each header address is looked up unquoted and written back re-quoted
//!    ([`crate::quote`]); one that nothing changes keeps its text as written.
//!
//! Under receive_override_options = no_address_mappings ([`Rewriter::without_mappings`])
//! steps 1-3 keep only the canonical form (no tables, masquerading or BCC), and
//! header addresses are still qualified, as Postfix's cleanup still calls
//! trivial-rewrite when CLEANUP_FLAG_MAP_OK is off.

use crate::canonical::{map11, split_address, LookupContext};
use crate::error::RewriteError;
use crate::header::{rewrite_addresses, role_of, HeaderRole};
use crate::masquerade::Masquerade;
use rostfix_config::MainCf;
use rostfix_maps::address::lookup_address;
use rostfix_maps::{open_map, Map};
use rostfix_resolve::canonical::Canonical;

/// Which address classes a feature applies to (canonical_classes, masquerade_classes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classes {
    pub envelope_sender: bool,
    pub envelope_recipient: bool,
    pub header_sender: bool,
    pub header_recipient: bool,
}

impl Classes {
    /// Parses a class list; an unknown word is a configuration error.
    pub fn parse(param: &'static str, words: &[String]) -> Result<Classes, RewriteError> {
        let mut c = Classes::default();
        for w in words {
            match w.to_ascii_lowercase().as_str() {
                "envelope_sender" => c.envelope_sender = true,
                "envelope_recipient" => c.envelope_recipient = true,
                "header_sender" => c.header_sender = true,
                "header_recipient" => c.header_recipient = true,
                _ => {
                    return Err(RewriteError::Unknown {
                        param,
                        what: "address class",
                        word: w.clone(),
                    })
                }
            }
        }
        Ok(c)
    }
}

/// One element of local_header_rewrite_clients (Postfix's smtpd_check_rewrite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRule {
    /// The client's address is one of this host's interface addresses.
    PermitInetInterfaces,
    PermitMynetworks,
    PermitSaslAuthenticated,
    /// permit_tls_clientcerts: the client certificate's fingerprint is in
    /// relay_clientcerts.
    PermitTlsClientcerts,
    /// permit_tls_all_clientcerts: any client certificate a trusted CA signed.
    PermitTlsAllClientcerts,
    /// `check_address_map type:table`, or a bare `type:table`: the client's address
    /// is found in the table (`static:all` finds every client).
    Table(String),
}

impl ClientRule {
    /// Parses the list. A word Postfix does not know there is skipped with Postfix's
    /// warning ("invalid request"), as Postfix does at each use.
    pub fn parse_list(words: &[String]) -> Vec<ClientRule> {
        let mut rules = Vec::new();
        let mut words = words.iter();
        while let Some(w) = words.next() {
            let rule = match w.to_ascii_lowercase().as_str() {
                "permit_inet_interfaces" => ClientRule::PermitInetInterfaces,
                "permit_mynetworks" => ClientRule::PermitMynetworks,
                "permit_sasl_authenticated" => ClientRule::PermitSaslAuthenticated,
                "permit_tls_clientcerts" => ClientRule::PermitTlsClientcerts,
                "permit_tls_all_clientcerts" => ClientRule::PermitTlsAllClientcerts,
                "check_address_map" => match words.next() {
                    Some(table) => ClientRule::Table(table.clone()),
                    None => {
                        log::warn!(
                            "parameter local_header_rewrite_clients: check_address_map \
                             requires a table name"
                        );
                        continue;
                    }
                },
                _ if w.contains(':') => ClientRule::Table(w.clone()),
                _ => {
                    log::warn!("parameter local_header_rewrite_clients: invalid request: {w}");
                    continue;
                }
            };
            rules.push(rule);
        }
        rules
    }
}

/// What smtpd knows about its client, for local_header_rewrite_clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFacts {
    /// The client's IP address (None: not a TCP client).
    pub address: Option<std::net::IpAddr>,
    pub own_interface: bool,
    pub in_mynetworks: bool,
    pub sasl_authenticated: bool,
    /// The client sent a certificate a trusted CA signed.
    pub ccert_trusted: bool,
    /// The fingerprints of the client's certificate and public key (empty: none).
    pub ccert_fingerprints: Vec<String>,
}

/// How header addresses are rewritten for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderContext {
    /// A local client: unqualified addresses get `@$myorigin`.
    Local,
    /// remote_header_rewrite_domain: unqualified addresses get `@DOMAIN`.
    Remote(String),
}

/// The opened tables and parsed parameters.
pub struct Rewriter {
    canonical: Vec<Box<dyn Map>>,
    sender_canonical: Vec<Box<dyn Map>>,
    recipient_canonical: Vec<Box<dyn Map>>,
    canonical_classes: Classes,
    sender_canonical_classes: Classes,
    recipient_canonical_classes: Classes,
    masquerade: Masquerade,
    masquerade_classes: Classes,
    always_bcc: String,
    sender_bcc: Vec<Box<dyn Map>>,
    recipient_bcc: Vec<Box<dyn Map>>,
    lookup: LookupContext,
    /// local_header_rewrite_clients, with each table rule's table opened.
    client_rules: Vec<(ClientRule, Option<Box<dyn Map>>)>,
    /// relay_clientcerts, opened when permit_tls_clientcerts is used.
    relay_clientcerts: Vec<Box<dyn Map>>,
    remote_domain: String,
    /// trivial-rewrite's canonical form (myorigin, `!` and `%` forms), applied before
    /// the tables as cleanup's rewrite_internal does.
    trivial: Canonical,
}

impl std::fmt::Debug for Rewriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let specs = |m: &[Box<dyn Map>]| m.iter().map(|m| m.spec().to_string()).collect::<Vec<_>>();
        f.debug_struct("Rewriter")
            .field("canonical", &specs(&self.canonical))
            .field("sender_canonical", &specs(&self.sender_canonical))
            .field("recipient_canonical", &specs(&self.recipient_canonical))
            .field("masquerade", &self.masquerade)
            .field("always_bcc", &self.always_bcc)
            .finish_non_exhaustive()
    }
}

fn open_list(cf: &MainCf, param: &'static str) -> Result<Vec<Box<dyn Map>>, RewriteError> {
    cf.get_list(param)
        .iter()
        .map(|spec| open_map(spec).map_err(|source| RewriteError::Open { param, source }))
        .collect()
}

impl Rewriter {
    /// Reads the parameters and opens the tables (a missing table stops the daemon
    /// at start, as in Postfix).
    pub fn from_config(cf: &MainCf) -> Result<Rewriter, RewriteError> {
        Rewriter::build(cf, true)
    }

    /// For receive_override_options = no_address_mappings: no canonical tables,
    /// masquerading or automatic BCC (none is opened), but addresses still put in
    /// canonical form and header addresses still qualified in a header rewriting
    /// context, as Postfix's cleanup does without CLEANUP_FLAG_MAP_OK.
    pub fn without_mappings(cf: &MainCf) -> Result<Rewriter, RewriteError> {
        Rewriter::build(cf, false)
    }

    fn build(cf: &MainCf, mappings: bool) -> Result<Rewriter, RewriteError> {
        let tables = |param| {
            if mappings {
                open_list(cf, param)
            } else {
                Ok(Vec::new())
            }
        };
        let client_rules: Vec<(ClientRule, Option<Box<dyn Map>>)> =
            ClientRule::parse_list(&cf.get_list("local_header_rewrite_clients"))
                .into_iter()
                .map(|rule| {
                    let table = match &rule {
                        ClientRule::Table(spec) => {
                            Some(open_map(spec).map_err(|source| RewriteError::Open {
                                param: "local_header_rewrite_clients",
                                source,
                            })?)
                        }
                        _ => None,
                    };
                    Ok((rule, table))
                })
                .collect::<Result<_, RewriteError>>()?;
        let relay_clientcerts = if client_rules
            .iter()
            .any(|(r, _)| *r == ClientRule::PermitTlsClientcerts)
        {
            open_list(cf, "relay_clientcerts")?
        } else {
            Vec::new()
        };
        let myorigin = cf.get("myorigin").trim().to_ascii_lowercase();
        let mut local_domains = vec![myorigin.clone()];
        for d in cf.get_list("mydestination") {
            // Names only: tables and files in mydestination are not consulted here.
            if !d.contains(':') && !d.starts_with('/') {
                local_domains.push(d.trim_end_matches('.').to_ascii_lowercase());
            }
        }
        let propagate = cf
            .get_list("propagate_unmatched_extensions")
            .iter()
            .any(|w| w.eq_ignore_ascii_case("canonical"));
        Ok(Rewriter {
            canonical: tables("canonical_maps")?,
            sender_canonical: tables("sender_canonical_maps")?,
            recipient_canonical: tables("recipient_canonical_maps")?,
            canonical_classes: Classes::parse(
                "canonical_classes",
                &cf.get_list("canonical_classes"),
            )?,
            sender_canonical_classes: Classes::parse(
                "sender_canonical_classes",
                &cf.get_list("sender_canonical_classes"),
            )?,
            recipient_canonical_classes: Classes::parse(
                "recipient_canonical_classes",
                &cf.get_list("recipient_canonical_classes"),
            )?,
            masquerade: Masquerade {
                domains: if mappings {
                    cf.get_list("masquerade_domains")
                } else {
                    Vec::new()
                },
                exceptions: cf
                    .get_list("masquerade_exceptions")
                    .iter()
                    .map(|s| s.to_ascii_lowercase())
                    .collect(),
            },
            masquerade_classes: Classes::parse(
                "masquerade_classes",
                &cf.get_list("masquerade_classes"),
            )?,
            always_bcc: if mappings {
                cf.get("always_bcc").trim().to_string()
            } else {
                String::new()
            },
            sender_bcc: tables("sender_bcc_maps")?,
            recipient_bcc: tables("recipient_bcc_maps")?,
            lookup: LookupContext {
                delimiters: cf.get("recipient_delimiter").to_string(),
                propagate,
                myorigin,
                local_domains,
            },
            client_rules,
            relay_clientcerts,
            remote_domain: cf.get("remote_header_rewrite_domain").trim().to_string(),
            trivial: Canonical::from_config(cf),
        })
    }

    /// One address of class `class` (one of the four [`Classes`] flags, picked by the
    /// function): its own table (sender_ or recipient_canonical_maps, under its own
    /// class list), canonical_maps (canonical_classes), then masquerading
    /// (masquerade_classes), as cleanup_addr.c does.
    fn rewrite_class(
        &self,
        address: &str,
        class: fn(&Classes) -> bool,
        sender: bool,
    ) -> Result<String, RewriteError> {
        let (own, own_classes) = if sender {
            (&self.sender_canonical, &self.sender_canonical_classes)
        } else {
            (&self.recipient_canonical, &self.recipient_canonical_classes)
        };
        let mut a = address.to_string();
        if class(own_classes) {
            a = map11(own, &a, &self.lookup)?;
        }
        if class(&self.canonical_classes) {
            a = map11(&self.canonical, &a, &self.lookup)?;
        }
        if class(&self.masquerade_classes) && !self.masquerade.is_empty() {
            a = self.masquerade.apply(&a);
        }
        Ok(a)
    }

    /// The rewriting of a sender-class address (envelope or header).
    fn sender_address(&self, address: &str, header: bool) -> Result<String, RewriteError> {
        if header {
            self.rewrite_class(address, |c| c.header_sender, true)
        } else {
            self.rewrite_class(address, |c| c.envelope_sender, true)
        }
    }

    /// The rewriting of a recipient-class address (envelope or header).
    fn recipient_address(&self, address: &str, header: bool) -> Result<String, RewriteError> {
        if header {
            self.rewrite_class(address, |c| c.header_recipient, false)
        } else {
            self.rewrite_class(address, |c| c.envelope_recipient, false)
        }
    }

    /// The envelope sender as queued (the null sender stays null). Envelope
    /// addresses are first put in canonical form in the local context, whoever sent
    /// them, as cleanup does.
    pub fn rewrite_sender(&self, sender: &str) -> Result<String, RewriteError> {
        let canonical = self.trivial.canonicalize(sender, true);
        // MAILER-DAEMON@$myorigin is the null sender, so that mail from it is never
        // answered with a bounce (cleanup does this since Postfix 2000-05-20).
        let daemon = self.trivial.canonicalize("MAILER-DAEMON", true);
        if canonical.eq_ignore_ascii_case(&daemon) {
            return Ok(String::new());
        }
        self.sender_address(&canonical, false)
    }

    /// An envelope recipient as queued.
    pub fn rewrite_recipient(&self, recipient: &str) -> Result<String, RewriteError> {
        self.recipient_address(&self.trivial.canonicalize(recipient, true), false)
    }

    /// The first address a BCC table gives for `key`.
    fn bcc_lookup(&self, maps: &[Box<dyn Map>], key: &str) -> Result<Option<String>, RewriteError> {
        if key.is_empty() {
            return Ok(None);
        }
        let is_local = split_address(key)
            .1
            .is_some_and(|d| self.lookup.local_domains.contains(&d.to_ascii_lowercase()));
        for map in maps {
            let found = lookup_address(map.as_ref(), key, &self.lookup.delimiters, is_local)
                .map_err(|source| RewriteError::Lookup {
                    spec: map.spec().to_string(),
                    source,
                })?;
            if let Some(v) = found {
                return Ok(v
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .find(|s| !s.is_empty())
                    .map(str::to_string));
            }
        }
        Ok(None)
    }

    /// The automatic BCC recipients for a message whose (rewritten) sender and
    /// recipients are given: sender_bcc_maps, recipient_bcc_maps, always_bcc, each
    /// rewritten as a recipient, in that order, without repeats and without the
    /// message's own recipients.
    pub fn bcc_recipients(
        &self,
        sender: &str,
        recipients: &[String],
    ) -> Result<Vec<String>, RewriteError> {
        let mut raw = Vec::new();
        raw.extend(self.bcc_lookup(&self.sender_bcc, sender)?);
        for r in recipients {
            raw.extend(self.bcc_lookup(&self.recipient_bcc, r)?);
        }
        if !self.always_bcc.is_empty() {
            raw.push(self.always_bcc.clone());
        }
        let mut out: Vec<String> = Vec::new();
        for b in raw {
            let b = self.rewrite_recipient(&b)?;
            let dup = |x: &String| x.eq_ignore_ascii_case(&b);
            if !recipients.iter().any(dup) && !out.iter().any(dup) {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// A queue envelope rewritten in place, as the writers of new queue files need:
    /// the sender, each recipient (its original address kept), then the automatic
    /// BCC recipients appended with NOTIFY=NEVER (Postfix sends no notices about
    /// them). A lookup error leaves the message to be tried again later.
    pub fn rewrite_envelope(
        &self,
        envelope: &mut rostfix_queue::Envelope,
    ) -> Result<(), RewriteError> {
        envelope.sender = self.rewrite_sender(&envelope.sender)?;
        for r in &mut envelope.recipients {
            r.address = self.rewrite_recipient(&r.address)?;
        }
        let current: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        for b in self.bcc_recipients(&envelope.sender, &current)? {
            envelope.recipients.push(rostfix_queue::Recipient {
                orig_address: b.clone(),
                address: b,
                notify: "NEVER".to_string(),
                ..rostfix_queue::Recipient::default()
            });
        }
        Ok(())
    }

    fn qualify(&self, address: &str, domain: &str) -> String {
        if address.is_empty() || domain.is_empty() || address.contains('@') {
            address.to_string()
        } else {
            format!("{address}@{domain}")
        }
    }

    /// The header rewriting context for a client (None: headers are left alone). A
    /// table that fails is an error: Postfix answers 451 4.3.0 then.
    pub fn header_context(
        &self,
        client: &ClientFacts,
    ) -> Result<Option<HeaderContext>, RewriteError> {
        for (rule, table) in &self.client_rules {
            if self.client_matches(rule, table.as_deref(), client)? {
                return Ok(Some(HeaderContext::Local));
            }
        }
        if self.remote_domain.is_empty() {
            Ok(None)
        } else {
            Ok(Some(HeaderContext::Remote(self.remote_domain.clone())))
        }
    }

    fn client_matches(
        &self,
        rule: &ClientRule,
        table: Option<&dyn Map>,
        client: &ClientFacts,
    ) -> Result<bool, RewriteError> {
        let find = |map: &dyn Map, key: &str| {
            map.lookup(key)
                .map(|v| v.is_some())
                .map_err(|source| RewriteError::Lookup {
                    spec: map.spec().to_string(),
                    source,
                })
        };
        Ok(match rule {
            ClientRule::PermitInetInterfaces => client.own_interface,
            ClientRule::PermitMynetworks => client.in_mynetworks,
            ClientRule::PermitSaslAuthenticated => client.sasl_authenticated,
            ClientRule::PermitTlsAllClientcerts => client.ccert_trusted,
            ClientRule::PermitTlsClientcerts => {
                for key in client.ccert_fingerprints.iter().filter(|k| !k.is_empty()) {
                    for map in &self.relay_clientcerts {
                        if find(map.as_ref(), key)? {
                            return Ok(true);
                        }
                    }
                }
                false
            }
            ClientRule::Table(_) => match (table, client.address) {
                (Some(map), Some(ip)) => find(map, &ip.to_string())?,
                _ => false,
            },
        })
    }

    /// One logical header (`Name: value`, folding included) rewritten, or None when
    /// it is not an address header or nothing changed.
    pub fn rewrite_header(
        &self,
        header: &str,
        context: &HeaderContext,
    ) -> Result<Option<String>, RewriteError> {
        let Some((name, _)) = crate::header::split_header(header) else {
            return Ok(None);
        };
        let Some(role) = role_of(name) else {
            return Ok(None);
        };
        rewrite_addresses(header, |external| {
            // Tables see the internal form; the result goes back quoted where needed.
            let internal = crate::quote::unquote(external);
            let a = match context {
                HeaderContext::Local => self.trivial.canonicalize(&internal, true),
                HeaderContext::Remote(d) => {
                    let forms = self.trivial.forms.apply(&internal);
                    self.qualify(forms.as_deref().unwrap_or(&internal), d)
                }
            };
            let a = match role {
                HeaderRole::Sender => self.sender_address(&a, true)?,
                HeaderRole::Recipient => self.recipient_address(&a, true)?,
            };
            Ok(if a == internal {
                external.to_string()
            } else {
                crate::quote::quote_local(&a)
            })
        })
    }
}

#[cfg(test)]
#[path = "rewriter_tests.rs"]
mod tests;
