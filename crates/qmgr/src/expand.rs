//! Virtual alias expansion of a message's envelope, done once when qmgr first activates
//! the message (Postfix does it in cleanup, before the message is queued; Rostfix has
//! no cleanup service, so qmgr does it before any delivery and stores the result with
//! rostfix_queue::rewrite_envelope, atomically). Pure: builds the new envelope.
//!
//! Each pending recipient is canonicalized (in the message's rewrite context: `local`
//! for pickup and bounce mail, otherwise remote) and expanded through
//! virtual_alias_maps; the results replace it, keeping its original address (ORCPT or
//! the address as received) and NOTIFY. A result `user%site@ourdomain` is stored as
//! it is: routing it to `user@site` is the resolver's, at each activation (see
//! manager/activate.rs), as trivial-rewrite's resolve does in Postfix. Done recipients are copied. Duplicates (same
//! address and original address) are kept once. The attribute `alias_expanded=1` marks
//! the file so a later activation does not expand again.

use rostfix_queue::{Envelope, Recipient};
use rostfix_resolve::Resolver;

/// The attribute that marks an expanded envelope.
pub const EXPANDED_ATTR: &str = "alias_expanded";

/// The new envelope, `Ok(None)` when nothing changes (or it was expanded before), or
/// the reason the expansion cannot be done now (temporary: the message is deferred).
pub fn expand_envelope(resolver: &Resolver, env: &Envelope) -> Result<Option<Envelope>, String> {
    if env.attr(EXPANDED_ATTR) == Some("1") {
        return Ok(None);
    }
    let local_context = env.attr("rewrite_context") == Some("local");
    let mut out: Vec<Recipient> = Vec::with_capacity(env.recipients.len());
    let mut seen = std::collections::HashSet::new();
    for r in &env.recipients {
        if r.done {
            out.push(r.clone());
            continue;
        }
        let canonical = resolver.canonicalize(&r.address, local_context);
        let expanded = resolver
            .expand_virtual(&canonical)
            .map_err(|e| e.to_string())?;
        let orig = if r.orig_address.is_empty() {
            r.address.clone()
        } else {
            r.orig_address.clone()
        };
        for address in expanded {
            if seen.insert((address.to_lowercase(), orig.to_lowercase())) {
                out.push(Recipient {
                    address,
                    orig_address: orig.clone(),
                    notify: r.notify.clone(),
                    done: false,
                    offset: 0,
                });
            }
        }
    }
    let same = out.len() == env.recipients.len()
        && out
            .iter()
            .zip(&env.recipients)
            .all(|(a, b)| a.address == b.address && a.done == b.done);
    if same {
        return Ok(None);
    }
    let mut new = env.clone();
    new.attrs.push((EXPANDED_ATTR.to_string(), "1".to_string()));
    new.recipients = out;
    Ok(Some(new))
}

/// Whether [`expand_envelope`] would change an envelope, decided one recipient at a
/// time without holding them: qmgr looks at a large message this way at activation
/// and reads the whole envelope only when something must be rewritten. Duplicates are
/// found through a set of hashes; a collision only sends the message down the full
/// path, which decides exactly.
pub struct ExpansionCheck<'a> {
    resolver: &'a Resolver,
    local_context: bool,
    /// Expanded before (EXPANDED_ATTR): nothing to look at.
    done_before: bool,
    seen: std::collections::HashSet<u64>,
    changes: bool,
    failed: Option<String>,
}

