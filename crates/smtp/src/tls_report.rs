//! What the smtp client tells SMTP TLS reporting (RFC 8460, crates/tlsrpt): for a
//! next hop whose domain has a TLS policy (an MTA-STS policy in force for this host,
//! or usable DANE TLSA records), the outcome of each session's TLS as an RFC 8460
//! result type, appended to the report period's spool file. Sessions that never got
//! as far as TLS (connection refused, a greeting refusal) say nothing about TLS and
//! are not recorded.

use crate::dane::Tlsa;
use crate::session::SiteFailure;
use crate::tls::{TlsInfo, Trust};
use rostfix_mtasts::policy::Policy;
use rostfix_tlsrpt::event::{self, Event};
use std::net::IpAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The policy a session ran under, as the report names it.
#[derive(Debug, Clone)]
pub struct PolicyFacts {
    kind: &'static str,
    strings: Vec<String>,
    mx: Vec<String>,
}

impl PolicyFacts {
    /// DANE wins when it has records; else the MTA-STS policy, when one applied.
    pub fn of(sts: Option<&Policy>, tlsa: Option<&[Tlsa]>) -> Option<PolicyFacts> {
        if let Some(records) = tlsa {
            let strings = records
                .iter()
                .map(|t| {
                    let hex: String = t.data.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{} {} {} {hex}", t.usage, t.selector, t.mtype)
                })
                .collect();
            return Some(PolicyFacts {
                kind: "tlsa",
                strings,
                mx: Vec::new(),
            });
        }
        let p = sts?;
        let mut strings = vec![
            "version: STSv1".to_string(),
            format!("mode: {}", p.mode.name()),
        ];
        strings.extend(p.mx.iter().map(|m| format!("mx: {m}")));
        strings.push(format!("max_age: {}", p.max_age));
        Some(PolicyFacts {
            kind: "sts",
            strings,
            mx: p.mx.clone(),
        })
    }

    fn dane(&self) -> bool {
        self.kind == "tlsa"
    }
}

/// The result type of a session that got through STARTTLS.
pub fn of_session(facts: &PolicyFacts, tls: Option<&TlsInfo>) -> &'static str {
    match tls.map(|t| t.trust) {
        None => "starttls-not-supported",
        Some(Trust::Verified) => "success",
        Some(Trust::Trusted) => "certificate-host-mismatch",
        Some(Trust::Untrusted) if facts.dane() => "validation-failure",
        Some(Trust::Untrusted) => "certificate-not-trusted",
    }
}

/// The result type of a session that failed; None when it failed before TLS had a say.
pub fn of_failure(facts: &PolicyFacts, f: &SiteFailure) -> Option<&'static str> {
    let text = f.text.as_str();
    Some(
        if text.contains("was not offered") || text.contains("STARTTLS") {
            "starttls-not-supported"
        } else if text.contains("not verified") {
            "certificate-host-mismatch"
        } else if text.contains("not trusted") {
            if facts.dane() {
                "validation-failure"
            } else {
                "certificate-not-trusted"
            }
        } else if text.contains("TLS") {
            "validation-failure"
        } else {
            return None;
        },
    )
}

/// Appends one outcome to the current period's spool file (warns, never fails a
/// delivery).
pub fn record(
    period: u64,
    domain: &str,
    facts: &PolicyFacts,
    result: &str,
    (host, ip): (&str, Option<IpAddr>),
    reason: &str,
) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let e = Event {
        domain: domain.to_ascii_lowercase(),
        policy_type: facts.kind.to_string(),
        policy_string: facts.strings.clone(),
        mx_host: facts.mx.clone(),
        result: result.to_string(),
        sending_mta_ip: String::new(),
        receiving_mx_hostname: host.to_string(),
        receiving_ip: ip.map(|i| i.to_string()).unwrap_or_default(),
        reason: if result == "success" {
            String::new()
        } else {
            reason.to_string()
        },
    };
    if let Err(err) = event::append(Path::new("."), e, now, period) {
        log::warn!(
            "cannot record a TLS report event in {}: {err}",
            event::SPOOL
        );
    }
}
