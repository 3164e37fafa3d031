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
    let name = format!("_dmarc.{domain}.");
    match auth
        .txt_lookup::<Dmarc>(name, None::<&NoCache<Box<str>, Txt>>)
        .await
    {
        Ok(record) => Lookup::Found(record),
        Err(Error::Dns(DnsError::Resolver(_))) => Lookup::TempError,
        // NXDOMAIN, no TXT, no v=DMARC1 record, a record that does not parse: no policy.
        Err(_) => Lookup::NotFound,
    }
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
}
