//! One domain's events of one period turned into the RFC 8460 section 4 JSON report:
//! a policy entry per distinct (policy type, policy string, MX patterns) with the
//! session counts, and failure details grouped by result type, sending address, MX
//! host, receiving address and reason, each with its failed-session-count.

use crate::event::Event;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Who the report is from (rostfix_tlsrpt_* parameters).
#[derive(Debug, Clone)]
pub struct Reporter {
    pub organization: String,
    pub contact: String,
    /// Host name used in the report id and file name (myhostname).
    pub submitter: String,
}

/// The RFC 3339 form of a Unix time, UTC, second precision.
pub fn rfc3339(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The report id: unique per submitter, domain and period.
pub fn report_id(reporter: &Reporter, domain: &str, start: u64) -> String {
    format!("{start}.{domain}@{}", reporter.submitter)
}

/// The JSON report for `domain` from its `events` in [start, end).
pub fn build(reporter: &Reporter, domain: &str, start: u64, end: u64, events: &[Event]) -> Value {
    type PolicyKey = (String, Vec<String>, Vec<String>);
    type FailureKey = (String, String, String, String, String);
    let mut policies: BTreeMap<PolicyKey, (u64, u64, BTreeMap<FailureKey, u64>)> = BTreeMap::new();
    for e in events.iter().filter(|e| e.domain == domain) {
        let key = (
            e.policy_type.clone(),
            e.policy_string.clone(),
            e.mx_host.clone(),
        );
        let entry = policies.entry(key).or_default();
        if e.is_success() {
            entry.0 += 1;
        } else {
            entry.1 += 1;
            *entry
                .2
                .entry((
                    e.result.clone(),
                    e.sending_mta_ip.clone(),
                    e.receiving_mx_hostname.clone(),
                    e.receiving_ip.clone(),
                    e.reason.clone(),
                ))
                .or_default() += 1;
        }
    }
    let policies: Vec<Value> = policies
        .into_iter()
        .map(|((kind, strings, mx), (ok, failed, details))| {
            let mut policy = json!({
                "policy-type": kind,
                "policy-string": strings,
                "policy-domain": domain,
            });
            if !mx.is_empty() {
                policy["mx-host"] = json!(mx);
            }
            let details: Vec<Value> = details
                .into_iter()
                .map(|((result, sending, mx_name, receiving, reason), n)| {
                    let mut d = json!({ "result-type": result, "failed-session-count": n });
                    for (name, value) in [
                        ("sending-mta-ip", sending),
                        ("receiving-mx-hostname", mx_name),
                        ("receiving-ip", receiving),
                        ("failure-reason-code", reason),
                    ] {
                        if !value.is_empty() {
                            d[name] = json!(value);
                        }
                    }
                    d
                })
                .collect();
            let mut entry = json!({
                "policy": policy,
                "summary": {
                    "total-successful-session-count": ok,
                    "total-failure-session-count": failed,
                },
            });
            if !details.is_empty() {
                entry["failure-details"] = json!(details);
            }
            entry
        })
        .collect();
    json!({
        "organization-name": reporter.organization,
        "date-range": {
            "start-datetime": rfc3339(start),
            "end-datetime": rfc3339(end),
        },
        "contact-info": reporter.contact,
        "report-id": report_id(reporter, domain, start),
        "policies": policies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_459_468_800), "2016-04-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_342_399), "2026-12-03T23:59:59Z");
    }

    #[test]
    fn counts_and_details() {
        let e = |result: &str, ip: &str| Event {
            domain: "d.test".into(),
            policy_type: "sts".into(),
            policy_string: vec!["version: STSv1".into()],
            mx_host: vec!["mx.d.test".into()],
            result: result.into(),
            sending_mta_ip: "192.0.2.1".into(),
            receiving_mx_hostname: "mx.d.test".into(),
            receiving_ip: ip.into(),
            reason: String::new(),
        };
        let events = [
            e("success", "192.0.2.9"),
            e("certificate-host-mismatch", "192.0.2.9"),
            e("certificate-host-mismatch", "192.0.2.9"),
            e("starttls-not-supported", "192.0.2.8"),
        ];
        let r = Reporter {
            organization: "Org".into(),
            contact: "postmaster@s.test".into(),
            submitter: "mx.s.test".into(),
        };
        let v = build(&r, "d.test", 0, 86_400, &events);
        let p = &v["policies"][0];
        assert_eq!(p["summary"]["total-successful-session-count"], 1);
        assert_eq!(p["summary"]["total-failure-session-count"], 3);
        assert_eq!(p["failure-details"].as_array().unwrap().len(), 2);
        assert_eq!(p["failure-details"][0]["failed-session-count"], 2);
        assert_eq!(v["date-range"]["end-datetime"], "1970-01-02T00:00:00Z");
        assert_eq!(v["report-id"], "0.d.test@mx.s.test");
    }
}
