//! Client SASL for relayhosts: the password lookup (smtp_sasl_password_maps, keyed as
//! Postfix does, see below), the mechanism choice
//! under smtp_sasl_security_options / smtp_sasl_tls_security_options, and the PLAIN
//! and LOGIN encodings.
//!
//! Key order as Postfix's smtp_sasl_passwd_lookup: with
//! smtp_sender_dependent_authentication the envelope sender first ([`lookup_sender`]),
//! then the server host name, then the next hop as written, then (Rostfix addition)
//! the bare next-hop host or domain.
//!
//! Only PLAIN (preferred) and LOGIN are implemented; both send the password in the
//! clear inside the session, so `noplaintext` refuses them (and with Postfix's default
//! options, `noplaintext, noanonymous`, nothing is left: set `noanonymous` as Postfix's
//! SASL_README says). The password never appears in a log line or an error text.

use rostfix_maps::Map;
use std::fmt;
use thiserror::Error;

/// A user name and password from the password table.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password, even in a debug dump.
        write!(
            f,
            "Credentials {{ user: {:?}, password: <hidden> }}",
            self.user
        )
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SaslError {
    #[error("SASL password lookup for {0} failed: {1}")]
    Lookup(String, String),
}

/// Looks up credentials for a session to `host` reached through `nexthop`.
pub fn lookup(
    maps: &[Box<dyn Map>],
    nexthop: &str,
    host: &str,
) -> Result<Option<Credentials>, SaslError> {
    let bare = crate::nexthop::parse(nexthop)
        .map(|h| h.host)
        .unwrap_or_default();
    let mut keys = vec![host.to_string(), nexthop.trim().to_string()];
    if !bare.is_empty() {
        keys.push(bare);
    }
    keys.dedup();
    for key in keys.iter().filter(|k| !k.is_empty()) {
        for map in maps {
            match map.lookup(key) {
                Ok(Some(value)) => return Ok(Some(parse_entry(&value))),
                Ok(None) => {}
                Err(e) => return Err(SaslError::Lookup(key.clone(), e.to_string())),
            }
        }
    }
    Ok(None)
}

/// With smtp_sender_dependent_authentication: credentials for mail from `sender`,
/// looked up in mail_addr_find order (`user+ext@domain`, `user@domain`, `@domain`)
/// before the host and next-hop keys of [`lookup`]. The null sender has none.
pub fn lookup_sender(
    maps: &[Box<dyn Map>],
    sender: &str,
    delimiter: &str,
) -> Result<Option<Credentials>, SaslError> {
    if sender.is_empty() {
        return Ok(None);
    }
    for map in maps {
        match rostfix_maps::address::lookup_address(map.as_ref(), sender, delimiter, false) {
            Ok(Some(value)) => return Ok(Some(parse_entry(&value))),
            Ok(None) => {}
            Err(e) => return Err(SaslError::Lookup(sender.to_string(), e.to_string())),
        }
    }
    Ok(None)
}

/// `user:password` (the password may contain colons; a value without one is a user
/// with an empty password, as Postfix reads it).
pub fn parse_entry(value: &str) -> Credentials {
    let value = value.trim();
    match value.split_once(':') {
        Some((u, p)) => Credentials {
            user: u.to_string(),
            password: p.to_string(),
        },
        None => Credentials {
            user: value.to_string(),
            password: String::new(),
        },
    }
}

/// smtp_sasl_security_options words that matter to PLAIN and LOGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecurityOptions {
    pub noplaintext: bool,
    pub noanonymous: bool,
}

impl SecurityOptions {
    pub fn parse(words: &[String]) -> SecurityOptions {
        let has = |w: &str| words.iter().any(|x| x.eq_ignore_ascii_case(w));
        SecurityOptions {
            noplaintext: has("noplaintext"),
            noanonymous: has("noanonymous"),
        }
    }
}

/// A mechanism this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

/// The mechanism to use among those the server offers (`AUTH` EHLO keyword
/// arguments), or None when the options leave none.
pub fn choose(offered: &[String], opts: SecurityOptions) -> Option<Mechanism> {
    if opts.noplaintext {
        return None;
    }
    let offers = |m: &str| offered.iter().any(|o| o.eq_ignore_ascii_case(m));
    if offers("PLAIN") {
        Some(Mechanism::Plain)
    } else if offers("LOGIN") {
        Some(Mechanism::Login)
    } else {
        None
    }
}

