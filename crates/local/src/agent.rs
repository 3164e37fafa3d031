//! One delivery request from qmgr: read the queue file, deliver each recipient, make
//! each delivered one durable and marked done BEFORE answering (a crash after delivery
//! must not deliver again), log each recipient Postfix-style, and build the reply.
//!
//! Who marks: outside a group commit the agent marks each delivered recipient done in
//! the queue file (fdatasync) right after its delivery. In a group commit (several
//! messages for one recipient in one request, crate::group_commit) Maildir copies wait
//! for one `new/` sync at the end of the request and qmgr records the done marks after
//! the reply; a recipient that reached any other destination is synced and marked by
//! the agent at once, as outside a group commit.

use crate::deliver::{Commit, Message, Settings};
use crate::expand::{verdict, Expansion, Leaf, LocalConf, UserLookup};
use crate::failure::Failure;
use crate::maildir::Stamp;
use crate::privileges::RootGuard;
use crate::resubmit::Forwarder;
use rostfix_maillog::DeliveryLine;
use rostfix_proto::{
    DeliveryRecipient, DeliveryReply, DeliveryRequest, DeliveryStatus, Dsn, RecipientResult,
};
use rostfix_queue::{open_requested_recipients, QueueFile};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The relay name in replies and log lines of the local agent.
pub const RELAY: &str = "local";

static AGENT_RELAY: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Names the agent in `relay=` for the rest of the process: the virtual agent shares
/// this request loop, and Postfix's virtual(8) logs `relay=virtual`, not `local`.
pub fn set_relay(name: &'static str) {
    let _ = AGENT_RELAY.set(name);
}

fn relay() -> &'static str {
    AGENT_RELAY.get().copied().unwrap_or(RELAY)
}

/// What a request is handled with.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub conf: &'a LocalConf,
    pub users: UserLookup<'a>,
    pub forwarder: &'a mut dyn Forwarder,
}

/// Handles `req` against the queue under `queue_root` ("." after confine). `received`
/// is when the request arrived, for the `delays=a/...` part of the log line.
pub fn handle_request(
    cx: &mut Context<'_>,
    req: &DeliveryRequest,
    queue_root: &Path,
    received: SystemTime,
) -> DeliveryReply {
    if req.is_group_commit() {
        return crate::group_request::handle_group(cx, req, queue_root, received);
    }
    let (qf, content) = match load(req, queue_root, received) {
        Ok(loaded) => loaded,
        Err(reply) => return reply,
    };
    let msg = message(req, &content);
    let mut expansion = Expansion::new(cx.settings, cx.conf, cx.users, msg);
    expansion.set_pass_context(crate::pass::PassContext::new(req, queue_root));
    let forwarder = &mut *cx.forwarder;
    deliver_all(req, &qf, received, |r| {
        let commit = Commit {
            stamp: Some(stamp(req, &qf, r.offset)),
            stage: None,
        };
        expansion.recipient_with(&r.address, &r.orig_address, commit, forwarder)
    })
}

/// The name stamp of `offset`'s Maildir copies of the message of `req`.
pub fn stamp<'a>(req: &'a DeliveryRequest, qf: &QueueFile, offset: u64) -> Stamp<'a> {
    Stamp {
        queue_id: req.queue_id.as_str(),
        arrival_us: qf.envelope.arrival_us,
        offset,
        retry: req.group.as_ref().is_some_and(|g| g.retry),
    }
}

/// The message of a request, delivered now.
pub fn message<'m>(req: &'m DeliveryRequest, content: &'m [u8]) -> Message<'m> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Message {
        sender: &req.sender,
        // Set per recipient by the agents (Expansion, virtual's loop).
        original: "",
        content,
        now,
        commit: Commit::default(),
    }
}

