//! Good-sender hygiene for bulk mail, checked where campaign mail enters (the bus
//! intake, pickup, smtpd): since 2024 the large mailbox providers refuse or spam-folder
//! bulk mail that is not DKIM-signed, has no RFC 8058 one-click unsubscription, or
//! comes from a domain without DMARC. Catching that at intake turns a silent drop in
//! a provider's spam folder into a warning (or a refusal) the sender sees at once.
//!
//! Only campaign mail is checked ([`is_campaign`]): a message with a campaign id (bus
//! attribute `campaign_id`), `Precedence: bulk` or `list`, a `List-Id:` or a
//! `List-Unsubscribe:` header. Person-to-person mail is never held to list rules.
//!
//! The checks (main.cf `rostfix_bulk_hygiene_checks`, any of):
//! - `dkim`: the message will carry a DKIM signature of its From: domain: a
//!   `DKIM-Signature:` with `d=` that domain (or a parent of it) is present, or the
//!   caller's native signer holds a key for the From: address;
//! - `one_click_unsubscribe`: `List-Unsubscribe:` holds an `https:` URI in angle
//!   brackets and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` is present
//!   (RFC 8058 3.1);
//! - `dmarc`: the From: domain has a DMARC record at `_dmarc.` itself or a parent
//!   (DMARCbis' tree walk, so no public suffix list is needed), found through the
//!   caller's TXT lookup.
//!
//! `rostfix_bulk_hygiene_action` says what a failure does: `warn` logs it, `reject`
//! refuses the message (the caller's way: a 550 5.7.1 from smtpd, a bounce from
//! pickup, a refused bus message). A DNS failure is never a reason to refuse.

#![forbid(unsafe_code)]

pub use rostfix_dkim::{from_address, header_block, header_fields};

/// The domain of an address (after its last `@`), lowercased; None without one.
pub fn from_domain(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}

/// One hygiene check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Dkim,
    OneClickUnsubscribe,
    Dmarc,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Dkim => "dkim",
            Check::OneClickUnsubscribe => "one_click_unsubscribe",
            Check::Dmarc => "dmarc",
        }
    }
}

/// What a failed check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Warn,
    Reject,
}

/// A configuration value Rostfix cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HygieneError {
    #[error("rostfix_bulk_hygiene_checks: unknown check {0:?} (expected dkim, one_click_unsubscribe, dmarc)")]
    UnknownCheck(String),
    #[error("rostfix_bulk_hygiene_action: {0:?} (expected warn or reject)")]
    UnknownAction(String),
}

/// The checks to run and what a failure does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub checks: Vec<Check>,
    pub action: Action,
}

impl Policy {
    /// From `rostfix_bulk_hygiene_checks` (a list) and `rostfix_bulk_hygiene_action`.
    pub fn parse(checks: &str, action: &str) -> Result<Policy, HygieneError> {
        let mut out = Vec::new();
        for word in checks
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            let check = match word.to_ascii_lowercase().as_str() {
                "dkim" => Check::Dkim,
                "one_click_unsubscribe" => Check::OneClickUnsubscribe,
                "dmarc" => Check::Dmarc,
                _ => return Err(HygieneError::UnknownCheck(word.to_string())),
            };
            if !out.contains(&check) {
                out.push(check);
            }
        }
        let action = match action.trim().to_ascii_lowercase().as_str() {
            "warn" => Action::Warn,
            "reject" => Action::Reject,
            other => return Err(HygieneError::UnknownAction(other.to_string())),
        };
        Ok(Policy {
            checks: out,
            action,
        })
    }

    pub fn is_off(&self) -> bool {
        self.checks.is_empty()
    }
}

/// A failed check and why, for the log line and the refusal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: Check,
    pub text: String,
}

impl Finding {
    /// The warning logged under action warn, the same from every intake:
    /// `ID: bulk mail hygiene: CHECK: WHY; from=<SENDER>`.
    pub fn warning(&self, id: &str, sender: &str) -> String {
        format!(
            "{id}: bulk mail hygiene: {}: {}; from=<{sender}>",
            self.check.name(),
            self.text
        )
    }
}

/// What the DMARC lookup of one name gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    Records(Vec<String>),
    /// No such name or no TXT records.
    None,
    /// Timeout or server failure: the check cannot decide.
    TempFail,
}

/// What the checks need from the caller.
pub trait Lookups {
    /// True when the caller's own DKIM signer will sign mail from this address.
    fn will_sign(&self, from_address: &str) -> bool;
    /// TXT records of `name`.
    fn txt(&self, name: &str) -> TxtAnswer;
}

