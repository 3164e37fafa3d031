//! One delivery request from qmgr, end to end: parse the next hop, find the servers (MX
//! lookup or the bracketed host), read the message from the queue file, try each server
//! address in turn until one gives recipient verdicts, mark sent recipients done in the
//! queue file, and build the reply and the log lines.
//!
//! Host selection follows Postfix: a connection failure, a lost connection, or a 4xx at
//! greeting/EHLO/MAIL moves on to the next address (at most smtp_mx_address_limit);
//! after the last one every recipient is deferred with the last failure's text.

use crate::dns::{Dns, LookupError};
use crate::logline::{self, Delays};
use crate::nexthop;
use crate::session::{self, Envelope, Outcome, SiteFailure, Timeouts};
use rostfix_proto::{DeliveryReply, DeliveryRequest, DeliveryStatus, RecipientResult};
use rostfix_queue::{QueueFile, QueueName};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Settings read from main.cf once at start.
pub struct Settings {
    pub helo_name: String,
    pub connect_timeout: Duration,
    pub timeouts: Timeouts,
    pub mx_address_limit: usize,
}

/// Delivers `req`; returns the reply for qmgr and one log line per recipient.
pub fn deliver(
    req: &DeliveryRequest,
    settings: &Settings,
    dns: Option<&Dns>,
) -> (DeliveryReply, Vec<String>) {
    let started = Instant::now();
    let before = (now() - req.arrival as f64).max(0.0);
    let mut relay = "none".to_string();
    let mut setup = 0.0;
    let mut connect = 0.0;
    let outcomes = match plan(req, settings, dns) {
        Err(failure) => vec![failure; req.recipients.len()],
        Ok((addresses, content)) => {
            setup = started.elapsed().as_secs_f64();
            attempt(
                req,
                settings,
                &addresses,
                &content,
                &mut relay,
                &mut connect,
            )
        }
    };
    let total_agent = started.elapsed().as_secs_f64();
    let delays = Delays {
        total: before + total_agent,
        parts: [
            before,
            setup,
            connect.max(0.0),
            (total_agent - setup - connect.max(0.0)).max(0.0),
        ],
    };
    let mut results = Vec::with_capacity(req.recipients.len());
    let mut lines = Vec::with_capacity(req.recipients.len());
    for (rcpt, mut o) in req.recipients.iter().zip(outcomes) {
        if o.status == DeliveryStatus::Sent {
            let path = Path::new(&req.queue_name).join(&req.queue_id);
            if let Err(e) = QueueFile::mark_done(&path, rcpt.offset) {
                // Delivered but not recorded: defer, so a retry may duplicate rather
                // than the queue claim something it cannot prove.
                log::warn!("{}: cannot update queue file: {e}", req.queue_id);
                o = Outcome {
                    status: DeliveryStatus::Deferred,
                    dsn: "4.3.0".into(),
                    text: format!("delivered but cannot update queue file: {e}"),
                };
            }
        }
        lines.push(logline::line(
            &req.queue_id,
            &rcpt.address,
            &rcpt.orig_address,
            &relay,
            &delays,
            &o.dsn,
            o.status,
            &o.text,
        ));
        results.push(RecipientResult {
            offset: rcpt.offset,
            status: o.status,
            dsn: o.dsn,
            text: o.text,
            relay: relay.clone(),
        });
    }
    (DeliveryReply { results }, lines)
}

/// One server address to try: host name (for texts), address, port.
type Target = (String, IpAddr, u16);