impl<'a> ExpansionCheck<'a> {
    /// For an envelope with these attributes (`rewrite_context`, EXPANDED_ATTR).
    pub fn new(resolver: &'a Resolver, head: &Envelope) -> ExpansionCheck<'a> {
        ExpansionCheck {
            resolver,
            local_context: head.attr("rewrite_context") == Some("local"),
            done_before: head.attr(EXPANDED_ATTR) == Some("1"),
            seen: std::collections::HashSet::new(),
            changes: false,
            failed: None,
        }
    }

    /// Looks at one recipient (in any order).
    pub fn see(&mut self, r: &Recipient) {
        if self.done_before || self.changes || self.failed.is_some() || r.done {
            return;
        }
        let canonical = self.resolver.canonicalize(&r.address, self.local_context);
        let expanded = match self.resolver.expand_virtual(&canonical) {
            Ok(e) => e,
            Err(e) => {
                self.failed = Some(e.to_string());
                return;
            }
        };
        if expanded.len() != 1 || expanded[0] != r.address {
            self.changes = true;
            return;
        }
        let orig = if r.orig_address.is_empty() {
            &r.address
        } else {
            &r.orig_address
        };
        if !self.seen.insert(pair_hash(&r.address, orig)) {
            self.changes = true;
        }
    }

    /// Ok(true): the envelope must be expanded (and rewritten); Ok(false): it stays as
    /// it is; Err: expansion cannot be done now (the message is deferred).
    pub fn outcome(self) -> Result<bool, String> {
        match self.failed {
            Some(why) => Err(why),
            None => Ok(self.changes),
        }
    }
}

/// The duplicate key of [`expand_envelope`] (address and original, case folded),
/// hashed.
fn pair_hash(address: &str, orig: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    address.to_lowercase().hash(&mut h);
    orig.to_lowercase().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> Resolver {
        Resolver::from_main_cf_text(
            "myhostname = mx.example.com\nmydomain = example.com\nmyorigin = example.com\n\
             mydestination = example.com\n\
             virtual_alias_maps = inline:{ { info@v.org = joe, bob@remote.net }, { self@v.org = self@v.org archive@v.org } }\n\
             virtual_alias_domains = v.org\n",
        )
        .expect("resolver")
    }

    fn rcpt(a: &str, done: bool) -> Recipient {
        Recipient {
            address: a.into(),
            orig_address: a.into(),
            notify: "SUCCESS".into(),
            done,
            offset: 7,
        }
    }

    fn env(rcpts: Vec<Recipient>) -> Envelope {
        Envelope {
            sender: "s@x".into(),
            arrival_us: 1,
            attrs: vec![],
            recipients: rcpts,
        }
    }

    #[test]
    fn aliases_replace_the_recipient_and_keep_orig_and_notify() {
        let e = env(vec![rcpt("info@v.org", false), rcpt("old@v.org", true)]);
        let new = expand_envelope(&resolver(), &e).unwrap().expect("changed");
        let got: Vec<(&str, &str, &str, bool)> = new
            .recipients
            .iter()
            .map(|r| {
                (
                    r.address.as_str(),
                    r.orig_address.as_str(),
                    r.notify.as_str(),
                    r.done,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("joe@example.com", "info@v.org", "SUCCESS", false),
                ("bob@remote.net", "info@v.org", "SUCCESS", false),
                ("old@v.org", "old@v.org", "SUCCESS", true),
            ]
        );
        assert_eq!(new.attr(EXPANDED_ATTR), Some("1"));
        // Never twice.
        assert!(expand_envelope(&resolver(), &new).unwrap().is_none());
    }

    #[test]
    fn self_mapping_keeps_the_address_once() {
        let e = env(vec![rcpt("self@v.org", false)]);
        let new = expand_envelope(&resolver(), &e).unwrap().expect("changed");
        let a: Vec<&str> = new.recipients.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(a, ["self@v.org", "archive@v.org"]);
    }

    #[test]
    fn nothing_to_do_is_none() {
        let e = env(vec![rcpt("a@far.org", false)]);
        assert!(expand_envelope(&resolver(), &e).unwrap().is_none());
    }

    #[test]
    fn local_context_qualifies_bare_names() {
        let mut e = env(vec![rcpt("joe", false)]);
        e.attrs.push(("rewrite_context".into(), "local".into()));
        let new = expand_envelope(&resolver(), &e).unwrap().expect("changed");
        assert_eq!(new.recipients[0].address, "joe@example.com");
        assert_eq!(new.recipients[0].orig_address, "joe");
    }

    #[test]
    fn the_streaming_check_agrees_with_the_expansion() {
        let r = resolver();
        let mut local = env(vec![rcpt("joe", false)]);
        local.attrs.push(("rewrite_context".into(), "local".into()));
        let mut expanded_before = env(vec![rcpt("info@v.org", false)]);
        expanded_before
            .attrs
            .push((EXPANDED_ATTR.into(), "1".into()));
        let cases = [
            env(vec![rcpt("a@far.org", false), rcpt("b@far.org", false)]),
            env(vec![rcpt("info@v.org", false), rcpt("old@v.org", true)]),
            env(vec![rcpt("self@v.org", false)]),
            // A duplicate (case folded) is removed by the expansion.
            env(vec![rcpt("a@far.org", false), rcpt("A@Far.org", false)]),
            // Done ones are copied, never looked at.
            env(vec![rcpt("info@v.org", true), rcpt("a@far.org", false)]),
            local,
            expanded_before,
        ];
        for e in &cases {
            let mut check = ExpansionCheck::new(&r, e);
            // Order does not matter: the slice is shown after the rest.
            for rc in e.recipients.iter().rev() {
                check.see(rc);
            }
            let full = expand_envelope(&r, e).unwrap().is_some();
            assert_eq!(check.outcome(), Ok(full), "{:?}", e.recipients);
        }
    }
}
