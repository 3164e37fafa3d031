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
}
