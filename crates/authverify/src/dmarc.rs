//! DMARC (RFC 7489) as OpenDMARC evaluates it: the policy record of the From:
//! domain, else of its organisational domain from the public suffix list (psl.rs);
//! `p=` when the record is the From: domain's own, `sp=` when it is the
//! organisational domain's; SPF aligned when it passed for the MAIL FROM domain (the
//! HELO name for the null sender) and DKIM aligned when a passing signature's `d=`
//! is, both strictly (the same name) or relaxed (the same organisational domain) as
//! `aspf=`/`adkim=` say.
//!
//! The record lookup is mail-auth's (its parser, our resolver); the rest is here
//! because mail-auth 0.13 follows RFC 9989's DNS tree walk instead of the list.
//!
//! `pct=` (RFC 7489 6.6.4): a failure is treated by the published policy for that
//! share of messages, drawn at random, and by the next policy down (reject ->
//! quarantine -> none) for the others; RFC 9989's `t=y` (test mode) is the next
//! policy down for all. mail-auth 0.13 parses records as RFC 9989 does, which
//! dropped `pct=`, so the tag is read from the TXT record here (the resolver's
//! cache answers that second query).

use crate::psl::SuffixList;
use mail_auth::common::cache::NoCache;
use mail_auth::dmarc::{Alignment, Dmarc, Policy as RecordPolicy};
use mail_auth::{DnsError, Error, MessageAuthenticator, SpfResult, Txt};
use std::sync::Arc;

/// The DMARC result (RFC 8601 2.7.1 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcStatus {
    Pass,
    Fail,
    /// No policy record, or no single From: domain.
    None,
    /// A DNS failure: neither pass nor fail could be told (never a rejection).
    TempError,
}

impl DmarcStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcStatus::Pass => "pass",
            DmarcStatus::Fail => "fail",
            DmarcStatus::None => "none",
            DmarcStatus::TempError => "temperror",
        }
    }
}

/// The policy the domain owner asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    /// The next policy down, for the messages `pct=` leaves out.
    pub fn lower(self) -> Policy {
        match self {
            Policy::Reject => Policy::Quarantine,
            Policy::Quarantine | Policy::None => Policy::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }
}

/// What DMARC found for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcOutcome {
    pub status: DmarcStatus,
    /// The RFC5322.From domain (header.from).
    pub from_domain: String,
    /// Its organisational domain.
    pub org_domain: String,
    /// The policy that applies (p= or sp=); None when no record was found.
    pub policy: Option<Policy>,
    /// What a failure of this message is treated by: `policy`, or one step lower
    /// when `pct=` left this message out or the record is in test mode (`t=y`).
    pub enforce: Option<Policy>,
}

/// The identifiers DMARC aligns and what SPF and DKIM said about them.
pub struct Identifiers<'a> {
    /// The domain SPF checked (MAIL FROM domain, or the HELO name for `<>`).
    pub spf_domain: &'a str,
    pub spf: SpfResult,
    /// `d=` of each signature that verified.
    pub dkim_pass: Vec<String>,
    /// A signature could not be checked for a DNS failure.
    pub dkim_temperror: bool,
}

/// A policy record lookup.
enum Lookup {
    Found(Arc<Dmarc>),
    NotFound,
    TempError,
}

async fn lookup(auth: &MessageAuthenticator, domain: &str) -> Lookup {
    match auth
        .txt_lookup::<Dmarc>(record_name(domain), None::<&NoCache<Box<str>, Txt>>)
        .await
    {
        Ok(record) => Lookup::Found(record),
        Err(Error::Dns(DnsError::Resolver(_))) => Lookup::TempError,
        // NXDOMAIN, no TXT, no v=DMARC1 record, a record that does not parse: no policy.
        Err(_) => Lookup::NotFound,
    }
}

fn record_name(domain: &str) -> String {
    format!("_dmarc.{domain}.")
}

/// `pct=` of the DMARC record published for `domain`: 100 when it has none, and when
/// the record cannot be read again (the policy then applies in full, as without the tag).
async fn pct(auth: &MessageAuthenticator, domain: &str) -> u8 {
    use mail_auth::hickory_resolver::proto::rr::{Name, RData};
    let Ok(name) = Name::from_str_relaxed::<&str>(&record_name(domain)) else {
        return 100;
    };
    let Ok(answer) = auth.0.txt_lookup(name).await else {
        return 100;
    };
    for record in answer.answers() {
        if let RData::TXT(txt) = &record.data {
            let text: Vec<u8> = txt
                .txt_data
                .iter()
                .flat_map(|d| d.iter().copied())
                .collect();
            if let Some(p) = pct_tag(&text) {
                return p;
            }
        }
    }
    100
}