/// True for campaign mail (see the module comment). `headers` are unfolded fields.
pub fn is_campaign(campaign_id: Option<&str>, headers: &[(String, String)]) -> bool {
    if campaign_id.is_some_and(|c| !c.is_empty()) {
        return true;
    }
    headers.iter().any(|(name, value)| {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "list-id" | "list-unsubscribe" => true,
            "precedence" => {
                let v = value.trim().to_ascii_lowercase();
                v == "bulk" || v == "list"
            }
            _ => false,
        }
    })
}

/// Runs the policy's checks on a campaign message; empty when all pass.
pub fn check(policy: &Policy, headers: &[(String, String)], lookups: &dyn Lookups) -> Vec<Finding> {
    let mut out = Vec::new();
    let from = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("from"))
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>();
    let from_addr = match from.as_slice() {
        [one] => from_address(one),
        _ => None,
    };
    let domain = from_addr.as_deref().and_then(from_domain);
    for check in &policy.checks {
        let failure = match check {
            Check::Dkim => dkim(headers, from_addr.as_deref(), domain, lookups),
            Check::OneClickUnsubscribe => one_click(headers),
            Check::Dmarc => dmarc(domain, lookups),
        };
        if let Some(text) = failure {
            out.push(Finding {
                check: *check,
                text,
            });
        }
    }
    out
}

fn dkim(
    headers: &[(String, String)],
    from_addr: Option<&str>,
    domain: Option<&str>,
    lookups: &dyn Lookups,
) -> Option<String> {
    let (Some(addr), Some(domain)) = (from_addr, domain) else {
        return Some("no single From: address to sign for".into());
    };
    if lookups.will_sign(addr) {
        return None;
    }
    let signed = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("dkim-signature"))
        .filter_map(|(_, v)| tag(v, "d"))
        .any(|d| aligned(domain, &d));
    if signed {
        None
    } else {
        Some(format!(
            "not DKIM-signed for {domain}: no DKIM-Signature with d={domain} and no signing key for {addr}"
        ))
    }
}

/// Relaxed alignment: the signing domain is the From: domain or a parent of it.
fn aligned(from_domain: &str, d: &str) -> bool {
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let f = from_domain.to_ascii_lowercase();
    !d.is_empty() && d.contains('.') && (f == d || f.ends_with(&format!(".{d}")))
}

/// The value of tag `name` in a `tag=value; ...` list.
fn tag(value: &str, name: &str) -> Option<String> {
    value.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.split_whitespace().collect())
    })
}

fn one_click(headers: &[(String, String)]) -> Option<String> {
    let get = |want: &str| {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(want))
            .map(|(_, v)| v.trim())
            .collect::<Vec<_>>()
    };
    let unsubscribe = get("list-unsubscribe");
    let [value] = unsubscribe.as_slice() else {
        return Some(match unsubscribe.len() {
            0 => "no List-Unsubscribe header".into(),
            _ => "more than one List-Unsubscribe header".into(),
        });
    };
    let https = value
        .split('<')
        .skip(1)
        .filter_map(|s| s.split('>').next())
        .any(|uri| {
            uri.trim()
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        });
    if !https {
        return Some("List-Unsubscribe has no <https:...> URI (RFC 8058 3.1)".into());
    }
    let post = get("list-unsubscribe-post");
    match post.as_slice() {
        [v] if v.eq_ignore_ascii_case("List-Unsubscribe=One-Click") => None,
        [] => Some("no List-Unsubscribe-Post: List-Unsubscribe=One-Click header".into()),
        _ => Some("List-Unsubscribe-Post is not exactly List-Unsubscribe=One-Click".into()),
    }
}

/// Most labels walked up from the From: domain (DMARCbis' tree walk stops at 8).
const MAX_WALK: usize = 8;

fn dmarc(domain: Option<&str>, lookups: &dyn Lookups) -> Option<String> {
    let Some(domain) = domain else {
        return Some("no single From: domain to look up DMARC for".into());
    };
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Some(format!("From: domain {domain} is not a public domain"));
    }
    // The domain itself, then its parents of at most MAX_WALK - 1 labels down to the
    // two-label one, as DMARCbis walks the tree.
    let n = labels.len();
    let parents = (1..=n - 2).filter(|i| n - i < MAX_WALK);
    for i in std::iter::once(0).chain(parents) {
        let name = format!("_dmarc.{}", labels[i..].join("."));
        match lookups.txt(&name) {
            TxtAnswer::Records(records) => {
                if records
                    .iter()
                    .any(|r| r.trim_start().to_ascii_lowercase().starts_with("v=dmarc1"))
                {
                    return None;
                }
            }
            TxtAnswer::None => {}
            // Not a reason to refuse or to warn: the answer is unknown.
            TxtAnswer::TempFail => return None,
        }
    }
    Some(format!("From: domain {domain} publishes no DMARC record"))
}

#[cfg(test)]
mod tests;
