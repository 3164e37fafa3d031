//! DNS block and allow lists (Postfix's smtpd_check.c find_dnsxl_addr /
//! find_dnsxl_domain): reject_rbl_client and permit_dnswl_client query the client's
//! reversed address under the list's domain; reject_rhsbl_{client,reverse_client,helo,
//! sender,recipient} and permit_rhswl_client query a domain name under it. The
//! argument `domain=127.0.0.[2..5]` lists the answers that count (Postfix's
//! ip_match syntax: each octet a number or `[` numbers and `n..m` ranges separated by
//! `;` `]`). A listed client is refused with the reply of rbl_reply_maps or
//! default_rbl_reply, whose `$rbl_code`, `$rbl_class`, `$rbl_what`, `$rbl_domain`,
//! `$rbl_reason` (the list's TXT) and client/sender variables are expanded.

use super::dns::{rbl_query, Answer, Dns};
use super::eval::{auth_destination, fix_dsn, reply, valid_hostname, Facts, Step};
use rostfix_maps::Map;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Which list, and what it is queried with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsxlKind {
    RblClient,
    DnswlClient,
    RhsblClient,
    RhswlClient,
    RhsblReverseClient,
    RhsblHelo,
    RhsblSender,
    RhsblRecipient,
}

impl DnsxlKind {
    /// The restriction name, both ways.
    const NAMES: [(&'static str, DnsxlKind); 8] = [
        ("reject_rbl_client", DnsxlKind::RblClient),
        ("permit_dnswl_client", DnsxlKind::DnswlClient),
        ("reject_rhsbl_client", DnsxlKind::RhsblClient),
        ("permit_rhswl_client", DnsxlKind::RhswlClient),
        ("reject_rhsbl_reverse_client", DnsxlKind::RhsblReverseClient),
        ("reject_rhsbl_helo", DnsxlKind::RhsblHelo),
        ("reject_rhsbl_sender", DnsxlKind::RhsblSender),
        ("reject_rhsbl_recipient", DnsxlKind::RhsblRecipient),
    ];

    /// The kind a restriction name asks for (`reject_rbl` is Postfix's old name).
    pub fn from_name(name: &str) -> Option<DnsxlKind> {
        if name == "reject_rbl" {
            return Some(DnsxlKind::RblClient);
        }
        DnsxlKind::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
    }

    pub fn name(self) -> &'static str {
        DnsxlKind::NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("reject_rbl_client")
    }

    fn permits(self) -> bool {
        matches!(self, DnsxlKind::DnswlClient | DnsxlKind::RhswlClient)
    }
}

/// One list restriction: `domain` or `domain=pattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnsxl {
    pub kind: DnsxlKind,
    /// The list's domain, lower case, without the `=pattern`.
    pub domain: String,
    /// The argument as written (rbl_reply_maps is looked up with it first).
    pub arg: String,
    pub want: Option<AddrPattern>,
}

/// Why a list argument is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad DNS list reply pattern {0:?}: want d.d.d.d, each d a number or [n;n..m]")]
pub struct PatternError(pub String);

impl Dnsxl {
    pub fn parse(kind: DnsxlKind, arg: &str) -> Result<Dnsxl, PatternError> {
        let (domain, want) = match arg.split_once('=') {
            Some((d, w)) => (d, Some(AddrPattern::parse(w)?)),
            None => (arg, None),
        };
        Ok(Dnsxl {
            kind,
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            arg: arg.to_string(),
            want,
        })
    }
}

/// The answers that count: per octet, the values it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrPattern(Vec<Vec<(u8, u8)>>);

