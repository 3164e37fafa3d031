//! Address verification probes (queue files with the `verify_probe` attribute, written
//! by the verify service): qmgr routes them like mail, the agent only asks the next
//! hop (docs/ipc.md, `probe`), and each recipient's outcome goes back to verify as an
//! `Update` instead of into a notice. A probe is never bounced, never deferred into
//! deferred/, never retried: what did not resolve this time is reported as deferred
//! and the file is removed, as Postfix's verify(8) probes are.
//!
//! Design choice: Postfix's agents send the update themselves (DEL_REQ_FLAG_MTA_VRFY);
//! here qmgr does, since it already holds every outcome, including those no agent
//! sees (resolver failures, builtin transports).

use super::{now_f64, Manager};
use crate::event::DeliveryOutcome;
use crate::logline::to_line;
use crate::message::{ActiveMessage, Classified};
use rostfix_proto::{verify_call, VerifyRequest, VerifyStatus};
use std::path::PathBuf;
use std::time::Duration;

/// How long qmgr's reporting thread waits for the verify service per update.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// The queue file attribute that marks a probe (docs/queue-format.md).
pub const PROBE_ATTR: &str = "verify_probe";

impl Manager {
    /// The agent answered for some recipients of a probe: the final answers (sent,
    /// bounced) go to verify and the recipients count as done (in memory only: a
    /// probe lost to a crash is simply sent again). Deferred ones stay pending until
    /// [`Manager::finish_probe`].
    pub(super) fn apply_probe_outcome(
        &mut self,
        msg: &mut ActiveMessage,
        o: &DeliveryOutcome,
        classified: Classified,
    ) {
        let mut updates = Vec::new();
        for off in &classified.sent {
            let text = o
                .reply
                .as_ref()
                .ok()
                .and_then(|r| r.results.iter().find(|x| x.offset == *off))
                .map_or_else(|| "deliverable".to_string(), |x| x.text.clone());
            if let Some(r) = msg.recipients.get(off) {
                updates.push((r.orig_address.clone(), VerifyStatus::Deliverable, text));
            }
            msg.set_done(*off);
        }
        for (off, b) in classified.bounced {
            if let Some(r) = msg.recipients.get(&off) {
                updates.push((r.orig_address.clone(), VerifyStatus::Undeliverable, b.text));
            }
            msg.set_done(off);
        }
        for d in &classified.deferred {
            msg.set_reason(d.offset, &d.text);
            if d.log_by_qmgr {
                // No agent answered: the probe's line is qmgr's to write.
                let orig = msg
                    .recipients
                    .get(&d.offset)
                    .map(|r| r.orig_address.clone())
                    .unwrap_or_default();
                let delay = now_f64() - msg.arrival as f64;
                log::info!(
                    "{}",
                    to_line(
                        &msg.id,
                        &d.address,
                        &orig,
                        delay,
                        &d.dsn,
                        "deferred",
                        Some(&d.text)
                    )
                );
            }
        }
        self.report_to_verify(&msg.id, updates);
    }

    /// A probe with no request outstanding: every recipient still pending is
    /// reported deferred with its last reason, and the probe is done.
    pub(super) fn finish_probe(&mut self, id: &str) {
        let Some(msg) = self.messages.get_mut(id) else {
            return;
        };
        let mut updates = Vec::new();
        for off in msg.pending() {
            if let Some(r) = msg.recipients.get(&off) {
                let text = r
                    .last_reason
                    .clone()
                    .unwrap_or_else(|| "address verification failed".into());
                updates.push((r.orig_address.clone(), VerifyStatus::Deferred, text));
            }
            msg.set_done(off);
        }
        self.report_to_verify(id, updates);
    }

    /// Sends the updates from a thread of their own: the event loop never waits for
    /// the verify service, and an update that cannot be sent only means the next
    /// query probes again.
    fn report_to_verify(&self, id: &str, updates: Vec<(String, VerifyStatus, String)>) {
        if updates.is_empty() {
            return;
        }
        let root: PathBuf = self.root.clone();
        let id = id.to_string();
        let spawned = std::thread::Builder::new()
            .name("verify-update".into())
            .spawn(move || {
                for (address, status, text) in updates {
                    let req = VerifyRequest::Update {
                        address: address.clone(),
                        status,
                        text,
                    };
                    if let Err(e) = verify_call(&root, &req, VERIFY_TIMEOUT) {
                        log::warn!("{id}: cannot report probe result for <{address}>: {e}");
                    }
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the verify update thread: {e}");
        }
    }
}
