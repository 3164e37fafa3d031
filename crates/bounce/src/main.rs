//! bounce: writes RFC 3464 non-delivery notices into the queue (`private/bounce`).
//!
//! Per connection qmgr sends one `BounceRequest` (the failed recipients of one message)
//! and gets one `BounceReply`: `Queued(new id)` once the notice is durable in incoming/,
//! `NotNeeded` for the null sender, `Failed` when the notice could not be written (qmgr
//! then keeps the recipients and retries).
//!
//! Notices: non-delivery (RET=FULL returns the message within bounce_size_limit, else
//! its headers), delay warnings and success notices as qmgr asks (BounceRequest.kind),
//! each only for recipients whose DSN NOTIFY wants it; a failed bounce becomes a double
//! bounce to 2bounce_notice_recipient when notify_classes lists 2bounce.
//!
//! Partial: the per-message defer log is kept by qmgr (defer/ID), not by this service;
//! postmaster copies for the `bounce`, `delay`, `resource`, `software` classes and
//! bounce_template_file are not implemented.

#![forbid(unsafe_code)]

mod handler;
mod help;
mod notice;

use rostfix_proto::{read_message, write_message, BounceReply, BounceRequest, FrameError};
use rostfix_service::{Connection, Daemon, Passed, Service, Shape};
use std::io::{Read, Write};

/// A bounce request lists addresses and short texts; 4 MiB bounds a confused peer.
const MAX_REQUEST: u64 = 4 * 1024 * 1024;

fn main() {
    rostfix_service::run(Daemon {
        program: "bounce",
        help: help::HELP,
        before_confine: |_: &mut Service| Ok(()),
        after_confine: |service: &mut Service, ()| {
            let cfg = bounce_config(service);
            let timeout = service.ipc_timeout();
            Ok(Shape::Single(Box::new(move |_svc, conn| {
                if !conn.bound_or_refuse(timeout) {
                    return;
                }
                match conn {
                    Connection::Unix(mut s) => serve_one(&mut s, &cfg),
                    Connection::Tcp(mut s) | Connection::Passed(Passed { stream: mut s, .. }) => {
                        serve_one(&mut s, &cfg)
                    }
                }
            })))
        },
    })
}

fn bounce_config(service: &Service) -> handler::BounceConfig {
    let myhostname = service.config.get("myhostname");
    handler::BounceConfig {
        myhostname: myhostname.clone(),
        size_limit: usize::try_from(service.config.get_int("bounce_size_limit")).unwrap_or(50_000),
        notify_2bounce: service
            .config
            .get_list("notify_classes")
            .iter()
            .any(|c| c.eq_ignore_ascii_case("2bounce")),
        double_bounce_recipient: service.config.get("2bounce_notice_recipient"),
        double_bounce_sender: format!(
            "{}@{}",
            service.config.get("double_bounce_sender"),
            myhostname
        ),
    }
}

/// Reads one request and answers it.
fn serve_one<S: Read + Write>(stream: &mut S, cfg: &handler::BounceConfig) {
    let req: BounceRequest = match read_message(&mut stream.take(MAX_REQUEST)) {
        Ok(r) => r,
        Err(FrameError::Closed) => return,
        Err(e) => {
            // A bad queue name, queue id or status code ends here, at decode.
            log::warn!("bad bounce request: {e}");
            if matches!(e, FrameError::Malformed(_)) {
                let _ = write_message(stream, &BounceReply::Failed(e.to_string()));
            }
            return;
        }
    };
    let reply = handler::handle(&req, cfg, std::path::Path::new("."));
    if let Err(e) = write_message(stream, &reply) {
        // qmgr will retry; a queued notice may then be sent twice, never lost.
        log::warn!("cannot answer qmgr: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_request_naming_a_bad_queue_file_is_refused_at_decode() {
        let cfg = handler::BounceConfig {
            myhostname: "mail.example.org".into(),
            size_limit: 50_000,
            notify_2bounce: true,
            double_bounce_recipient: "postmaster".into(),
            double_bounce_sender: "double-bounce@mail.example.org".into(),
        };
        for (id, queue) in [
            ("../etc/passwd", "active"),
            ("ABC/DEF", "active"),
            ("A.B", "active"),
            ("3F2A81C0D4E", "../x"),
        ] {
            let (mut qmgr, mut bounce) = UnixStream::pair().expect("pair");
            let json = format!(
                r#"{{"queue_name":"{queue}","queue_id":"{id}","sender":"a@b","arrival":0,"recipients":[]}}"#
            );
            rostfix_proto::write_frame(&mut qmgr, json.as_bytes()).expect("send");
            serve_one(&mut bounce, &cfg);
            drop(bounce);
            let reply: BounceReply = read_message(&mut qmgr).expect("reply");
            let BounceReply::Failed(why) = reply else {
                panic!("{id} {queue}: {reply:?}")
            };
            assert!(
                why.contains("invalid queue id") || why.contains("unknown variant"),
                "{why}"
            );
        }
    }
}
