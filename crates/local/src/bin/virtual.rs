//! `virtual`: the virtual mailbox delivery agent, started by master (master.cf:
//! `virtual unix - n n - - virtual`). Runs as root, without chroot, so that it can
//! deliver with each mailbox's mapped uid/gid; see rostfix_local::virtual_mailbox.

#![deny(unsafe_code)]

use rostfix_local::agent::{deliver_all, load, message, set_relay, stamp};
use rostfix_local::deliver::{Commit, Message};
use rostfix_local::expand::Leaf;
use rostfix_local::server::{mail_owner, rest, AGENT_EXIT_STATUS};
use rostfix_local::setup::virtual_conf;
use rostfix_local::virtual_mailbox::{deliver_virtual, VirtualConf};
use rostfix_proto::{read_message, write_message, DeliveryRequest, FrameError};
use rostfix_service::manual::Manual;
use rostfix_service::{Connection, Daemon, Passed, Service, Shape};
use std::io::{Read, Write};
use std::path::Path;
use std::time::SystemTime;

/// The text of `virtual --help`.
const HELP: Manual = Manual {
    name: "virtual - Rostfix virtual mailbox delivery",
    synopsis: "virtual -n NAME -t TYPE [-c] [-u] [-v] [-o name=value]...",
    description: "\
The virtual delivery agent, like Postfix's virtual(8). qmgr sends it the
recipients of virtual_mailbox_domains (virtual_transport = virtual). For each
recipient it looks the address up in virtual_mailbox_maps (full address, then
without the recipient_delimiter extension, then @domain), and delivers into
$virtual_mailbox_base/RESULT: a result ending in / is a Maildir, anything else
an mbox file (locked with fcntl, plus a dotlock when virtual_mailbox_lock says
so). The delivery runs with the uid and gid from virtual_uid_maps and
virtual_gid_maps (e.g. static:5000), which must not be below
virtual_minimum_uid. virtual_mailbox_limit caps message and mbox size.
Return-Path:, X-Original-To: (the recipient as received) and Delivered-To:
are added; a message that already carries
Delivered-To: with the address bounces as a mail forwarding loop (5.4.6).
Unknown addresses bounce 5.1.1; lookup errors and configuration errors defer.
No aliases, .forward files or commands: that is local(8).",
    more_options: "",
    exit_status: AGENT_EXIT_STATUS,
    see_also: "local(8), qmgr(8), master(8), rostfix(1)",
};

fn main() {
    rostfix_service::run(Daemon {
        program: "virtual",
        help: HELP,
        before_confine: |service: &mut Service| {
            set_relay("virtual");
            mail_owner(service)
        },
        after_confine: |service: &mut Service, owner| {
            rest(owner)?;
            let conf = virtual_conf(&service.config);
            let ipc_timeout = service.ipc_timeout();
            Ok(Shape::Single(Box::new(move |_svc, conn| {
                if !conn.bound_or_refuse(ipc_timeout) {
                    return;
                }
                match conn {
                    Connection::Unix(mut s) => serve(&conf, &mut s),
                    Connection::Tcp(mut s) | Connection::Passed(Passed { stream: mut s, .. }) => {
                        serve(&conf, &mut s)
                    }
                }
            })))
        },
    })
}

/// One request, one reply (queue paths are relative: confine() chdir'ed to the queue).
fn serve<S: Read + Write>(conf: &VirtualConf, stream: &mut S) {
    let req: DeliveryRequest = match read_message(stream) {
        Ok(r) => r,
        Err(FrameError::Closed) => return,
        Err(e) => {
            log::warn!("reading delivery request: {e}");
            return;
        }
    };
    let received = SystemTime::now();
    let reply = match load(&req, Path::new("."), received) {
        Err(reply) => reply,
        Ok((qf, content)) => {
            let msg = message(&req, &content);
            deliver_all(&req, &qf, received, |r| {
                // Stamped Maildir names: a message delivered again after a crash is
                // found in new/ instead of stored twice.
                let msg = Message {
                    original: &r.orig_address,
                    commit: Commit {
                        stamp: Some(stamp(&req, &qf, r.offset)),
                        stage: None,
                    },
                    ..msg
                };
                vec![Leaf {
                    to: r.address.clone(),
                    result: deliver_virtual(conf, msg, &r.address).map(str::to_string),
                    owner: None,
                    passed: false,
                    staged: None,
                }]
            })
        }
    };
    if let Err(e) = write_message(stream, &reply) {
        log::warn!("{}: sending delivery reply: {e}", req.queue_id);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn manual_page_sections() {
        rostfix_service::manual::assert_complete(&super::HELP);
    }
}