/// For a DMARC record (`v=DMARC1` first), its `pct=` (100 when absent or not a
/// number from 0 to 100, which RFC 7489 6.3 says to ignore); None for other records.
fn pct_tag(text: &[u8]) -> Option<u8> {
    let text = String::from_utf8_lossy(text);
    let mut tags = text.split(';').map(|t| t.trim());
    let version = tags.next()?.split_once('=')?;
    if !(version.0.trim() == "v" && version.1.trim().eq_ignore_ascii_case("DMARC1")) {
        return None;
    }
    let value = tags
        .filter_map(|t| t.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("pct"))
        .and_then(|(_, v)| v.trim().parse::<u8>().ok())
        .filter(|p| *p <= 100);
    Some(value.unwrap_or(100))
}

/// What a failure is treated by: `policy` when `sample` (0..100) falls within
/// `pct`, else (and always in test mode) the next policy down.
fn enforced(policy: Policy, pct: u8, testing: bool, sample: u8) -> Policy {
    if testing || sample >= pct {
        policy.lower()
    } else {
        policy
    }
}

/// A draw from 0 to 99 for `pct=`. RandomState's keys come from the OS and each new
/// one differs: unpredictable enough to sample mail by, which needs no secrecy.
fn sample() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let draw = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (draw % 100) as u8
}

/// DMARC for a message whose From: domain is `from_domain`.
pub async fn check(
    auth: &MessageAuthenticator,
    psl: &SuffixList,
    from_domain: &str,
    ids: &Identifiers<'_>,
) -> DmarcOutcome {
    let from_domain = from_domain.trim_end_matches('.').to_ascii_lowercase();
    let org_domain = psl.organizational(&from_domain);
    let mut outcome = DmarcOutcome {
        status: DmarcStatus::None,
        from_domain,
        org_domain,
        policy: None,
        enforce: None,
    };
    let (record, own) = match lookup(auth, &outcome.from_domain).await {
        Lookup::Found(r) => (r, true),
        Lookup::TempError => {
            outcome.status = DmarcStatus::TempError;
            return outcome;
        }
        Lookup::NotFound if outcome.org_domain == outcome.from_domain => return outcome,
        Lookup::NotFound => match lookup(auth, &outcome.org_domain).await {
            Lookup::Found(r) => (r, false),
            Lookup::TempError => {
                outcome.status = DmarcStatus::TempError;
                return outcome;
            }
            Lookup::NotFound => return outcome,
        },
    };
    let (policy, status) = evaluate(&record, own, &outcome, ids, psl);
    outcome.policy = Some(policy);
    outcome.status = status;
    outcome.enforce = Some(policy);
    if status == DmarcStatus::Fail && policy != Policy::None {
        let publisher = if own {
            &outcome.from_domain
        } else {
            &outcome.org_domain
        };
        let pct = pct(auth, publisher).await;
        outcome.enforce = Some(enforced(policy, pct, record.t, sample()));
    }
    outcome
}

