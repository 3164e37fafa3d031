//! tlsrpt: sends the SMTP TLS reports (RFC 8460). master.cf `tlsrpt unix - - n - 1
//! tlsrpt`; it wakes every few minutes (and on a trigger), takes each spool file of
//! `tlsrpt/` whose report period (rostfix_tlsrpt_period, default one day) has ended,
//! builds one report per policy domain, looks up the domain's `_smtp._tls` TXT record
//! and queues the gzipped report as mail to its `mailto:` addresses (through maildrop
//! and pickup, like any local submission) and POSTs it to its `https:` ones, then
//! removes the spool file. Domains without a record get no report. It runs unchrooted as mail_owner (the resolver
//! configuration is read before confinement like the other services').

#![forbid(unsafe_code)]

use rostfix_mtasts::fetch::{Fetcher, HttpsUrl};
use rostfix_queue::{Envelope, QueueName, QueueWriter, Recipient};
use rostfix_service::manual::{Manual, RETIRING_EXIT_STATUS};
use rostfix_service::{Daemon, Service, Shape, StartError};
use rostfix_tlsrpt::report::Reporter;
use rostfix_tlsrpt::{event, message, report, rua};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const HELP: Manual = Manual {
    name: "tlsrpt - the Rostfix SMTP TLS reporting service",
    synopsis: "tlsrpt -n tlsrpt -t unix [-u] [-o name=value]...",
    description: "\
Sends SMTP TLS reports (RFC 8460). With rostfix_tlsrpt_enable = yes the smtp
client records the outcome of each TLS session with a domain that has an
MTA-STS or DANE policy in tlsrpt/ under the queue directory; once a report
period has ended this service builds each domain's JSON report, looks up the
domain's _smtp._tls TXT record, mails the gzipped report to its mailto:
addresses through the local queue and POSTs it (application/tlsrpt+gzip) to its
https: ones, the server's certificate checked against rostfix_tlsrpt_CAfile or
the system CA store; an upload that fails is logged and not retried (RFC 8460
5.3 leaves retries to the submitter). Not meant to be run by hand: master
starts it.",
    more_options: "\
Parameters used: rostfix_tlsrpt_enable, rostfix_tlsrpt_period,
rostfix_tlsrpt_organization, rostfix_tlsrpt_contact, rostfix_tlsrpt_sender,
rostfix_tlsrpt_CAfile, myhostname, rostfix_dns_servers.",
    exit_status: RETIRING_EXIT_STATUS,
    see_also: "smtp(8), master(8), docs/tls-reporting.md",
};

/// How often the spool is looked at without a trigger.
const SCAN: Duration = Duration::from_secs(60);
const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one https upload (connect, handshake, request, answer).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);

struct Ctx {
    reporter: Reporter,
    sender: String,
    period: u64,
    dns: rostfix_dns::Resolver,
    /// For https: destinations; None when the CA roots could not be loaded (logged).
    https: Option<Fetcher>,
}

