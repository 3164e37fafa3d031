//! A group-commit request (docs/ipc.md, "Group commit"): several messages for one
//! recipient in one request from qmgr. Each message is delivered in turn with its own
//! expansion (duplicate elimination is per message, as for separate requests); its
//! Maildir copies are staged (crate::group_commit) and each `new/` directory is synced
//! once after the last message; then every message's recipients are logged and
//! answered, and qmgr records the done marks after the reply.
//!
//! Only Maildir copies are committed as a group: a recipient that reached an mbox, a
//! file, a command, a forwarded copy or another transport is made durable and marked
//! done by the agent right after its delivery, one at a time as outside a group commit
//! ([`settle_at_once`]), because a retry of the batch could not recognise those
//! deliveries as it recognises a stamped Maildir name.

use crate::agent::{
    deliver_all, load, mark_done, message, report, run_recipients, stamp, Context, Run,
};
use crate::deliver::Commit;
use crate::expand::{verdict, Expansion, Leaf};
use crate::failure::Failure;
use crate::group_commit::{Durability, Stage};
use rostfix_proto::{DeliveryRecipient, DeliveryReply, DeliveryRequest};
use rostfix_queue::QueueFile;
use std::cell::RefCell;
use std::path::Path;
use std::time::SystemTime;

/// A group commit: every message of the request in turn, each with its own expansion
/// (duplicate elimination is per message), their Maildir copies staged; then one sync
/// per `new/` directory, then the reply, the done marks left to qmgr (module doc).
pub(crate) fn handle_group(
    cx: &mut Context<'_>,
    req: &DeliveryRequest,
    queue_root: &Path,
    received: SystemTime,
) -> DeliveryReply {
    let stage = RefCell::new(Stage::default());
    // Per message: its reply already (unreadable file, probe), or its runs to report
    // once the stage is synced.
    let mut parts: Vec<(DeliveryRequest, Result<Vec<Run>, DeliveryReply>)> = Vec::new();
    for m in req.messages() {
        let (qf, content) = match load(&m, queue_root, received) {
            Ok(loaded) => loaded,
            Err(reply) => {
                parts.push((m, Err(reply)));
                continue;
            }
        };
        if m.probe {
            let reply = deliver_all(&m, &qf, received, |_| Vec::new());
            parts.push((m, Err(reply)));
            continue;
        }
        let mut expansion = Expansion::new(cx.settings, cx.conf, cx.users, message(&m, &content));
        expansion.set_pass_context(crate::pass::PassContext::new(&m, queue_root));
        let forwarder = &mut *cx.forwarder;
        let runs = run_recipients(
            &m,
            |r| {
                let commit = Commit {
                    stamp: Some(stamp(&m, &qf, r.offset)),
                    stage: Some(&stage),
                };
                expansion.recipient_with(&r.address, &r.orig_address, commit, forwarder)
            },
            |r, leaves| settle_at_once(&m, &qf, &stage, r, leaves),
        );
        parts.push((m, Ok(runs)));
    }
    stage.borrow_mut().sync_all();
    let stage = stage.into_inner();
    if stage.syncs() > 0 {
        log::debug!(
            "{}: group commit of {} message(s): {} Maildir copies, {} directory sync(s)",
            req.queue_id,
            parts.len(),
            stage.len(),
            stage.syncs()
        );
    }
    let replies = parts
        .into_iter()
        .map(|(m, part)| {
            let reply = match part {
                Err(reply) => reply,
                Ok(mut runs) => {
                    for run in &mut runs {
                        apply_durability(&stage, &mut run.leaves);
                    }
                    report(&m, received, runs)
                }
            };
            (m.queue_id, reply)
        })
        .collect();
    DeliveryReply::merged(replies)
}

