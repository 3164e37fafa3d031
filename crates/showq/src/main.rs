//! showq: the queue listing service (master.cf `showq unix n - y - - showq`: public,
//! unprivileged, chroot). Postfix's postqueue talks to its showq daemon when the user
//! cannot read the queue; rostqueue does the same. Each client gets the listing (see
//! wire.rs and docs/ipc.md) and the connection is closed. It reads only what rostqueue
//! -p shows (envelope, pending recipients, defer reasons), never message content.

#![forbid(unsafe_code)]

mod help;

use rostfix_service::{Connection, Daemon, Passed, Service, Shape};
use rostfix_showq::{scan, send_listing};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Writing the listing to a client that stops reading gives up after this long.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

fn main() {
    rostfix_service::run(Daemon {
        program: "showq",
        help: help::HELP,
        before_confine: |_: &mut Service| Ok(()),
        after_confine: |service: &mut Service, ()| {
            let empty_sender = service.config.get("empty_address_recipient");
            Ok(Shape::Single(Box::new(move |_svc, conn| match conn {
                Connection::Unix(mut s) => match s.set_write_timeout(Some(WRITE_TIMEOUT)) {
                    Ok(()) => serve_one(&mut s, &empty_sender),
                    Err(e) => log::warn!("cannot set socket timeout: {e}"),
                },
                Connection::Tcp(mut s) | Connection::Passed(Passed { stream: mut s, .. }) => {
                    match s.set_write_timeout(Some(WRITE_TIMEOUT)) {
                        Ok(()) => serve_one(&mut s, &empty_sender),
                        Err(e) => log::warn!("cannot set socket timeout: {e}"),
                    }
                }
            })))
        },
    })
}

/// Scans the queue (cwd is queue_directory after confine) and sends the listing.
fn serve_one<W: Write>(out: &mut W, empty_sender: &str) {
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
    if let Err(e) = send_listing(out, &messages, &warnings) {
        log::warn!("cannot send the queue listing: {e}");
    }
}
