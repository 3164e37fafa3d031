//! smtp: the SMTP client delivery agent, FOUNDATION PLACEHOLDER.
//!
//! This is an honest stub, to be replaced by the real SMTP/LMTP client (issue 4: MX
//! lookup, TLS, relayhost AUTH, connection reuse). It is a real service under master: it
//! answers every delivery request from qmgr by deferring every recipient with `4.3.0`
//! and the text "delivery to remote destinations is not implemented yet (issue 4)", and
//! logs each one with `relay=none ... status=deferred`. It never contacts any host and
//! never marks a recipient done, so remote mail stays queued (and eventually expires
//! through qmgr's normal rules) instead of being lost or falsely reported as sent.

mod stub_reply;

use rostfix_proto::{read_message, write_message, DeliveryRequest, FrameError};
use rostfix_service::{Connection, Service};
use std::io::{Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A delivery request is a few hundred bytes per recipient; 4 MiB is generous for 50
/// recipients and still bounds what a confused peer makes us read.
const MAX_REQUEST: u64 = 4 * 1024 * 1024;
/// Used when ipc_timeout is unset or zero.
const DEFAULT_IPC_TIMEOUT: Duration = Duration::from_secs(3600);

fn main() {
    let mut service = match Service::init("smtp") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smtp: fatal: {e}");
            std::process::exit(1);
        }
    };
    let listeners = service.take_listeners();
    if let Err(e) = service.confine() {
        log::error!("fatal: {e}");
        std::process::exit(1);
    }
    let mut timeout = service.config.get_time("ipc_timeout");
    if timeout.is_zero() {
        timeout = DEFAULT_IPC_TIMEOUT;
    }
    service.serve(listeners, move |_svc, conn| match conn {
        Connection::Unix(mut stream) => {
            if let Err(e) = stream
                .set_read_timeout(Some(timeout))
                .and_then(|()| stream.set_write_timeout(Some(timeout)))
            {
                log::warn!("cannot set socket timeouts: {e}");
                return;
            }
            handle(&mut stream);
        }
        Connection::Tcp(mut stream) => {
            // master.cf declares smtp as a unix service; answer anyway if someone
            // configured otherwise, with the same bounds.
            if stream
                .set_read_timeout(Some(timeout))
                .and_then(|()| stream.set_write_timeout(Some(timeout)))
                .is_ok()
            {
                handle(&mut stream);
            }
        }
    })
}

/// Reads one request, answers it, logs each recipient.
fn handle<S: Read + Write>(stream: &mut S) {
    let request: DeliveryRequest = match read_message(&mut stream.take(MAX_REQUEST)) {
        Ok(r) => r,
        Err(FrameError::Closed) => return,
        Err(e) => {
            log::warn!("bad delivery request: {e}");
            return;
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let (reply, lines) = stub_reply::stub_reply(&request, now);
    for line in lines {
        log::info!("{line}");
    }
    if let Err(e) = write_message(stream, &reply) {
        log::warn!("{}: cannot send reply to qmgr: {e}", request.queue_id);
    }
}