impl AddrPattern {
    pub fn parse(text: &str) -> Result<AddrPattern, PatternError> {
        let bad = || PatternError(text.to_string());
        let mut octets = Vec::new();
        let mut rest = text;
        for i in 0..4 {
            let (item, after) = if let Some(inner) = rest.strip_prefix('[') {
                let end = inner.find(']').ok_or_else(bad)?;
                (&inner[..end], &inner[end + 1..])
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            let mut ranges = Vec::new();
            for part in item.split(';') {
                let (lo, hi) = part.split_once("..").unwrap_or((part, part));
                let lo: u8 = lo.trim().parse().map_err(|_| bad())?;
                let hi: u8 = hi.trim().parse().map_err(|_| bad())?;
                if lo > hi {
                    return Err(bad());
                }
                ranges.push((lo, hi));
            }
            octets.push(ranges);
            rest = if i < 3 {
                after.strip_prefix('.').ok_or_else(bad)?
            } else if after.is_empty() {
                after
            } else {
                return Err(bad());
            };
        }
        Ok(AddrPattern(octets))
    }

    pub fn matches(&self, addr: Ipv4Addr) -> bool {
        addr.octets()
            .iter()
            .zip(&self.0)
            .all(|(o, ranges)| ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&o)))
    }
}

/// default_rbl_reply and rbl_reply_maps.
#[derive(Clone)]
pub struct RblReplies {
    pub default_template: String,
    pub maps: Vec<Arc<dyn Map>>,
    /// maps_rbl_reject_code: `$rbl_code`.
    pub code: u16,
}

impl Default for RblReplies {
    fn default() -> RblReplies {
        RblReplies {
            default_template: "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked \
                               using $rbl_domain${rbl_reason?; $rbl_reason}"
                .into(),
            maps: Vec::new(),
            code: 554,
        }
    }
}

impl std::fmt::Debug for RblReplies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RblReplies({:?})", self.default_template)
    }
}

/// Evaluates one list restriction.
pub(super) fn check(
    x: &Dnsxl,
    f: &Facts<'_>,
    dns: Option<&Dns>,
    rc: &super::config::RestrictionConfig,
) -> Step {
    let Some(dns) = dns else {
        return Step::Go;
    };
    if x.kind.permits() {
        // Postfix's safety: at RCPT (whichever list runs there under
        // smtpd_delay_reject) an allow list never lets a client relay.
        if let Some(rcpt) = f.recipient {
            if !matches!(auth_destination(rcpt, f.mydestination, rc), Ok(true)) {
                return Step::Go;
            }
        }
    }
    let known = |n: &str| n != "unknown" && !n.is_empty();
    let (query, what, class) = match x.kind {
        DnsxlKind::RblClient | DnsxlKind::DnswlClient => {
            let Some(ip) = f.client_ip else {
                return Step::Go;
            };
            (
                rbl_query(ip, &x.domain),
                f.client_addr.clone(),
                "Client host",
            )
        }
        DnsxlKind::RhsblClient | DnsxlKind::RhswlClient if known(f.client_name) => {
            match domain_query(f.client_name, &x.domain) {
                Some(q) => (q, f.client_name.to_string(), "Client host"),
                None => return Step::Go,
            }
        }
        DnsxlKind::RhsblReverseClient if known(f.reverse_client_name) => {
            match domain_query(f.reverse_client_name, &x.domain) {
                Some(q) => (
                    q,
                    f.reverse_client_name.to_string(),
                    "Unverified Client host",
                ),
                None => return Step::Go,
            }
        }
        DnsxlKind::RhsblHelo => match f.helo.and_then(|h| domain_query(h, &x.domain)) {
            Some(q) => (q, f.helo.unwrap_or_default().to_string(), "Helo command"),
            None => return Step::Go,
        },
        DnsxlKind::RhsblSender => match f.sender.and_then(|s| domain_query(s, &x.domain)) {
            Some(q) => (
                q,
                f.sender.unwrap_or_default().to_string(),
                "Sender address",
            ),
            None => return Step::Go,
        },
        DnsxlKind::RhsblRecipient => match f.recipient.and_then(|r| domain_query(r, &x.domain)) {
            Some(q) => (
                q,
                f.recipient.unwrap_or_default().to_string(),
                "Recipient address",
            ),
            None => return Step::Go,
        },
        _ => return Step::Go,
    };
    let listed = match dns.a(&query) {
        Answer::Found(addrs) => x.want.as_ref().is_none_or(|p| {
            addrs
                .iter()
                .filter_map(|a| a.parse::<Ipv4Addr>().ok())
                .any(|a| p.matches(a))
        }),
        Answer::NotFound => false,
        Answer::TempFail => {
            // Postfix ignores a list it cannot reach rather than deferring all mail.
            log::warn!("{}: DNS lookup of {query} failed; list ignored", x.domain);
            false
        }
    };
    match (listed, x.kind.permits()) {
        (false, _) => Step::Go,
        (true, true) => Step::Permit,
        (true, false) => Step::Reject(reject_reply(x, &what, class, || dns.txt(&query), f, rc)),
    }
}

