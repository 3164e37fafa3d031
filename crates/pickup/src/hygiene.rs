//! Bulk-mail hygiene in pickup: campaign mail submitted locally (sendmail, rostdrop)
//! or through the bus intake (whose messages reach the queue through maildrop/) is
//! held to rostfix_bulk_hygiene_checks, as smtpd holds submitted SMTP mail
//! (crates/hygiene says what each check asks). A message is campaign mail when it
//! carries a `campaign_id` attribute (the bus's) or list headers.
//!
//! rostfix_bulk_hygiene_action = warn logs each failure; reject returns the message to
//! its sender with 5.7.1, as a content-inspection REJECT of local mail is returned
//! (there is no client to refuse).

use rostfix_hygiene::{Action, Lookups, Policy, TxtAnswer};
use rostfix_queue::Envelope;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Each try of a DMARC lookup (the resolver tries twice).
const DNS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a DMARC answer is reused. A campaign is thousands of messages from one
/// From: domain and pickup handles them one at a time: without this, every message
/// would wait for the same query (and for its timeout when DNS is down).
const ANSWER_TTL: Duration = Duration::from_secs(300);
/// A failed lookup is retried sooner.
const TEMPFAIL_TTL: Duration = Duration::from_secs(60);
/// Names remembered at most; the map is emptied when it grows past this.
const CACHE_MAX: usize = 10_000;

/// The policy and the DNS resolver for its DMARC lookups, built before the chroot (the
/// resolver reads resolv.conf, or uses rostfix_dns_servers).
pub struct Hygiene {
    policy: Policy,
    /// None when it could not be set up: the DMARC check then cannot decide, which
    /// never refuses mail.
    dns: Option<rostfix_dns::Resolver>,
    /// TXT answers by name, with when they were got.
    cache: Mutex<HashMap<String, (Instant, TxtAnswer)>>,
}

/// Why the hygiene settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum HygieneSetupError {
    #[error("{0}")]
    Policy(#[from] rostfix_hygiene::HygieneError),
}

impl Hygiene {
    /// From main.cf; None when rostfix_bulk_hygiene_checks is empty.
    pub fn from_config(cf: &rostfix_config::MainCf) -> Result<Option<Hygiene>, HygieneSetupError> {
        let policy = Policy::parse(
            &cf.get("rostfix_bulk_hygiene_checks"),
            &cf.get("rostfix_bulk_hygiene_action"),
        )?;
        if policy.is_off() {
            return Ok(None);
        }
        let dns = if policy.checks.contains(&rostfix_hygiene::Check::Dmarc) {
            match rostfix_dns::Resolver::new(&cf.get_list("rostfix_dns_servers"), DNS_TIMEOUT) {
                Ok(r) => Some(r),
                Err(e) => {
                    log::warn!(
                        "rostfix_bulk_hygiene_checks: dmarc: cannot set up DNS: {e}; not checked"
                    );
                    None
                }
            }
        } else {
            None
        };
        Ok(Some(Hygiene {
            policy,
            dns,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// Checks one message (`head`: its header block as it will be queued, after
    /// signing; `signed`: pickup added a DKIM signature). Logs warnings itself; returns the refusal
    /// (`5.7.1 text`, the inspection outcome's form) under action reject.
    pub fn check(
        &self,
        id: &str,
        envelope: &Envelope,
        head: &[u8],
        signed: bool,
    ) -> Option<String> {
        let fields = rostfix_hygiene::header_fields(head);
        let campaign = envelope.attr(rostfix_queue::CAMPAIGN_ID_ATTR);
        if !rostfix_hygiene::is_campaign(campaign, &fields) {
            return None;
        }
        let lookups = PickupLookups {
            signed,
            dns: self.dns.as_ref(),
            cache: &self.cache,
        };
        let findings = rostfix_hygiene::check(&self.policy, &fields, &lookups);
        let first = findings.first()?;
        match self.policy.action {
            Action::Warn => {
                for f in &findings {
                    log::warn!("{}", f.warning(id, &envelope.sender));
                }
                None
            }
            Action::Reject => Some(format!("5.7.1 bulk mail hygiene: {}", first.text)),
        }
    }
}

impl std::fmt::Debug for Hygiene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hygiene")
            .field("policy", &self.policy)
            .field("dns", &self.dns.is_some())
            .finish()
    }
}

struct PickupLookups<'a> {
    signed: bool,
    dns: Option<&'a rostfix_dns::Resolver>,
    cache: &'a Mutex<HashMap<String, (Instant, TxtAnswer)>>,
}

impl PickupLookups<'_> {
    fn query(&self, name: &str) -> TxtAnswer {
        match self.dns.map(|d| d.txt(name)) {
            Some(Ok(records)) if !records.is_empty() => TxtAnswer::Records(records),
            Some(Ok(_)) | Some(Err(rostfix_dns::TxtError::None)) => TxtAnswer::None,
            Some(Err(rostfix_dns::TxtError::Failed(_))) | None => TxtAnswer::TempFail,
        }
    }
}

impl Lookups for PickupLookups<'_> {
    fn will_sign(&self, _from_address: &str) -> bool {
        // The signer picked its key by this message's From: address.
        self.signed
    }

    fn txt(&self, name: &str) -> TxtAnswer {
        cached(self.cache, name, Instant::now(), |key| self.query(key))
    }
}

/// The answer for `name` from `cache` while it is fresh, else from `query` (and kept).
fn cached(
    cache: &Mutex<HashMap<String, (Instant, TxtAnswer)>>,
    name: &str,
    now: Instant,
    query: impl FnOnce(&str) -> TxtAnswer,
) -> TxtAnswer {
    let key = name.to_ascii_lowercase();
    if let Ok(cache) = cache.lock() {
        if let Some((at, answer)) = cache.get(&key) {
            let ttl = if *answer == TxtAnswer::TempFail {
                TEMPFAIL_TTL
            } else {
                ANSWER_TTL
            };
            if now.saturating_duration_since(*at) < ttl {
                return answer.clone();
            }
        }
    }
    let answer = query(&key);
    if let Ok(mut cache) = cache.lock() {
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(key, (now, answer.clone()));
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn answers_are_reused_until_they_expire() {
        let cache = Mutex::new(HashMap::new());
        let asked = Cell::new(0);
        let query = |_: &str| {
            asked.set(asked.get() + 1);
            TxtAnswer::Records(vec!["v=DMARC1; p=none".into()])
        };
        let t0 = Instant::now();
        let first = cached(&cache, "_dmarc.Example.org", t0, query);
        assert_eq!(first, TxtAnswer::Records(vec!["v=DMARC1; p=none".into()]));
        // Case does not make a second entry.
        cached(
            &cache,
            "_dmarc.example.org",
            t0 + Duration::from_secs(299),
            query,
        );
        assert_eq!(asked.get(), 1);
        cached(&cache, "_dmarc.example.org", t0 + ANSWER_TTL, query);
        assert_eq!(asked.get(), 2);
    }

    #[test]
    fn a_failed_lookup_is_retried_sooner() {
        let cache = Mutex::new(HashMap::new());
        let asked = Cell::new(0);
        let query = |_: &str| {
            asked.set(asked.get() + 1);
            TxtAnswer::TempFail
        };
        let t0 = Instant::now();
        cached(&cache, "_dmarc.example.org", t0, query);
        cached(
            &cache,
            "_dmarc.example.org",
            t0 + Duration::from_secs(59),
            query,
        );
        assert_eq!(asked.get(), 1);
        cached(&cache, "_dmarc.example.org", t0 + TEMPFAIL_TTL, query);
        assert_eq!(asked.get(), 2);
    }
}
