//! pickup: the daemon that moves locally submitted mail from maildrop/ into incoming/
//! (master.cf `pickup unix n - y 60 1 pickup`: chroot, unprivileged, one process,
//! woken every 60 s). It runs in the service skeleton's trigger shape: it scans
//! maildrop/ at start, after each wake-up on `public/pickup`, and at least every 60 s;
//! it exits when master goes away.

#![forbid(unsafe_code)]

mod arc;
mod attrs;
mod bounce;
mod envelope;
mod help;
mod hygiene;
mod milter;
mod process;
mod qualify;
mod scan;
mod verdict;

use arc::ResubmitSealing;
use process::Settings;
use rostfix_inspect::{ContentChecks, ReceiveOverrides};
use rostfix_service::{Daemon, Service, Shape, StartError};
use scan::Scanner;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What is read before confinement: the content tables, receive_override_options and
/// the address rewriting (without tables under no_address_mappings).
type Loaded = (
    Option<Arc<ContentChecks>>,
    ReceiveOverrides,
    Option<Arc<rostfix_rewrite::Rewriter>>,
    Option<Arc<rostfix_dkim::Signer>>,
    Option<Arc<hygiene::Hygiene>>,
    Option<Arc<ResubmitSealing>>,
);

/// Longest pause between scans.
const SCAN_INTERVAL: Duration = Duration::from_secs(60);

fn main() {
    rostfix_service::run(Daemon {
        program: "pickup",
        help: help::HELP,
        before_confine: |service: &mut Service| {
            // Load the time zone before the chroot hides /etc/localtime (glibc caches it).
            let _ = rostfix_maillog::date::local_offset(0);
            // The content tables live outside the chroot: open them now.
            let (overrides, warnings) = ReceiveOverrides::from_config(&service.config);
            for w in warnings {
                log::warn!("{w}");
            }
            let content_checks = if overrides.no_header_body_checks {
                None
            } else {
                Some(ContentChecks::from_config(&service.config).map_err(StartError::daemon)?)
                    .filter(|c| !c.is_empty())
                    .map(Arc::new)
            };
            // no_address_mappings: no tables, masquerading or BCC, but addresses
            // still put in canonical form and headers qualified, as Postfix's cleanup.
            let rewrite = Some(Arc::new(
                if overrides.no_address_mappings {
                    rostfix_rewrite::Rewriter::without_mappings(&service.config)
                } else {
                    rostfix_rewrite::Rewriter::from_config(&service.config)
                }
                .map_err(StartError::daemon)?,
            ));
            // DKIM keys are readable by root only: read them before privileges go.
            // no_milters turns signing off, as in smtpd: it replaces OpenDKIM's milter.
            let dkim = if overrides.no_milters {
                None
            } else {
                rostfix_dkim::Signer::load(
                    &service.config.get("rostfix_dkim_key_table"),
                    &service.config.get("rostfix_dkim_signing_table"),
                )
                .map_err(StartError::daemon)?
                .map(|s| {
                    Arc::new(s.with_multiple_signatures(
                        service.config.get_bool("rostfix_dkim_multiple_signatures"),
                    ))
                })
            };
            // Its DNS resolver reads resolv.conf, outside the chroot.
            let hygiene = hygiene::Hygiene::from_config(&service.config)
                .map_err(StartError::daemon)?
                .map(Arc::new);
            // rostfix_arc_seal_resubmitted: the same keys, a resolver (resolv.conf)
            // and the listed users' uids (/etc/passwd), all outside the chroot.
            let arc = if overrides.no_milters {
                None
            } else {
                ResubmitSealing::from_config(&service.config)
                    .map_err(StartError::daemon)?
                    .map(Arc::new)
            };
            Ok((content_checks, overrides, rewrite, dkim, hygiene, arc))
        },
        after_confine:
            |service: &mut Service,
             (content_checks, overrides, rewrite, dkim, hygiene, arc): Loaded| {
                // After confinement the working directory is queue_directory. pickup
                // keeps one identity, so the reporter's thread can reach the service.
                rostfix_metrics::process::start("pickup", Path::new("."));
                let content_filter =
                    rostfix_queue::ContentFilter::parse(&service.config.get("content_filter"))
                        .map_err(StartError::daemon)?;
                // non_smtpd_milters; receive_override_options = no_milters turns them off
                // (a content filter's re-injection), as in Postfix.
                let milters = if overrides.no_milters {
                    None
                } else {
                    Some(
                        rostfix_milter::MilterConfig::from_main_cf(
                            &service.config,
                            "non_smtpd_milters",
                        )
                        .map_err(StartError::daemon)?,
                    )
                    .filter(|m| !m.is_empty())
                    .map(Arc::new)
                };
                let mut scanner = Scanner::new(Settings {
                    milters,
                    content_checks,
                    no_address_mappings: overrides.no_address_mappings,
                    rewrite,
                    content_filter,
                    forms: rostfix_rewrite::AddressForms::from_config(&service.config),
                    dkim,
                    arc,
                    hygiene,
                    myhostname: service.config.get("myhostname"),
                    myorigin: service.config.get("myorigin"),
                    message_size_limit: u64::try_from(service.config.get_int("message_size_limit"))
                        .unwrap_or(0),
                });
                scanner.scan(Path::new("."), wake_qmgr);
                // Whatever a trigger says, it means "scan now".
                Ok(Shape::Trigger {
                    on_trigger: Box::new(move |_, _| {
                        scanner.scan(Path::new("."), wake_qmgr);
                    }),
                    every: Some(SCAN_INTERVAL),
                })
            },
    })
}

/// Counts a message picked up, and wakes qmgr for one just queued.
fn wake_qmgr(q: &process::Queued) {
    let fate = match q.fate {
        verdict::Fate::Queued => "queued",
        verdict::Fate::Held => "held",
        verdict::Fate::Discarded => "discarded",
        verdict::Fate::Bounced => "bounced",
    };
    rostfix_metrics::process::add("rostfix_pickup_messages_total", &[("fate", fate)], 1.0);
    // Held, discarded and bounced messages give qmgr nothing to do (the bounce
    // service wakes it for its notice).
    if q.fate != verdict::Fate::Queued {
        return;
    }
    if let Err(e) = rostfix_proto::wake_qmgr(Path::new(".")) {
        log::warn!("{e}");
    }
}
