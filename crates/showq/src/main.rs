//! showq: the queue listing service (master.cf `showq unix n - y - - showq`: public,
//! unprivileged, chroot). Postfix's postqueue talks to its showq daemon when the user
//! cannot read the queue; rostqueue does the same. Each client gets the listing (see
//! wire.rs and docs/ipc.md) and the connection is closed. It reads only what rostqueue
//! -p shows (envelope, pending recipients, defer reasons), never message content.
//!
//! With `rostfix_showq_protocol = postfix` (set per service with -o in master.cf) the
//! listing is in Postfix 3's showq format instead, for tools such as
//! prometheus-postfix-exporter that read Postfix's showq socket.

#![forbid(unsafe_code)]

mod help;

use rostfix_service::{Connection, Daemon, Passed, Service, Shape, StartError};
use rostfix_showq::{scan, send_listing, send_postfix_listing, Listed};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Writing the listing to a client that stops reading gives up after this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

fn main() {
    rostfix_service::run(Daemon {
        program: "showq",
        help: help::HELP,
        before_confine: |service: &mut Service| Protocol::from_config(service),
        after_confine: |service: &mut Service, protocol: Protocol| {
            let empty_sender = service.config.get("empty_address_recipient");
            Ok(Shape::Single(Box::new(move |_svc, conn| match conn {
                Connection::Unix(mut s) => match s.set_write_timeout(Some(WRITE_TIMEOUT)) {
                    Ok(()) => serve_one(&mut s, &empty_sender, protocol),
                    Err(e) => log::warn!("cannot set socket timeout: {e}"),
                },
                Connection::Tcp(mut s) | Connection::Passed(Passed { stream: mut s, .. }) => {
                    match s.set_write_timeout(Some(WRITE_TIMEOUT)) {
                        Ok(()) => serve_one(&mut s, &empty_sender, protocol),
                        Err(e) => log::warn!("cannot set socket timeout: {e}"),
                    }
                }
            })))
        },
    })
}

/// Which listing format this service speaks (`rostfix_showq_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Our framed JSON, for rostqueue (docs/ipc.md).
    Rostfix,
    /// Postfix 3's attribute stream, for tools written against Postfix.
    Postfix,
}

/// An unknown `rostfix_showq_protocol` value, refused at start.
#[derive(Debug, thiserror::Error)]
#[error("rostfix_showq_protocol = {0}: expected rostfix or postfix")]
struct UnknownProtocol(String);

impl Protocol {
    fn from_config(service: &mut Service) -> Result<Protocol, StartError> {
        match service.config.get("rostfix_showq_protocol").as_str() {
            "rostfix" => Ok(Protocol::Rostfix),
            "postfix" => Ok(Protocol::Postfix),
            other => Err(StartError::daemon(UnknownProtocol(other.to_string()))),
        }
    }
}

/// Scans the queue (cwd is queue_directory after confine) and sends the listing.
fn serve_one<W: Write>(out: &mut W, empty_sender: &str, protocol: Protocol) {
    let mut warnings = Vec::new();
    let messages = match scan(Path::new("."), empty_sender, &mut |w| {
        log::warn!("{w}");
        warnings.push(w);
    }) {
        Ok(m) => m,
        Err(e) => {
            log::warn!("cannot scan the queue: {e}");
            warnings.push(format!("cannot scan the queue: {e}"));
            Vec::new()
        }
    };
    if let Err(e) = send(out, &messages, &warnings, protocol) {
        log::warn!("cannot send the queue listing: {e}");
    }
}

fn send<W: Write>(
    out: &mut W,
    messages: &[Listed],
    warnings: &[String],
    protocol: Protocol,
) -> Result<(), Box<dyn std::error::Error>> {
    match protocol {
        Protocol::Rostfix => send_listing(out, messages, warnings)?,
        // Postfix's format has no place for warnings: they are in the log (above).
        Protocol::Postfix => send_postfix_listing(out, messages)?,
    }
    Ok(())
}