/// The mechanisms in the EHLO reply: `AUTH PLAIN LOGIN` or the old `AUTH=PLAIN LOGIN`.
pub fn offered(extensions: &[String]) -> Option<Vec<String>> {
    let mut found: Option<Vec<String>> = None;
    for e in extensions {
        let rest = e
            .strip_prefix("AUTH ")
            .or_else(|| e.strip_prefix("AUTH="))
            .or_else(|| (e == "AUTH").then_some(""));
        if let Some(rest) = rest {
            let list = found.get_or_insert_with(Vec::new);
            for m in rest.split_whitespace() {
                let m = m.to_ascii_uppercase();
                if !list.contains(&m) {
                    list.push(m);
                }
            }
        }
    }
    found
}

/// The PLAIN initial response: base64 of `\0user\0password` (no authorization id).
pub fn plain_response(c: &Credentials) -> String {
    let mut raw = Vec::with_capacity(c.user.len() + c.password.len() + 2);
    raw.push(0);
    raw.extend_from_slice(c.user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(c.password.as_bytes());
    base64(&raw)
}

/// Standard base64 with padding (RFC 4648 section 4), as SASL (RFC 4954) uses.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rostfix_maps::open_map;

    #[test]
    fn base64_vectors() {
        // RFC 4648 section 10.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn plain_encoding() {
        let c = parse_entry("tim:tanstaaftanstaaf");
        // RFC 4616's example without the authzid.
        assert_eq!(plain_response(&c), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
        assert_eq!(parse_entry("u:p:w").password, "p:w");
        assert!(!format!("{c:?}").contains("tanstaaf"));
    }

    #[test]
    fn mechanism_choice() {
        let ext = vec!["PIPELINING".to_string(), "AUTH LOGIN PLAIN".to_string()];
        let mechs = offered(&ext).unwrap();
        let anon = SecurityOptions::parse(&["noanonymous".to_string()]);
        assert_eq!(choose(&mechs, anon), Some(Mechanism::Plain));
        assert_eq!(choose(&["LOGIN".into()], anon), Some(Mechanism::Login));
        let strict = SecurityOptions::parse(&["noplaintext".into(), "noanonymous".into()]);
        assert_eq!(choose(&mechs, strict), None);
        assert_eq!(choose(&["CRAM-MD5".into()], anon), None);
        assert_eq!(
            offered(&["AUTH=LOGIN".to_string()]),
            Some(vec!["LOGIN".into()])
        );
        assert_eq!(offered(&["SIZE 10".to_string()]), None);
    }

    #[test]
    fn password_lookup_order() {
        let maps =
            vec![
                open_map("inline:{ [relay.test]:587=a:1, mx.relay.test=b:2, relay.test=c:3 }")
                    .unwrap(),
            ];
        let u = |hop: &str, host: &str| lookup(&maps, hop, host).unwrap().map(|c| c.user);
        assert_eq!(u("[relay.test]:587", "10.0.0.1"), Some("a".into()));
        assert_eq!(u("relay.test", "mx.relay.test"), Some("b".into()));
        assert_eq!(u("[relay.test]:25", "relay.test"), Some("c".into()));
        assert_eq!(u("[relay.test]:25", "10.0.0.1"), Some("c".into()));
        assert_eq!(u("other.test", "mx.other.test"), None);
    }

    #[test]
    fn sender_keys_come_first_when_asked() {
        let maps = vec![open_map(
            "inline:{ news@shop.test=news:n1, @shop.test=shop:s1, [relay.test]:587=relay:r1 }",
        )
        .unwrap()];
        let u = |sender: &str| lookup_sender(&maps, sender, "+").unwrap().map(|c| c.user);
        assert_eq!(u("news+x@shop.test"), Some("news".into()));
        assert_eq!(u("sales@shop.test"), Some("shop".into()));
        assert_eq!(u("someone@else.test"), None);
        // The null sender is never a key: the next hop's credentials apply.
        assert_eq!(u(""), None);
    }

    proptest! {
        #[test]
        fn base64_length(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let e = base64(&data);
            prop_assert_eq!(e.len(), data.len().div_ceil(3) * 4);
            prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='));
        }
    }
}