fn main() {
    rostfix_service::run(Daemon {
        program: "tlsrpt",
        help: HELP,
        before_confine: |service: &mut Service| -> Result<Ctx, StartError> {
            let cf = &service.config;
            let dns = rostfix_dns::Resolver::new(&cf.get_list("rostfix_dns_servers"), DNS_TIMEOUT)
                .map_err(StartError::daemon)?;
            // The CA roots are read before confinement, as the mtasts service does.
            let ca = cf.get("rostfix_tlsrpt_CAfile");
            let ca = (!ca.trim().is_empty()).then(|| std::path::PathBuf::from(ca.trim()));
            let https = match Fetcher::new(ca.as_deref(), 443, UPLOAD_TIMEOUT) {
                Ok(f) => Some(f),
                Err(e) => {
                    log::warn!("https: report destinations cannot be served: {e}");
                    None
                }
            };
            Ok(Ctx {
                reporter: Reporter {
                    organization: cf.get("rostfix_tlsrpt_organization").trim().to_string(),
                    contact: cf.get("rostfix_tlsrpt_contact").trim().to_string(),
                    submitter: cf.get("myhostname").trim().to_string(),
                },
                sender: cf.get("rostfix_tlsrpt_sender").trim().to_string(),
                period: cf.get_time("rostfix_tlsrpt_period").as_secs().max(1),
                dns,
                https,
            })
        },
        after_confine: |_service: &mut Service, ctx: Ctx| {
            let every = SCAN.min(Duration::from_secs(ctx.period));
            Ok(Shape::Trigger {
                on_trigger: Box::new(move |_, _| run(&ctx)),
                every: Some(every),
            })
        },
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reports every ended period; a period whose reports could not all be queued stays
/// for the next run.
fn run(ctx: &Ctx) {
    let queue = Path::new(".");
    let files = match event::ended(queue, now(), ctx.period) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("cannot read {}: {e}", event::SPOOL);
            return;
        }
    };
    for (start, path) in files {
        let (events, bad) = match event::read(&path) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("cannot read {}: {e}", path.display());
                continue;
            }
        };
        if bad > 0 {
            log::warn!("{}: {bad} unreadable line(s) skipped", path.display());
        }
        let end = start + ctx.period;
        let mut domains: Vec<&str> = events.iter().map(|e| e.domain.as_str()).collect();
        domains.sort_unstable();
        domains.dedup();
        let mut all_sent = true;
        for domain in domains {
            all_sent &= send_report(ctx, domain, (start, end), &events);
        }
        if all_sent {
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// True when the report went to the queue or needs not go anywhere.
fn send_report(ctx: &Ctx, domain: &str, (start, end): (u64, u64), events: &[event::Event]) -> bool {
    let records = match txt(&ctx.dns, &format!("_smtp._tls.{domain}.")) {
        Ok(r) => r,
        Err(why) => {
            log::warn!("{domain}: TLSRPT record lookup failed: {why}; retrying later");
            return false;
        }
    };
    let Some(rua) = rua::parse(&records) else {
        log::info!("{domain}: no TLSRPT record, no report");
        return true;
    };
    let json = report::build(&ctx.reporter, domain, start, end, events).to_string();
    for uri in &rua.https {
        upload(ctx, domain, uri, &json);
    }
    if rua.mailto.is_empty() {
        return true;
    }
    let built = message::build(
        &ctx.reporter,
        &ctx.sender,
        &rua.mailto,
        domain,
        (start, end),
        &json,
        &rfc2822_now(),
    );
    let queued = built.map_err(|e| e.to_string()).and_then(|content| {
        let envelope = Envelope {
            sender: ctx.sender.clone(),
            arrival_us: (now() as i64) * 1_000_000,
            attrs: vec![("rewrite_context".into(), "local".into())],
            recipients: rua
                .mailto
                .iter()
                .map(|r| Recipient {
                    address: r.clone(),
                    orig_address: r.clone(),
                    ..Recipient::default()
                })
                .collect(),
        };
        let mut writer = QueueWriter::create(Path::new("."), QueueName::Maildrop, &envelope)
            .map_err(|e| e.to_string())?;
        writer.set_final_mode(0o444);
        writer.write_content(&content).map_err(|e| e.to_string())?;
        writer.commit().map_err(|e| e.to_string())
    });
    match queued {
        Ok(id) => {
            log::info!(
                "{id}: TLS report for {domain} ({} to {}) to {}",
                report::rfc3339(start),
                report::rfc3339(end),
                rua.mailto.join(", ")
            );
            if let Err(e) = rostfix_proto::wake_pickup(Path::new(".")) {
                log::debug!("cannot wake pickup: {e}");
            }
            true
        }
        Err(e) => {
            log::warn!("{domain}: cannot queue the TLS report: {e}");
            false
        }
    }
}

/// POSTs the gzipped report to one https: destination; failures are logged only (a
/// retry would mail the report to the mailto: destinations again).
fn upload(ctx: &Ctx, domain: &str, uri: &str, json: &str) {
    let Some(https) = &ctx.https else {
        log::warn!("{domain}: TLS report destination {uri} skipped: no CA roots loaded");
        return;
    };
    let sent = HttpsUrl::parse(uri)
        .map_err(|e| e.to_string())
        .and_then(|url| {
            let addrs = ctx.dns.addresses(&url.host).map_err(|e| e.to_string())?;
            let body = message::gzip(json).map_err(|e| e.to_string())?;
            https
                .post(&url, &addrs, "application/tlsrpt+gzip", &body)
                .map_err(|e| e.to_string())
        });
    match sent {
        Ok(()) => log::info!("{domain}: TLS report posted to {uri}"),
        Err(e) => log::warn!("{domain}: TLS report to {uri} failed: {e}"),
    }
}

/// The TXT strings at `qname`; no such name is an empty answer, not an error.
fn txt(dns: &rostfix_dns::Resolver, qname: &str) -> Result<Vec<String>, String> {
    match dns.txt(qname) {
        Ok(r) => Ok(r),
        Err(rostfix_dns::TxtError::None) => Ok(Vec::new()),
        Err(rostfix_dns::TxtError::Failed(e)) => Err(e),
    }
}

/// The Date: header value for now, in UTC.
fn rfc2822_now() -> String {
    let t = now();
    let iso = report::rfc3339(t);
    // iso: YYYY-MM-DDTHH:MM:SSZ
    let (date, time) = iso.split_once('T').unwrap_or((&iso, "00:00:00Z"));
    let mut parts = date.split('-');
    let (y, m, d) = (
        parts.next().unwrap_or("1970"),
        parts.next().unwrap_or("01"),
        parts.next().unwrap_or("01"),
    );
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = m
        .parse::<usize>()
        .ok()
        .and_then(|i| MONTHS.get(i.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    let day = d.trim_start_matches('0');
    format!("{day} {month} {y} {} +0000", time.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