/// The policy that applies and the result, given the record.
fn evaluate(
    record: &Dmarc,
    own: bool,
    outcome: &DmarcOutcome,
    ids: &Identifiers<'_>,
    psl: &SuffixList,
) -> (Policy, DmarcStatus) {
    let requested = if own { record.p } else { record.sp };
    let policy = match requested {
        RecordPolicy::Reject => Policy::Reject,
        RecordPolicy::Quarantine => Policy::Quarantine,
        RecordPolicy::None | RecordPolicy::Unspecified => Policy::None,
    };
    let aligned = |domain: &str, mode: Alignment| {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        domain == outcome.from_domain
            || (mode == Alignment::Relaxed && psl.organizational(&domain) == outcome.org_domain)
    };
    let spf_aligned = ids.spf == SpfResult::Pass && aligned(ids.spf_domain, record.aspf);
    let dkim_aligned = ids.dkim_pass.iter().any(|d| aligned(d, record.adkim));
    let status = if spf_aligned || dkim_aligned {
        DmarcStatus::Pass
    } else if ids.spf == SpfResult::TempError || ids.dkim_temperror {
        // A check that could not be made might have passed.
        DmarcStatus::TempError
    } else {
        DmarcStatus::Fail
    };
    (policy, status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_auth::common::parse::TxtRecordParser;

    fn psl() -> SuffixList {
        SuffixList::parse(crate::psl::tests::LIST).unwrap()
    }

    fn outcome(from: &str) -> DmarcOutcome {
        DmarcOutcome {
            status: DmarcStatus::None,
            from_domain: from.into(),
            org_domain: psl().organizational(from),
            policy: None,
            enforce: None,
        }
    }

    fn ids<'a>(spf_domain: &'a str, spf: SpfResult, dkim: &[&str]) -> Identifiers<'a> {
        Identifiers {
            spf_domain,
            spf,
            dkim_pass: dkim.iter().map(|d| d.to_string()).collect(),
            dkim_temperror: false,
        }
    }

    fn record(text: &str) -> Dmarc {
        Dmarc::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn relaxed_and_strict_alignment() {
        let psl = psl();
        let relaxed = record("v=DMARC1; p=reject");
        let strict = record("v=DMARC1; p=reject; aspf=s; adkim=s");
        let o = outcome("example.co.uk");
        let sub = ids("bounces.example.co.uk", SpfResult::Pass, &[]);
        assert_eq!(
            evaluate(&relaxed, true, &o, &sub, &psl),
            (Policy::Reject, DmarcStatus::Pass)
        );
        assert_eq!(evaluate(&strict, true, &o, &sub, &psl).1, DmarcStatus::Fail);
        // Another registrable domain under the same public suffix is not aligned.
        let other = ids("other.co.uk", SpfResult::Pass, &["other.co.uk"]);
        assert_eq!(
            evaluate(&relaxed, true, &o, &other, &psl).1,
            DmarcStatus::Fail
        );
        let dkim = ids("other.co.uk", SpfResult::Fail, &["mail.example.co.uk"]);
        assert_eq!(
            evaluate(&relaxed, true, &o, &dkim, &psl).1,
            DmarcStatus::Pass
        );
        assert_eq!(
            evaluate(&strict, true, &o, &dkim, &psl).1,
            DmarcStatus::Fail
        );
        // SPF must have passed to count.
        let soft = ids("example.co.uk", SpfResult::SoftFail, &[]);
        assert_eq!(
            evaluate(&relaxed, true, &o, &soft, &psl).1,
            DmarcStatus::Fail
        );
    }

    #[test]
    fn subdomain_policy_and_temperror() {
        let psl = psl();
        let r = record("v=DMARC1; p=reject; sp=quarantine");
        let o = outcome("news.example.com");
        let none = ids("x.org", SpfResult::Fail, &[]);
        assert_eq!(
            evaluate(&r, false, &o, &none, &psl),
            (Policy::Quarantine, DmarcStatus::Fail)
        );
        assert_eq!(evaluate(&r, true, &o, &none, &psl).0, Policy::Reject);
        let temp = ids("example.com", SpfResult::TempError, &[]);
        assert_eq!(
            evaluate(&r, true, &o, &temp, &psl).1,
            DmarcStatus::TempError
        );
    }

    #[test]
    fn pct_tag_of_dmarc_records_only() {
        assert_eq!(pct_tag(b"v=DMARC1; p=reject; pct=25"), Some(25));
        assert_eq!(
            pct_tag(b"v=DMARC1;p=quarantine;PCT = 0;rua=mailto:a@b"),
            Some(0)
        );
        assert_eq!(pct_tag(b"v=DMARC1; p=reject"), Some(100));
        // Out of range or not a number: ignored (RFC 7489 6.3).
        assert_eq!(pct_tag(b"v=DMARC1; p=reject; pct=150"), Some(100));
        assert_eq!(pct_tag(b"v=DMARC1; p=reject; pct=x"), Some(100));
        assert_eq!(pct_tag(b"google-site-verification=abc; pct=5"), None);
    }

    #[test]
    fn pct_and_test_mode_lower_the_policy_for_the_rest() {
        assert_eq!(enforced(Policy::Reject, 100, false, 99), Policy::Reject);
        assert_eq!(enforced(Policy::Reject, 25, false, 24), Policy::Reject);
        assert_eq!(enforced(Policy::Reject, 25, false, 25), Policy::Quarantine);
        assert_eq!(enforced(Policy::Reject, 0, false, 0), Policy::Quarantine);
        assert_eq!(enforced(Policy::Quarantine, 0, false, 0), Policy::None);
        assert_eq!(enforced(Policy::Reject, 100, true, 0), Policy::Quarantine);
        assert!((0..1000).all(|_| sample() < 100));
        // Not one fixed value.
        let draws: std::collections::HashSet<u8> = (0..50).map(|_| sample()).collect();
        assert!(draws.len() > 5, "{draws:?}");
    }
}