/// `name.list` for a domain or the domain of an address; None where Postfix skips
/// the lookup (address literals, names ending in a number, malformed names).
fn domain_query(what: &str, list: &str) -> Option<String> {
    let domain = match what.rsplit_once('@') {
        Some((_, d)) => d,
        None => what,
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let last = domain.rsplit('.').next().unwrap_or("");
    if domain.is_empty()
        || domain.starts_with('[')
        || last.bytes().all(|b| b.is_ascii_digit())
        || !valid_hostname(&domain)
    {
        return None;
    }
    Some(format!("{domain}.{list}"))
}

/// The reply for a listed client, from rbl_reply_maps or default_rbl_reply.
fn reject_reply(
    x: &Dnsxl,
    what: &str,
    class: &str,
    txt: impl FnOnce() -> Option<String>,
    f: &Facts<'_>,
    rc: &super::config::RestrictionConfig,
) -> crate::reply::Reply {
    let replies = &rc.rbl_replies;
    let mut template = None;
    for key in [x.arg.as_str(), x.domain.as_str()] {
        for m in &replies.maps {
            match m.lookup(key) {
                Ok(Some(t)) => {
                    template = Some(t);
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    log::warn!("{}: table lookup error for {key}: {e}", m.spec());
                    return reply(451, "4.3.0", "Server configuration error".into());
                }
            }
        }
        if template.is_some() {
            break;
        }
    }
    let reason: String = txt()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let lookup = |name: &str| -> Option<String> {
        Some(match name {
            "rbl_code" => replies.code.to_string(),
            "rbl_domain" => x.domain.clone(),
            "rbl_reason" | "rbl_txt" => reason.clone(),
            "rbl_what" => what.to_string(),
            "rbl_class" => class.to_string(),
            "client_address" => f.client_addr.clone(),
            "client_name" => f.client_name.to_string(),
            "reverse_client_name" => f.reverse_client_name.to_string(),
            "helo_name" => f.helo.unwrap_or_default().to_string(),
            "sender" => f.sender.unwrap_or_default().to_string(),
            "recipient" => f.recipient.unwrap_or_default().to_string(),
            _ => return None,
        })
    };
    let expand = |t: &str| rostfix_config::expand_template(t, &lookup).ok();
    let text = match template.as_deref().and_then(expand) {
        Some(t) => t,
        None => {
            if let Some(t) = &template {
                log::warn!("bad rbl reply template for domain {}: {t}", x.arg);
            }
            expand(&replies.default_template).unwrap_or_default()
        }
    };
    let b = text.as_bytes();
    let well_formed = b.len() > 4
        && matches!(b[0], b'4' | b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b[3] == b' ';
    if !well_formed {
        log::warn!("rbl response code configuration error: {text}");
        return reply(450, "4.7.1", "Service unavailable".into());
    }
    let code: u16 = text[..3].parse().unwrap_or(450);
    let rest = &text[4..];
    let (dsn, body) = match rest.split_once(' ') {
        Some((d, b)) if is_dsn(d) => (d, b),
        _ => ("4.7.1", rest),
    };
    let body = if body.is_empty() {
        "Service unavailable"
    } else {
        body
    };
    reply(code, &fix_dsn(code, dsn), body.to_string())
}

fn is_dsn(s: &str) -> bool {
    let p: Vec<&str> = s.split('.').collect();
    p.len() == 3
        && matches!(p[0], "2" | "4" | "5")
        && p[1..]
            .iter()
            .all(|x| (1..=3).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = AddrPattern::parse("127.0.0.[2..5]").unwrap();
        assert!(p.matches(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(p.matches(Ipv4Addr::new(127, 0, 0, 5)));
        assert!(!p.matches(Ipv4Addr::new(127, 0, 0, 10)));
        let p = AddrPattern::parse("127.0.[0;1].[2;4..6]").unwrap();
        assert!(p.matches(Ipv4Addr::new(127, 0, 1, 4)));
        assert!(!p.matches(Ipv4Addr::new(127, 0, 1, 3)));
        assert!(AddrPattern::parse("127.0.0.2")
            .unwrap()
            .matches(Ipv4Addr::new(127, 0, 0, 2)));
        for bad in [
            "127.0.0",
            "127.0.0.[5..2]",
            "127.0.0.300",
            "127.0.0.2.1",
            "x",
        ] {
            assert!(AddrPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_arguments() {
        assert_eq!(
            DnsxlKind::from_name("reject_rbl"),
            Some(DnsxlKind::RblClient)
        );
        assert_eq!(
            DnsxlKind::from_name("permit_rhswl_client").map(DnsxlKind::name),
            Some("permit_rhswl_client")
        );
        let x = Dnsxl::parse(DnsxlKind::RhsblHelo, "Bl.Test.=127.0.0.2").unwrap();
        assert_eq!(x.domain, "bl.test");
        assert_eq!(x.arg, "Bl.Test.=127.0.0.2");
    }

    #[test]
    fn domain_queries_skip_what_postfix_skips() {
        assert_eq!(
            domain_query("u@Spam.Example", "rhs.test").as_deref(),
            Some("spam.example.rhs.test")
        );
        assert_eq!(domain_query("u@[192.0.2.1]", "rhs.test"), None);
        assert_eq!(domain_query("host.123", "rhs.test"), None);
        assert_eq!(domain_query("bad_name!", "rhs.test"), None);
    }

    fn reply_for(replies: RblReplies, x: &Dnsxl) -> String {
        let d: Vec<String> = Vec::new();
        let f = Facts {
            client_name: "unknown",
            reverse_client_name: "unknown",
            name_status: crate::client::NameStatus::Perm,
            reverse_name_status: crate::client::NameStatus::Perm,
            client_addr: "192.0.2.1".into(),
            client_ip: Some("192.0.2.1".parse().unwrap()),
            client_log: "unknown[192.0.2.1]".into(),
            helo: Some("h.test"),
            sender: Some("s@x.test"),
            recipient: None,
            mynetworks: false,
            sasl_username: None,
            mydestination: &d,
            session: Default::default(),
        };
        let rc = super::super::config::RestrictionConfig {
            rbl_replies: replies,
            ..Default::default()
        };
        reject_reply(
            x,
            "192.0.2.1",
            "Client host",
            || Some("see http://bl.test/$x".into()),
            &f,
            &rc,
        )
        .log_text()
    }

    #[test]
    fn reply_templates() {
        let x = Dnsxl::parse(DnsxlKind::RblClient, "bl.test=127.0.0.2").unwrap();
        assert_eq!(
            reply_for(RblReplies::default(), &x),
            "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.test; \
             see http://bl.test/$x"
        );
        let table: Arc<dyn Map> = Arc::from(
            rostfix_maps::open_map(
                "inline:{ { bl.test=450 4.7.1 $client_address from $helo_name is listed: $rbl_reason } }",
            )
            .unwrap(),
        );
        let replies = RblReplies {
            maps: vec![table],
            ..RblReplies::default()
        };
        assert_eq!(
            reply_for(replies, &x),
            "450 4.7.1 192.0.2.1 from h.test is listed: see http://bl.test/$x"
        );
        let replies = RblReplies {
            default_template: "$rbl_code go away".into(),
            code: 550,
            ..RblReplies::default()
        };
        assert_eq!(reply_for(replies, &x), "550 5.7.1 go away");
        let replies = RblReplies {
            default_template: "blocked".into(),
            ..RblReplies::default()
        };
        assert_eq!(reply_for(replies, &x), "450 4.7.1 Service unavailable");
    }

    #[test]
    fn dsn_forms() {
        assert!(is_dsn("5.7.1"));
        assert!(!is_dsn("Service"));
    }
}