/// Finds the addresses to try and reads the content; an error is the outcome of every
/// recipient.
fn plan(
    req: &DeliveryRequest,
    settings: &Settings,
    dns: Option<&Dns>,
) -> Result<(Vec<Target>, Vec<u8>), Outcome> {
    let hop = nexthop::parse(&req.nexthop).map_err(|e| defer("4.3.5", e.to_string()))?;
    let queue = QueueName::parse(&req.queue_name)
        .ok_or_else(|| defer("4.3.0", format!("bad queue name {:?}", req.queue_name)))?;
    let content = QueueFile::open(Path::new("."), queue, &req.queue_id)
        .and_then(|qf| qf.read_content())
        .map_err(|e| defer("4.3.0", format!("cannot read message content: {e}")))?;

    if let Ok(ip) = hop.host.parse::<IpAddr>() {
        return Ok((vec![(ip.to_string(), ip, hop.port)], content));
    }
    let dns = dns.ok_or_else(|| defer("4.4.3", "no DNS resolver configuration".to_string()))?;
    let (hosts, via_mx) = if hop.mx_lookup {
        match dns.mx(&hop.host) {
            Ok(Some(list)) => (list, true),
            Ok(None) => (vec![hop.host.clone()], false),
            Err(e) => return Err(lookup_failure(e)),
        }
    } else {
        (vec![hop.host.clone()], false)
    };
    let mut targets = Vec::new();
    let mut last_err = None;
    for host in hosts {
        if targets.len() >= settings.mx_address_limit {
            break;
        }
        let addrs = match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![ip]),
            Err(_) => dns.addresses(&host),
        };
        match addrs {
            Ok(list) => targets.extend(list.into_iter().map(|ip| (host.clone(), ip, hop.port))),
            Err(e) => last_err = Some(e),
        }
    }
    targets.truncate(settings.mx_address_limit.max(1));
    if targets.is_empty() {
        let e = last_err.unwrap_or(LookupError::Temporary {
            name: hop.host.clone(),
            rtype: "A",
        });
        // An MX host without addresses is the destination's temporary problem; the
        // destination itself not existing is permanent.
        return Err(match (&e, via_mx) {
            (LookupError::NotFound { .. }, true) => defer("4.4.3", e.to_string()),
            _ => lookup_failure(e),
        });
    }
    Ok((targets, content))
}

/// Tries the targets in order; `relay` and `connect` (seconds from the first attempt
/// until the last TCP connection was up: connection set-up, failed attempts included,
/// for the `c` column of `delays=`) are filled in.
fn attempt(
    req: &DeliveryRequest,
    settings: &Settings,
    targets: &[Target],
    content: &[u8],
    relay: &mut String,
    connect: &mut f64,
) -> Vec<Outcome> {
    let started = Instant::now();
    let recipients: Vec<String> = req.recipients.iter().map(|r| r.address.clone()).collect();
    let env = Envelope {
        helo_name: &settings.helo_name,
        sender: &req.sender,
        recipients: &recipients,
        content,
    };
    let mut last: Option<SiteFailure> = None;
    for (host, ip, port) in targets {
        let addr = SocketAddr::new(*ip, *port);
        let peer = format!("{host}[{ip}]");
        *relay = format!("{peer}:{port}");
        let stream = match TcpStream::connect_timeout(&addr, settings.connect_timeout) {
            Ok(s) => s,
            Err(e) => {
                let why = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "Connection refused".to_string(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        "Connection timed out".to_string()
                    }
                    _ => e.to_string(),
                };
                log::info!("{}: connect to {peer}:{port}: {why}", req.queue_id);
                last = Some(SiteFailure {
                    status: DeliveryStatus::Deferred,
                    dsn: "4.4.1".into(),
                    text: format!("connect to {peer}:{port}: {why}"),
                    try_next: true,
                });
                continue;
            }
        };
        *connect = started.elapsed().as_secs_f64();
        match session::run(stream, &peer, &env, &settings.timeouts) {
            Ok(outcomes) => return outcomes,
            Err(f) if f.try_next => {
                log::info!("{}: {}", req.queue_id, f.text);
                last = Some(f);
            }
            Err(f) => return site_outcomes(&f, recipients.len()),
        }
    }
    match last {
        Some(f) => site_outcomes(&f, recipients.len()),
        None => vec![defer("4.4.3", "no server address to try".into()); recipients.len()],
    }
}

fn site_outcomes(f: &SiteFailure, n: usize) -> Vec<Outcome> {
    vec![
        Outcome {
            status: f.status,
            dsn: f.dsn.clone(),
            text: f.text.clone(),
        };
        n
    ]
}

fn lookup_failure(e: LookupError) -> Outcome {
    match &e {
        LookupError::NotFound { .. } => Outcome {
            status: DeliveryStatus::Bounced,
            dsn: "5.4.4".into(),
            text: e.to_string(),
        },
        LookupError::NullMx(_) => Outcome {
            status: DeliveryStatus::Bounced,
            dsn: "5.1.0".into(),
            text: e.to_string(),
        },
        LookupError::Temporary { .. } => defer("4.4.3", e.to_string()),
    }
}

fn defer(dsn: &str, text: String) -> Outcome {
    Outcome {
        status: DeliveryStatus::Deferred,
        dsn: dsn.into(),
        text,
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
