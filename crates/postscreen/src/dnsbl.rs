//! postscreen_dnsbl_sites: parsing `domain[=filter][*weight]` entries, the reply
//! filters (`127.0.0.[2..4]`, `127.0.0.[2;5;9..11]`), the DNSBL query name of a
//! client, and the combined score of the replies (Postfix's postscreen_dnsbl.c
//! semantics: every entry whose filter matches adds its weight; the name shown to a
//! refused client is the domain of the largest contribution).

use std::net::{IpAddr, Ipv4Addr};

/// A postscreen_dnsbl_sites entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    #[error("bad DNSBL weight factor \"{weight}\" in \"{site}\"")]
    Weight { weight: String, site: String },
    #[error("bad DNSBL filter \"{filter}\" in \"{site}\": {why}")]
    Filter {
        filter: String,
        site: String,
        why: &'static str,
    },
    #[error("bad DNSBL domain name \"{domain}\" in \"{site}\"")]
    Domain { domain: String, site: String },
}

/// One octet of a reply filter: the ranges it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Octet(Vec<(u8, u8)>);

impl Octet {
    fn matches(&self, value: u8) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&value))
    }
}

/// A reply filter: four octet patterns an A record must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter([Octet; 4]);

impl Filter {
    /// Parses `d.d.d.d` where each `d` is a number or `[` items `]`, the items
    /// separated by `;`, each a number or `n..m`.
    pub fn parse(text: &str) -> Result<Filter, &'static str> {
        let mut octets = Vec::with_capacity(4);
        let mut rest = text;
        for i in 0..4 {
            let (item, tail) = if let Some(inner) = rest.strip_prefix('[') {
                let end = inner.find(']').ok_or("missing \"]\"")?;
                (parse_items(&inner[..end])?, &inner[end + 1..])
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                let n = parse_octet(&rest[..end])?;
                (Octet(vec![(n, n)]), &rest[end..])
            };
            octets.push(item);
            rest = if i < 3 {
                tail.strip_prefix('.').ok_or("want four octets")?
            } else if tail.is_empty() {
                tail
            } else {
                return Err("want four octets");
            };
        }
        let octets: [Octet; 4] = octets.try_into().map_err(|_| "want four octets")?;
        Ok(Filter(octets))
    }

    pub fn matches(&self, addr: Ipv4Addr) -> bool {
        self.0.iter().zip(addr.octets()).all(|(o, v)| o.matches(v))
    }
}

fn parse_octet(text: &str) -> Result<u8, &'static str> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an octet must be a number 0-255 or [list]");
    }
    text.parse::<u8>().map_err(|_| "octet value out of range")
}

fn parse_items(text: &str) -> Result<Octet, &'static str> {
    let mut ranges = Vec::new();
    for item in text.split(';') {
        let range = match item.split_once("..") {
            Some((lo, hi)) => (parse_octet(lo)?, parse_octet(hi)?),
            None => {
                let n = parse_octet(item)?;
                (n, n)
            }
        };
        if range.0 > range.1 {
            return Err("range start above its end");
        }
        ranges.push(range);
    }
    Ok(Octet(ranges))
}

/// One postscreen_dnsbl_sites entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The DNSBL domain, lower case, without a trailing dot.
    pub domain: String,
    pub filter: Option<Filter>,
    /// Negative weights allowlist.
    pub weight: i32,
}

