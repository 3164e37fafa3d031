//! Sender-dependent routing, as Postfix's trivial-rewrite does it:
//! sender_dependent_relayhost_maps overrides relayhost for the relay and default
//! classes, sender_dependent_default_transport_maps overrides default_transport for
//! the default class. Both are searched by the envelope sender in mail_addr_find
//! order (`user+ext@domain`, `user@domain`, `user` for local domains, `@domain`); the
//! null sender is looked up as empty_address_relayhost_maps_lookup_key /
//! empty_address_default_transport_maps_lookup_key (`<>`). A result of `DUNNO` ends
//! the search without an override. A lookup error is temporary (the caller defers).

use crate::domain_list::split_list;
use crate::error::ResolveError;
use rostfix_config::MainCf;
use rostfix_maps::address::lookup_address;
use rostfix_maps::{open_map_with, Map, OpenFlags};

/// The sender-dependent tables of a resolver.
#[derive(Default)]
pub struct SenderDependent {
    relayhost_maps: Vec<Box<dyn Map>>,
    transport_maps: Vec<Box<dyn Map>>,
    null_relayhost_key: String,
    null_transport_key: String,
}

impl std::fmt::Debug for SenderDependent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderDependent")
            .field("relayhost_maps", &self.relayhost_maps.len())
            .field("transport_maps", &self.transport_maps.len())
            .finish()
    }
}

const RELAYHOST: &str = "sender_dependent_relayhost_maps";
const TRANSPORT: &str = "sender_dependent_default_transport_maps";

impl SenderDependent {
    /// Opens the tables main.cf names.
    pub fn from_config(cfg: &MainCf) -> Result<SenderDependent, ResolveError> {
        let open = |param: &str| -> Result<Vec<Box<dyn Map>>, ResolveError> {
            split_list(&cfg.get(param))
                .iter()
                .map(|spec| {
                    // As Postfix's trivial-rewrite: a regexp table must not build a
                    // next hop or transport out of the sender address.
                    open_map_with(spec, OpenFlags::PARANOID).map_err(|source| ResolveError::Open {
                        param: param.to_string(),
                        source,
                    })
                })
                .collect()
        };
        Ok(SenderDependent {
            relayhost_maps: open(RELAYHOST)?,
            transport_maps: open(TRANSPORT)?,
            null_relayhost_key: cfg.get("empty_address_relayhost_maps_lookup_key"),
            null_transport_key: cfg.get("empty_address_default_transport_maps_lookup_key"),
        })
    }

    /// The relayhost for mail from `sender`, if the table overrides relayhost.
    /// `sender_domain_is_local` decides whether the bare localpart is a query.
    pub fn relayhost(
        &self,
        sender: &str,
        delimiter: &str,
        sender_domain_is_local: bool,
    ) -> Result<Option<String>, ResolveError> {
        find(
            &self.relayhost_maps,
            RELAYHOST,
            sender,
            &self.null_relayhost_key,
            delimiter,
            sender_domain_is_local,
        )
    }

    /// The default transport (`transport[:nexthop]`) for mail from `sender`, if the
    /// table overrides default_transport.
    pub fn default_transport(
        &self,
        sender: &str,
        delimiter: &str,
        sender_domain_is_local: bool,
    ) -> Result<Option<String>, ResolveError> {
        find(
            &self.transport_maps,
            TRANSPORT,
            sender,
            &self.null_transport_key,
            delimiter,
            sender_domain_is_local,
        )
    }

    /// True when neither table is configured (no lookup needed).
    pub fn is_empty(&self) -> bool {
        self.relayhost_maps.is_empty() && self.transport_maps.is_empty()
    }
}

fn find(
    maps: &[Box<dyn Map>],
    param: &str,
    sender: &str,
    null_key: &str,
    delimiter: &str,
    local: bool,
) -> Result<Option<String>, ResolveError> {
    let err = |source| ResolveError::Lookup {
        param: param.to_string(),
        source,
    };
    for map in maps {
        let found = if sender.is_empty() {
            map.lookup(null_key).map_err(err)?
        } else {
            lookup_address(map.as_ref(), sender, delimiter, local).map_err(err)?
        };
        if let Some(value) = found {
            let value = value.trim();
            // DUNNO and an empty result end the search with no override.
            if value.is_empty() || value.eq_ignore_ascii_case("DUNNO") {
                return Ok(None);
            }
            return Ok(Some(value.to_string()));
        }
    }
    Ok(None)
}