/// Opens the request's queue file and reads its content; on failure the reply that
/// defers every recipient (already logged).
pub fn load(
    req: &DeliveryRequest,
    queue_root: &Path,
    received: SystemTime,
) -> Result<(QueueFile, Vec<u8>), DeliveryReply> {
    let arrival = UNIX_EPOCH + Duration::from_secs(req.arrival.max(0) as u64);
    let before = received.duration_since(arrival).unwrap_or_default();
    read_message(req, queue_root).map_err(|f| {
        log::warn!("{}: {}", req.queue_id, f.text);
        let results = req
            .recipients
            .iter()
            .map(|r| {
                log_result(
                    req,
                    &r.address,
                    &r.orig_address,
                    &f,
                    arrival,
                    before,
                    Duration::ZERO,
                    "deferred",
                );
                result(r.offset, DeliveryStatus::Deferred, &f)
            })
            .collect();
        DeliveryReply::new(results)
    })
}

/// The request loop shared by local, virtual and pipe: `deliver` returns each
/// recipient's leaves; a sent recipient is marked done in the queue file right after
/// its delivery, before the reply; every leaf is logged, and the reply holds one
/// verdict per recipient.
pub fn deliver_all<D>(
    req: &DeliveryRequest,
    qf: &QueueFile,
    received: SystemTime,
    deliver: D,
) -> DeliveryReply
where
    D: FnMut(&DeliveryRecipient) -> Vec<Leaf>,
{
    if req.probe {
        let arrival = UNIX_EPOCH + Duration::from_secs(req.arrival.max(0) as u64);
        let before = received.duration_since(arrival).unwrap_or_default();
        return probe_reply(req, arrival, before);
    }
    let runs = run_recipients(req, deliver, |r, leaves| {
        if verdict(leaves).is_ok() {
            mark_done(req, qf, r);
        }
    });
    report(req, received, runs)
}

/// One recipient's leaves and how long its delivery took.
pub(crate) struct Run {
    pub(crate) leaves: Vec<Leaf>,
    took: Duration,
}

/// Delivers each recipient of `req` with root's rights (`deliver`), then `settle`s it
/// with the resting identity (mail_owner), which reads and marks queue files.
pub(crate) fn run_recipients<D, S>(req: &DeliveryRequest, mut deliver: D, mut settle: S) -> Vec<Run>
where
    D: FnMut(&DeliveryRecipient) -> Vec<Leaf>,
    S: FnMut(&DeliveryRecipient, &mut [Leaf]),
{
    let mut runs = Vec::with_capacity(req.recipients.len());
    for r in &req.recipients {
        let start = Instant::now();
        let mut leaves = match RootGuard::regain() {
            Ok(_root) => deliver(r),
            Err(e) => {
                log::warn!("{}: {e}", req.queue_id);
                vec![Leaf {
                    to: r.address.clone(),
                    result: Err(Failure::defer("4.3.0", e.to_string())),
                    owner: None,
                    passed: false,
                    staged: None,
                }]
            }
        };
        let took = start.elapsed();
        settle(r, &mut leaves);
        runs.push(Run { leaves, took });
    }
    runs
}

/// Marks a delivered recipient done (fdatasync). The mail is in the mailbox: it is
/// reported sent even if this fails. Deferring would deliver it twice; at worst a
/// crash of qmgr before it removes the file repeats this one delivery.
pub(crate) fn mark_done(req: &DeliveryRequest, qf: &QueueFile, r: &DeliveryRecipient) {
    if let Err(e) = QueueFile::mark_done(&qf.path, r.offset) {
        log::warn!(
            "{}: cannot mark recipient {} done: {e}",
            req.queue_id,
            r.address
        );
    }
}