impl Site {
    /// Parses `domain[=filter][*weight]`.
    pub fn parse(text: &str) -> Result<Site, SiteError> {
        let (rest, weight) = match text.split_once('*') {
            Some((rest, w)) => {
                let weight = w.trim().parse::<i32>().map_err(|_| SiteError::Weight {
                    weight: w.to_string(),
                    site: text.to_string(),
                })?;
                (rest, weight)
            }
            None => (text, 1),
        };
        let (domain, filter) = match rest.split_once('=') {
            Some((d, f)) => {
                let filter = Filter::parse(f).map_err(|why| SiteError::Filter {
                    filter: f.to_string(),
                    site: text.to_string(),
                    why,
                })?;
                (d, Some(filter))
            }
            None => (rest, None),
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if !valid_domain(&domain) {
            return Err(SiteError::Domain {
                domain,
                site: text.to_string(),
            });
        }
        Ok(Site {
            domain,
            filter,
            weight,
        })
    }

    /// Does a reply with these A records count for this entry?
    fn counts(&self, replies: &[Ipv4Addr]) -> bool {
        !replies.is_empty()
            && self
                .filter
                .as_ref()
                .is_none_or(|f| replies.iter().any(|a| f.matches(*a)))
    }
}

fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parses every entry of postscreen_dnsbl_sites.
pub fn parse_sites<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<Site>, SiteError> {
    items.into_iter().map(Site::parse).collect()
}

/// The distinct domains to query, in first-listed order.
pub fn domains(sites: &[Site]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in sites {
        if !out.contains(&s.domain) {
            out.push(s.domain.clone());
        }
    }
    out
}

/// The name queried for `client` in `domain`: reversed octets (IPv4) or reversed
/// nibbles (IPv6), then the domain.
pub fn query_name(client: IpAddr, domain: &str) -> String {
    match client {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{domain}")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + domain.len());
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            name.push_str(domain);
            name
        }
    }
}

/// What one domain answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub domain: String,
    /// The A records (empty: not listed, or the lookup failed).
    pub addrs: Vec<Ipv4Addr>,
    /// The answer's TTL (negative TTL for "not listed"), when known.
    pub ttl: Option<u32>,
}

/// The combined result for one client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Score {
    pub rank: i32,
    /// The domain with the largest positive contribution (for the reject reply).
    pub listed_by: Option<String>,
    /// The TTL to cache the result for: the smallest TTL among the answers that
    /// decided it (listings when the rank is positive, the rest otherwise).
    pub ttl: Option<u32>,
}

