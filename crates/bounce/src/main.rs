//! bounce: writes RFC 3464 non-delivery notices into the queue (`private/bounce`).
//!
//! Per connection qmgr sends one `BounceRequest` (the failed recipients of one message)
//! and gets one `BounceReply`: `Queued(new id)` once the notice is durable in incoming/,
//! `NotNeeded` for the null sender, `Failed` when the notice could not be written (qmgr
//! then keeps the recipients and retries).
//!
//! Partial: Postfix's per-message bounce/defer logs kept by this service, delay warnings
//! (delay_warning_time), success notices (NOTIFY=SUCCESS), RET=FULL (the whole message
//! returned) and double-bounce to postmaster are not implemented yet.

mod handler;
mod help;
mod notice;

use rostfix_proto::{read_message, write_message, BounceRequest, FrameError};
use rostfix_service::{Connection, Service};
use std::io::{Read, Write};
use std::time::Duration;

/// A bounce request lists addresses and short texts; 4 MiB bounds a confused peer.
const MAX_REQUEST: u64 = 4 * 1024 * 1024;
/// Used when ipc_timeout is unset or zero.
const DEFAULT_IPC_TIMEOUT: Duration = Duration::from_secs(3600);

fn main() {
    if std::env::args().skip(1).any(|a| a == "--help") {
        print!("{}", help::HELP);
        return;
    }
    let mut service = match Service::init("bounce") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bounce: fatal: {e}");
            std::process::exit(1);
        }
    };
    let listeners = service.take_listeners();
    if let Err(e) = service.confine() {
        log::error!("fatal: {e}");
        std::process::exit(1);
    }
    let myhostname = service.config.get("myhostname");
    let mut timeout = service.config.get_time("ipc_timeout");
    if timeout.is_zero() {
        timeout = DEFAULT_IPC_TIMEOUT;
    }
    service.serve(listeners, move |_svc, conn| {
        let result = match conn {
            Connection::Unix(mut s) => s
                .set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout)))
                .map(|()| serve_one(&mut s, &myhostname)),
            Connection::Tcp(mut s) => s
                .set_read_timeout(Some(timeout))
                .and_then(|()| s.set_write_timeout(Some(timeout)))
                .map(|()| serve_one(&mut s, &myhostname)),
        };
        if let Err(e) = result {
            log::warn!("cannot set socket timeouts: {e}");
        }
    })
}

/// Reads one request and answers it.
fn serve_one<S: Read + Write>(stream: &mut S, myhostname: &str) {
    let req: BounceRequest = match read_message(&mut stream.take(MAX_REQUEST)) {
        Ok(r) => r,
        Err(FrameError::Closed) => return,
        Err(e) => {
            log::warn!("bad bounce request: {e}");
            return;
        }
    };
    let reply = handler::handle(&req, myhostname, std::path::Path::new("."));
    if let Err(e) = write_message(stream, &reply) {
        // qmgr will retry; a queued notice may then be sent twice, never lost.
        log::warn!("cannot answer qmgr: {e}");
    }
}
