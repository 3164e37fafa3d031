//! metrics: the native Prometheus endpoint (issue 20). master.cf:
//! `metrics unix - - y - 1 metrics`. Daemons send their counts to private/metrics
//! (reporter.rs); this one process adds them up and answers `GET /metrics` on
//! `rostfix_metrics_listen` (loopback by default) with those counters plus the queue
//! sizes and oldest ages, read from the queue directories at each scrape.
//!
//! Counts live in this process's memory: a restart starts them from zero, which
//! Prometheus's rate() treats as a counter reset.

#![forbid(unsafe_code)]

mod auth;
mod help;
mod http;
mod queue_gauges;

use rostfix_metrics::{Registry, SIZE_BUCKETS};
use rostfix_proto::{read_message, MetricsReport, MAX_METRICS_SAMPLES};
use rostfix_service::{Connection, Daemon, Service, Shape, StartError};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A reporter that does not finish its frame in this time is cut off.
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("rostfix_metrics_listen = {address}: {source}")]
struct ListenError {
    address: String,
    #[source]
    source: std::io::Error,
}

fn main() {
    rostfix_service::run(Daemon {
        program: "metrics",
        help: help::HELP,
        before_confine: |service: &mut Service| {
            let address = service.config.get("rostfix_metrics_listen");
            let auth =
                auth::Credentials::load(&service.config.get("rostfix_metrics_password_file"))
                    .map_err(StartError::daemon)?;
            let listener = TcpListener::bind(&address)
                .map_err(|source| StartError::daemon(ListenError { address, source }))?;
            Ok((listener, auth))
        },
        after_confine:
            |_service: &mut Service, (listener, auth): (TcpListener, Option<auth::Credentials>)| {
                let registry = Arc::new(Mutex::new(describe(Registry::default())));
                let for_reports = registry.clone();
                Ok(Shape::Multi {
                    on_client: Arc::new(move |conn| start_report(conn, &for_reports)),
                    main_loop: Box::new(move |service: &Service| {
                        http::serve(listener, registry, auth);
                        while service.master_alive() {
                            std::thread::sleep(Duration::from_secs(1));
                        }
                        log::debug!("master is gone; exiting");
                    }),
                })
            },
    })
}

/// The HELP lines of the series this version reports.
fn describe(mut r: Registry) -> Registry {
    r.describe(
        "rostfix_delivery_recipients_total",
        "Recipients per delivery outcome (sent, bounced, deferred) by transport, from qmgr.",
    );
    r.describe(
        "rostfix_delivery_delay_seconds",
        "Time from arrival to each recipient's delivery attempt, by transport and outcome.",
    );
    r.describe(
        "rostfix_messages_activated_total",
        "Messages qmgr moved into the active queue (new and retried).",
    );
    r.describe(
        "rostfix_smtpd_connections_total",
        "Client connections smtpd served, by master.cf service name.",
    );
    r.describe(
        "rostfix_smtpd_rejects_total",
        "Refusals smtpd sent, by SMTP stage, restriction (list or limit) and reply code.",
    );
    r.describe(
        "rostfix_smtpd_auth_total",
        "SMTP AUTH exchanges by mechanism and result (success, failure).",
    );
    r.describe(
        "rostfix_smtpd_tls_handshakes_total",
        "Inbound TLS handshakes completed, by protocol version and cipher suite.",
    );
    r.describe(
        "rostfix_smtpd_messages_accepted_total",
        "Messages smtpd accepted into the queue (or a before-queue filter accepted).",
    );
    r.describe(
        "rostfix_smtpd_message_size_bytes",
        "Size of each accepted message as message_size_limit counts it.",
    );
    r.set_buckets("rostfix_smtpd_message_size_bytes", &SIZE_BUCKETS);
    r.describe(
        "rostfix_smtp_tls_handshakes_total",
        "Outbound TLS handshakes the smtp client completed, by protocol version and cipher.",
    );
    r.describe(
        "rostfix_queue_messages",
        "Messages in each queue at scrape time.",
    );
    r.describe(
        "rostfix_queue_oldest_message_age_seconds",
        "Age of the oldest file in each queue at scrape time (0 when empty).",
    );
    r.describe(
        "rostfix_metrics_reports_total",
        "Reports received from each program.",
    );
    r
}

/// Reads one report on its own thread (a slow reporter holds up no one else).
fn start_report(conn: Connection, registry: &Arc<Mutex<Registry>>) {
    let Connection::Unix(mut stream) = conn else {
        log::warn!("metrics: reports come over private/metrics only; TCP connection closed");
        return;
    };
    let registry = registry.clone();
    let spawned = std::thread::Builder::new()
        .name("report".into())
        .spawn(move || {
            if let Err(e) = stream.set_read_timeout(Some(REPORT_TIMEOUT)) {
                log::warn!("cannot set socket timeout: {e}");
                return;
            }
            match read_message::<_, MetricsReport>(&mut stream) {
                Ok(report) if report.samples.len() <= MAX_METRICS_SAMPLES => {
                    let mut r = registry.lock().unwrap_or_else(|p| p.into_inner());
                    for s in &report.samples {
                        r.apply(s);
                    }
                    r.apply(&rostfix_proto::MetricSample {
                        name: "rostfix_metrics_reports_total".into(),
                        labels: vec![("program".into(), report.program.clone())],
                        kind: rostfix_proto::SampleKind::Add,
                        value: 1.0,
                    });
                }
                Ok(report) => log::warn!(
                    "report from {} with {} samples refused (limit {MAX_METRICS_SAMPLES})",
                    report.program,
                    report.samples.len()
                ),
                Err(e) => log::warn!("bad metrics report: {e}"),
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a report thread: {e}");
    }
}