/// Scores `replies` against `sites`.
pub fn score(sites: &[Site], replies: &[Reply]) -> Score {
    let mut score = Score::default();
    let mut best_weight = i32::MIN;
    let mut fail_ttl: Option<u32> = None;
    let mut pass_ttl: Option<u32> = None;
    let min = |a: Option<u32>, b: Option<u32>| match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    };
    for reply in replies {
        for site in sites.iter().filter(|s| s.domain == reply.domain) {
            let counts = site.counts(&reply.addrs);
            if counts {
                score.rank = score.rank.saturating_add(site.weight);
                if site.weight > 0 && site.weight > best_weight {
                    best_weight = site.weight;
                    score.listed_by = Some(site.domain.clone());
                }
            }
            // A listing by a blocklist, or no listing by an allowlist, argues for
            // refusal; the other two for passing.
            if counts == (site.weight > 0) {
                fail_ttl = min(fail_ttl, reply.ttl);
            } else {
                pass_ttl = min(pass_ttl, reply.ttl);
            }
        }
    }
    score.ttl = if score.rank > 0 { fail_ttl } else { pass_ttl };
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(domain: &str, addrs: &[&str]) -> Reply {
        Reply {
            domain: domain.to_string(),
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            ttl: Some(300),
        }
    }

    #[test]
    fn entries_with_filters_and_weights() {
        let s = Site::parse("zen.example*3").unwrap();
        assert_eq!(
            (s.domain.as_str(), s.weight, s.filter),
            ("zen.example", 3, None)
        );
        let s = Site::parse("List.Example.=127.0.0.[2..4]*2").unwrap();
        assert_eq!((s.domain.as_str(), s.weight), ("list.example", 2));
        let f = s.filter.unwrap();
        assert!(f.matches("127.0.0.3".parse().unwrap()));
        assert!(!f.matches("127.0.0.5".parse().unwrap()));
        let s = Site::parse("wl.example=127.0.[0..255].[1;3;9..10]*-2").unwrap();
        assert_eq!(s.weight, -2);
        let f = s.filter.unwrap();
        assert!(f.matches("127.0.7.10".parse().unwrap()));
        assert!(!f.matches("127.0.7.2".parse().unwrap()));
        assert!(!f.matches("127.1.7.1".parse().unwrap()));
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(matches!(
            Site::parse("x.example*heavy"),
            Err(SiteError::Weight { .. })
        ));
        assert!(matches!(
            Site::parse("x.example=127.0.0"),
            Err(SiteError::Filter { .. })
        ));
        assert!(matches!(
            Site::parse("x.example=127.0.0.[4..2]"),
            Err(SiteError::Filter { .. })
        ));
        assert!(matches!(
            Site::parse("x.example=127.0.0.256"),
            Err(SiteError::Filter { .. })
        ));
        assert!(matches!(
            Site::parse("x.example=127.0.0.[1"),
            Err(SiteError::Filter { .. })
        ));
        assert!(matches!(
            Site::parse("bad..example"),
            Err(SiteError::Domain { .. })
        ));
        assert!(matches!(Site::parse("*2"), Err(SiteError::Domain { .. })));
    }

    #[test]
    fn query_names_reverse_the_address() {
        assert_eq!(
            query_name("127.0.0.2".parse().unwrap(), "zen.example"),
            "2.0.0.127.zen.example"
        );
        let v6 = query_name("2001:db8::1".parse().unwrap(), "x.example");
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.x.example"), "{v6}");
    }

    #[test]
    fn weights_add_up_and_filters_select() {
        let sites = parse_sites([
            "zen.example*3",
            "list.example=127.0.0.[2..4]*2",
            "list.example=127.0.0.10",
            "wl.example*-5",
        ])
        .unwrap();
        assert_eq!(
            domains(&sites),
            ["zen.example", "list.example", "wl.example"]
        );
        let s = score(
            &sites,
            &[
                reply("zen.example", &["127.0.0.2"]),
                reply("list.example", &["127.0.0.3"]),
            ],
        );
        assert_eq!((s.rank, s.listed_by.as_deref()), (5, Some("zen.example")));
        // A reply outside every filter of its domain adds nothing.
        let s = score(&sites, &[reply("list.example", &["127.0.0.9"])]);
        assert_eq!((s.rank, s.listed_by), (0, None));
        // Two entries of one domain can both count.
        let s = score(
            &sites,
            &[reply("list.example", &["127.0.0.2", "127.0.0.10"])],
        );
        assert_eq!((s.rank, s.listed_by.as_deref()), (3, Some("list.example")));
        // An allowlist pulls the rank below zero.
        let s = score(
            &sites,
            &[
                reply("wl.example", &["127.0.0.2"]),
                reply("list.example", &["127.0.0.4"]),
            ],
        );
        assert_eq!(s.rank, -3);
        // Nothing listed: rank 0.
        let s = score(
            &sites,
            &[reply("zen.example", &[]), reply("wl.example", &[])],
        );
        assert_eq!(
            s,
            Score {
                rank: 0,
                listed_by: None,
                ttl: Some(300)
            }
        );
    }

    #[test]
    fn the_ttl_comes_from_the_deciding_answers() {
        let sites = parse_sites(["a.example", "b.example"]).unwrap();
        let mut listed = reply("a.example", &["127.0.0.2"]);
        listed.ttl = Some(900);
        let mut clean = reply("b.example", &[]);
        clean.ttl = Some(60);
        let s = score(&sites, &[listed.clone(), clean.clone()]);
        assert_eq!((s.rank, s.ttl), (1, Some(900)));
        listed.addrs.clear();
        let s = score(&sites, &[listed, clean]);
        assert_eq!((s.rank, s.ttl), (0, Some(60)));
    }
}