/// Each recipient's verdict and log lines, and the reply.
pub(crate) fn report(req: &DeliveryRequest, received: SystemTime, runs: Vec<Run>) -> DeliveryReply {
    let arrival = UNIX_EPOCH + Duration::from_secs(req.arrival.max(0) as u64);
    let before = received.duration_since(arrival).unwrap_or_default();
    let mut results = Vec::with_capacity(runs.len());
    for (r, run) in req.recipients.iter().zip(runs) {
        let (leaves, took) = (run.leaves, run.took);
        let (status, f) = match verdict(&leaves) {
            Ok(text) => (DeliveryStatus::Sent, sent(text)),
            Err(f) if f.permanent => (DeliveryStatus::Bounced, f),
            Err(f) => (DeliveryStatus::Deferred, f),
        };
        if leaves.is_empty() {
            log_result(
                req,
                &r.address,
                &r.orig_address,
                &f,
                arrival,
                before,
                took,
                word(status),
            );
        }
        for leaf in leaves.iter().filter(|leaf| !leaf.passed) {
            let (lf, lw) = match &leaf.result {
                Ok(text) => (sent(text.clone()), "sent"),
                Err(f) if f.permanent => (f.clone(), "bounced"),
                Err(f) => (f.clone(), "deferred"),
            };
            // orig_to (the address as received) shows when expansion changed it.
            log_result(
                req,
                &leaf.to,
                &r.orig_address,
                &lf,
                arrival,
                before,
                took,
                lw,
            );
        }
        let mut res = result(r.offset, status, &f);
        if status == DeliveryStatus::Bounced {
            res.notify_sender = crate::expand::bounce_owner(&leaves);
        }
        results.push(res);
    }
    DeliveryReply::new(results)
}

/// An address verification probe (docs/ipc.md, `probe`): nothing is delivered and
/// nothing marked; every recipient is reported deliverable. Partial: Postfix's local
/// and virtual look the recipient up (aliases, users, virtual_mailbox_maps) before
/// answering; here a recipient that was routed to this agent counts as deliverable.
fn probe_reply(req: &DeliveryRequest, arrival: SystemTime, before: Duration) -> DeliveryReply {
    let f = sent(format!("delivers to {}", relay()));
    let results = req
        .recipients
        .iter()
        .map(|r| {
            log_result(
                req,
                &r.address,
                &r.orig_address,
                &f,
                arrival,
                before,
                Duration::ZERO,
                "deliverable",
            );
            result(r.offset, DeliveryStatus::Sent, &f)
        })
        .collect();
    DeliveryReply::new(results)
}

fn sent(text: String) -> Failure {
    Failure {
        permanent: false,
        dsn: "2.0.0",
        text,
    }
}

fn word(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Bounced => "bounced",
        DeliveryStatus::Deferred => "deferred",
    }
}

/// Opens the queue file named by the request and reads its content, with only the
/// request's recipients read from the envelope (one mailbox's request need not hold
/// the other 99 999 of a list message). Any problem is a temporary failure (4.3.0)
/// for every recipient: qmgr will look at the file again.
fn read_message(req: &DeliveryRequest, root: &Path) -> Result<(QueueFile, Vec<u8>), Failure> {
    let m =
        open_requested_recipients(root, req).map_err(|e| Failure::defer("4.3.0", e.to_string()))?;
    Ok((m.file, m.content))
}