/// In a group commit, a delivered recipient that reached anything but staged Maildir
/// copies (an mbox, a file, a command, a forwarded copy) cannot be recognised if the
/// batch is sent again: its copies are made durable and it is marked done now, so a
/// crash later in the batch does not deliver it twice.
fn settle_at_once(
    req: &DeliveryRequest,
    qf: &QueueFile,
    stage: &RefCell<Stage>,
    r: &DeliveryRecipient,
    leaves: &mut [Leaf],
) {
    let only_staged = leaves
        .iter()
        .filter(|l| l.result.is_ok())
        .all(|l| l.staged.is_some());
    if only_staged || verdict(leaves).is_err() {
        return;
    }
    let staged: Vec<usize> = leaves.iter().filter_map(|l| l.staged).collect();
    let mut stage = stage.borrow_mut();
    stage.sync(&staged);
    apply_durability(&stage, leaves);
    if verdict(leaves).is_ok() {
        mark_done(req, qf, r);
    }
}

/// Turns each staged copy whose `new/` sync failed (or never happened) into a
/// deferral of that destination.
fn apply_durability(stage: &Stage, leaves: &mut [Leaf]) {
    for leaf in leaves.iter_mut() {
        let Some(i) = leaf.staged else { continue };
        if leaf.result.is_err() {
            continue;
        }
        let why = match stage.durability(i) {
            Durability::Durable => continue,
            Durability::Lost(why) => why,
            Durability::Pending => "maildir directory not synced".to_string(),
        };
        leaf.result = Err(Failure::defer(
            "4.3.0",
            format!("maildir delivery failed: {why}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::{Settings, UserInfo};
    use crate::expand::LocalConf;
    use crate::privileges::Identity;
    use crate::testdir::TestDir;
    use crate::testqueue::{group, queue_message, request};
    use rostfix_proto::DeliveryStatus;
    use rostfix_queue::QueueName;
    use std::path::PathBuf;
    use std::time::Duration;

    fn settings(home_mailbox: &str) -> Settings {
        Settings {
            hostname: "mx.example.org".into(),
            home_mailbox: home_mailbox.into(),
            mail_spool_directory: "/nonexistent".into(),
            recipient_delimiter: "+".into(),
            mailbox_size_limit: 0,
            lock_wait: Duration::from_secs(5),
            extension_folders: false,
        }
    }

    fn run(home_mailbox: &str, req: &DeliveryRequest, root: &Path, home: &Path) -> DeliveryReply {
        let s = settings(home_mailbox);
        let conf = LocalConf::defaults(&["example.org", "mx.example.org"]);
        let mut fwd = crate::resubmit::CollectingForwarder::default();
        let home: PathBuf = home.to_path_buf();
        let users = move |name: &str| -> Result<Option<UserInfo>, String> {
            let me = Identity::current();
            Ok((name == "alice").then(|| UserInfo {
                name: name.to_string(),
                uid: me.uid,
                gid: me.gid,
                home: home.join(name),
            }))
        };
        let mut cx = Context {
            settings: &s,
            conf: &conf,
            users: &users,
            forwarder: &mut fwd,
        };
        crate::agent::handle_request(&mut cx, req, root, SystemTime::now())
    }

    fn statuses(reply: &DeliveryReply) -> Vec<DeliveryStatus> {
        let mut all: Vec<DeliveryStatus> = reply.results.iter().map(|r| r.status).collect();
        for m in &reply.more {
            all.extend(m.results.iter().map(|r| r.status));
        }
        all
    }

    fn done(root: &Path, id: &str) -> Vec<bool> {
        QueueFile::open(root, QueueName::Active, id)
            .unwrap()
            .envelope
            .recipients
            .iter()
            .map(|r| r.done)
            .collect()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn setup(tag: &str, n: usize) -> (TestDir, PathBuf, PathBuf, Vec<String>) {
        let t = TestDir::new(tag);
        let (root, home) = (t.path().join("queue"), t.path().join("home"));
        std::fs::create_dir_all(home.join("alice")).unwrap();
        let ids = (0..n)
            .map(|i| {
                let body = format!("Subject: m{i}\n\nbody {i}\n");
                queue_message(&root, &["alice@example.org"], body.as_bytes())
            })
            .collect();
        (t, root, home, ids)
    }

    #[test]
    fn a_batch_for_one_maildir_is_stored_once_and_its_marks_left_to_qmgr() {
        let (_t, root, home, ids) = setup("group", 3);
        let req = group(ids.iter().map(|id| request(&root, id)).collect());
        let reply = run("Maildir/", &req, &root, &home);
        assert_eq!(statuses(&reply), [DeliveryStatus::Sent; 3]);
        let more_ids: Vec<&str> = reply.more.iter().map(|m| m.queue_id.as_str()).collect();
        assert_eq!(more_ids, [ids[1].as_str(), ids[2].as_str()]);
        // Nothing marked by the agent: qmgr records the marks after the reply.
        for id in &ids {
            assert_eq!(done(&root, id), [false], "{id}");
        }
        let new = home.join("alice/Maildir/new");
        let stored = files(&new);
        assert_eq!(stored.len(), 3);
        for id in &ids {
            assert!(
                stored.iter().any(|f| f.contains(&format!("Q{id}_"))),
                "{id} in {stored:?}"
            );
        }
        // The batch again, as qmgr sends it after the agent was killed before its
        // reply: every copy is found, none stored twice, all reported delivered.
        let again = run("Maildir/", &req, &root, &home);
        assert_eq!(statuses(&again), [DeliveryStatus::Sent; 3]);
        assert_eq!(files(&new), stored);
        assert!(files(&home.join("alice/Maildir/tmp")).is_empty());
    }

    #[test]
    fn an_mbox_recipient_of_a_batch_is_marked_by_the_agent_at_once() {
        let (_t, root, home, ids) = setup("group-mbox", 2);
        let req = group(ids.iter().map(|id| request(&root, id)).collect());
        let reply = run("Mailbox", &req, &root, &home);
        assert_eq!(statuses(&reply), [DeliveryStatus::Sent; 2]);
        for id in &ids {
            assert_eq!(done(&root, id), [true], "{id}");
        }
        let mbox = std::fs::read_to_string(home.join("alice/Mailbox")).unwrap();
        assert_eq!(mbox.matches("\nSubject: m").count(), 2, "{mbox}");
    }

    #[test]
    fn a_message_of_a_batch_that_cannot_be_read_is_deferred_alone() {
        let (_t, root, home, ids) = setup("group-gone", 3);
        let req = group(ids.iter().map(|id| request(&root, id)).collect());
        std::fs::remove_file(root.join("active").join(&ids[1])).unwrap();
        let reply = run("Maildir/", &req, &root, &home);
        assert_eq!(
            statuses(&reply),
            [
                DeliveryStatus::Sent,
                DeliveryStatus::Deferred,
                DeliveryStatus::Sent
            ]
        );
        assert_eq!(files(&home.join("alice/Maildir/new")).len(), 2);
    }

    #[test]
    fn a_lost_directory_sync_defers_the_staged_copy() {
        let mut stage = Stage::default();
        let t = TestDir::new("group-lost");
        let md = t.path().join("Maildir");
        let placement = crate::maildir::Placement {
            stamp: None,
            sync_dir: false,
        };
        let stored =
            crate::maildir::deliver_placed(&md, b"x\n", "h", 0, nix::unistd::geteuid(), placement)
                .unwrap();
        let i = stage.add(stored, Identity::current());
        std::fs::remove_dir_all(md.join("new")).unwrap();
        stage.sync_all();
        let mut leaves = vec![Leaf {
            to: "alice@example.org".into(),
            result: Ok("delivered to maildir".into()),
            owner: None,
            passed: false,
            staged: Some(i),
        }];
        apply_durability(&stage, &mut leaves);
        let f = verdict(&leaves).unwrap_err();
        assert_eq!((f.permanent, f.dsn), (false, "4.3.0"));
        assert!(
            f.text.starts_with("maildir delivery failed: "),
            "{}",
            f.text
        );
    }
}