fn result(offset: u64, status: DeliveryStatus, f: &Failure) -> RecipientResult {
    RecipientResult {
        offset,
        status,
        dsn: Dsn::or_class(f.dsn, status),
        text: f.text.clone(),
        relay: relay().to_string(),
        notify_sender: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn log_result(
    req: &DeliveryRequest,
    to: &str,
    orig_to: &str,
    f: &Failure,
    arrival: SystemTime,
    before: Duration,
    delivery: Duration,
    status: &str,
) {
    let total = SystemTime::now()
        .duration_since(arrival)
        .unwrap_or_default();
    let (a, b) = req.split_before(before.as_secs_f64());
    let line = DeliveryLine {
        queue_id: &req.queue_id,
        to,
        orig_to,
        relay: relay(),
        conn_use: 0,
        delay: total.as_secs_f64(),
        // Local sets up no connection (c = 0).
        delays: [a, b, 0.0, delivery.as_secs_f64()],
        dsn: f.dsn,
        status,
        text: Some(&f.text),
    };
    log::info!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::UserInfo;
    use crate::privileges::Identity;
    use crate::testdir::TestDir;
    use crate::testqueue::{queue_message, request};
    use rostfix_proto::DeliveryRecipient;
    use rostfix_queue::QueueName;
    use std::path::PathBuf;

    fn run(
        req: &DeliveryRequest,
        root: &Path,
        users: &dyn Fn(&str) -> Result<Option<UserInfo>, String>,
    ) -> DeliveryReply {
        let s = settings();
        let conf = LocalConf::defaults(&["example.org", "mx.example.org"]);
        let mut fwd = crate::resubmit::CollectingForwarder::default();
        let mut cx = Context {
            settings: &s,
            conf: &conf,
            users,
            forwarder: &mut fwd,
        };
        handle_request(&mut cx, req, root, SystemTime::now())
    }

    fn settings() -> Settings {
        Settings {
            hostname: "mx.example.org".into(),
            home_mailbox: "Maildir/".into(),
            mail_spool_directory: "/nonexistent".into(),
            recipient_delimiter: "+".into(),
            mailbox_size_limit: 0,
            lock_wait: Duration::from_secs(5),
            extension_folders: false,
        }
    }

    #[test]
    fn delivers_marks_done_and_reports_each_recipient() {
        let t = TestDir::new("agent");
        let root = t.path().join("queue");
        let home = t.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let content = b"Received: from x\nDelivered-To: loop@example.org\nSubject: hi\n\nbody\n";
        let id = queue_message(
            &root,
            &[
                "alice+x@example.org",
                "ghost@example.org",
                "loop@example.org",
            ],
            content,
        );
        let req = request(&root, &id);
        let home2: PathBuf = home.clone();
        let lookup = move |name: &str| {
            let me = Identity::current();
            Ok(["alice", "loop"].contains(&name).then(|| UserInfo {
                name: name.to_string(),
                uid: me.uid,
                gid: me.gid,
                home: home2.join(name),
            }))
        };
        let reply = run(&req, &root, &lookup);
        let got: Vec<_> = reply
            .results
            .iter()
            .map(|r| (r.offset, r.status, r.dsn.as_str(), r.relay.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    req.recipients[0].offset,
                    DeliveryStatus::Sent,
                    "2.0.0",
                    "local"
                ),
                (
                    req.recipients[1].offset,
                    DeliveryStatus::Bounced,
                    "5.1.1",
                    "local"
                ),
                (
                    req.recipients[2].offset,
                    DeliveryStatus::Bounced,
                    "5.4.6",
                    "local"
                ),
            ]
        );
        assert_eq!(reply.results[0].text, "delivered to maildir");
        assert_eq!(reply.results[1].text, "unknown user: \"ghost\"");
        // Only the delivered recipient is marked done; qmgr marks bounced ones later.
        let qf = QueueFile::open(&root, QueueName::Active, &id).unwrap();
        let done: Vec<bool> = qf.envelope.recipients.iter().map(|r| r.done).collect();
        assert_eq!(done, vec![true, false, false]);
        let new: Vec<_> = std::fs::read_dir(home.join("alice/Maildir/new"))
            .unwrap()
            .collect();
        assert_eq!(new.len(), 1);
        let data = std::fs::read(new[0].as_ref().unwrap().path()).unwrap();
        let mut want = b"Return-Path: <bob@example.org>\nX-Original-To: alice+x@example.org\n\
              Delivered-To: alice+x@example.org\n"
            .to_vec();
        want.extend_from_slice(content);
        assert_eq!(data, want);
    }

    #[test]
    fn unreadable_queue_file_defers_everyone() {
        let t = TestDir::new("agent-missing");
        let req = DeliveryRequest {
            queue_name: QueueName::Active,
            queue_id: "ABCDEF0123".parse().unwrap(),
            sender: String::new(),
            nexthop: "h".into(),
            arrival: 0,
            recipients: vec![
                DeliveryRecipient {
                    offset: 10,
                    address: "a".into(),
                    orig_address: "a".into(),
                },
                DeliveryRecipient {
                    offset: 20,
                    address: "b".into(),
                    orig_address: "b".into(),
                },
            ],
            activated: None,
            probe: false,
            shaping: None,
            group: None,
        };
        let none = |_: &str| Ok(None);
        let reply = run(&req, t.path(), &none);
        assert!(reply
            .results
            .iter()
            .all(|r| r.status == DeliveryStatus::Deferred && r.dsn == "4.3.0"));
        assert_eq!(
            reply.results.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![10, 20]
        );
        // A bad queue id or name never reaches here: the request does not decode
        // (rostfix_proto messages tests).
    }
}
