//! qmgr's side of a group commit (docs/performance.md, "Group commit of local
//! deliveries"): the scheduler hands out several queued requests for one recipient
//! together (schedule.rs, `next_batch`); the manager sends them to the local agent as
//! one request, the first message at the top and the others in `group.more`; here a
//! worker cuts the reply back into one outcome per message and, before reporting them
//! to the main loop, records the done marks of every delivered recipient with one
//! sync for the whole batch (rostfix_queue::mark_done_group). The main loop then
//! removes the finished files: never before their marks are durable, and the agent
//! answered only once the messages were durable in the mailbox.
//!
//! A reply that never comes (the agent was killed) defers every message of the batch;
//! the agent's stamped Maildir names make the retry find the copies it had stored.

use crate::event::DeliveryOutcome;
use crate::ipc::CallError;
use crate::route::Route;
use rostfix_proto::{DeliveryRecipient, DeliveryReply, DeliveryStatus};
use rostfix_queue::{mark_done_group, queue_path, QueueName};
use std::path::{Path, PathBuf};

/// A further message of a group commit, as the worker must know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub queue_id: String,
    pub requested: Vec<DeliveryRecipient>,
}

/// One outcome per message of a request: the first message's, with the others' in
/// `batched` (empty outside a group commit).
pub fn outcomes(
    queue_id: String,
    route: Route,
    requested: Vec<DeliveryRecipient>,
    members: Vec<Member>,
    reply: Result<DeliveryReply, CallError>,
    worker: Option<u64>,
) -> DeliveryOutcome {
    let (reply, parts) = split_reply(reply, &members);
    let batched = members
        .into_iter()
        .zip(parts)
        .map(|(m, reply)| DeliveryOutcome {
            queue_id: m.queue_id,
            route: route.clone(),
            requested: m.requested,
            reply,
            worker: None,
            batched: Vec::new(),
        })
        .collect();
    DeliveryOutcome {
        queue_id,
        route,
        requested,
        reply,
        worker,
        batched,
    }
}

/// The first message's reply and each member's, matched by position and checked by
/// queue id: a member the agent did not answer (or answered under another id) gets an
/// empty reply, which defers each of its recipients; a failed exchange fails them all.
fn split_reply(
    reply: Result<DeliveryReply, CallError>,
    members: &[Member],
) -> (
    Result<DeliveryReply, CallError>,
    Vec<Result<DeliveryReply, CallError>>,
) {
    match reply {
        Err(e) => {
            let text = e.to_string();
            let parts = members
                .iter()
                .map(|_| Err(CallError::Batched(text.clone())))
                .collect();
            (Err(e), parts)
        }
        Ok(mut head) => {
            let mut more = std::mem::take(&mut head.more).into_iter();
            let parts = members
                .iter()
                .map(|m| {
                    let results = match more.next() {
                        Some(b) if b.queue_id.as_str() == m.queue_id => b.results,
                        _ => Vec::new(),
                    };
                    Ok(DeliveryReply {
                        results,
                        ..DeliveryReply::new(Vec::new())
                    })
                })
                .collect();
            (Ok(head), parts)
        }
    }
}

/// The requested recipients a reply says were delivered.
fn sent_offsets(requested: &[DeliveryRecipient], reply: &DeliveryReply) -> Vec<u64> {
    reply
        .results
        .iter()
        .filter(|r| r.status == DeliveryStatus::Sent)
        .map(|r| r.offset)
        .filter(|off| requested.iter().any(|q| q.offset == *off))
        .collect()
}

/// Marks every delivered recipient of every message of `o` done in its queue file
/// (active/ under `root`) with one sync. A mark that fails is logged: the mail is in
/// the mailbox, so the recipient stays Sent (as when an agent cannot mark); a retry
/// after a crash would find the stamped Maildir copy.
pub fn record_done(root: &Path, o: &DeliveryOutcome) {
    let messages: Vec<&DeliveryOutcome> = std::iter::once(o).chain(o.batched.iter()).collect();
    let mut ids = Vec::new();
    let mut files: Vec<(PathBuf, Vec<u64>)> = Vec::new();
    for m in messages {
        let Ok(reply) = &m.reply else { continue };
        let offsets = sent_offsets(&m.requested, reply);
        if !offsets.is_empty() {
            ids.push(m.queue_id.as_str());
            files.push((queue_path(root, QueueName::Active, &m.queue_id), offsets));
        }
    }
    if files.is_empty() {
        return;
    }
    let marks = mark_done_group(&root.join(QueueName::Active.as_str()), &files);
    for (i, e) in &marks.failed {
        let id = ids.get(*i).copied().unwrap_or("");
        log::warn!("{id}: cannot mark delivered recipients done: {e}");
    }
    if let Err(e) = &marks.sync {
        log::warn!(
            "{}: cannot sync the done marks of {} message(s): {e}",
            o.queue_id,
            files.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::{BatchedResults, Dsn, QueueId, RecipientResult};
    use rostfix_queue::{Envelope, QueueFile, QueueWriter, Recipient};

    fn rcpt(offset: u64) -> DeliveryRecipient {
        DeliveryRecipient {
            offset,
            address: "a@h".into(),
            orig_address: "a@h".into(),
        }
    }

    fn result(offset: u64, status: DeliveryStatus) -> RecipientResult {
        RecipientResult {
            offset,
            status,
            dsn: Dsn::or_class("2.0.0", status),
            text: "x".into(),
            relay: "local".into(),
            notify_sender: None,
        }
    }

    fn member(id: &str, offset: u64) -> Member {
        Member {
            queue_id: id.into(),
            requested: vec![rcpt(offset)],
        }
    }

    #[test]
    fn a_reply_is_cut_into_one_outcome_per_message() {
        let mut reply = DeliveryReply::new(vec![result(1, DeliveryStatus::Sent)]);
        reply.keep_open = true;
        reply.more = vec![
            BatchedResults {
                queue_id: QueueId::new("BBBBBB").unwrap(),
                results: vec![result(2, DeliveryStatus::Deferred)],
            },
            // Answered under another id: not trusted.
            BatchedResults {
                queue_id: QueueId::new("FFFFFF").unwrap(),
                results: vec![result(3, DeliveryStatus::Sent)],
            },
        ];
        let o = outcomes(
            "AAAAAA".into(),
            Route::new("local", "h"),
            vec![rcpt(1)],
            vec![member("BBBBBB", 2), member("CCCCCC", 3)],
            Ok(reply),
            Some(4),
        );
        assert_eq!(o.worker, Some(4));
        assert!(o.reply.as_ref().unwrap().more.is_empty());
        assert_eq!(o.batched.len(), 2);
        assert_eq!(o.batched[0].queue_id, "BBBBBB");
        let b = o.batched[0].reply.as_ref().unwrap();
        assert_eq!(b.results[0].status, DeliveryStatus::Deferred);
        assert!(o.batched[1].reply.as_ref().unwrap().results.is_empty());
        assert!(o.batched.iter().all(|b| b.worker.is_none()));
    }

    #[test]
    fn a_failed_exchange_fails_every_message() {
        let e = CallError::Batched("agent went away".into());
        let o = outcomes(
            "AAAAAA".into(),
            Route::new("local", "h"),
            vec![rcpt(1)],
            vec![member("BBBBBB", 2)],
            Err(e),
            None,
        );
        assert!(o.reply.is_err());
        let err = o.batched[0].reply.as_ref().unwrap_err().to_string();
        assert_eq!(err, "agent went away");
    }

    #[test]
    fn delivered_recipients_of_every_message_are_marked_done() {
        let root = std::env::temp_dir().join(format!("qmgr-group-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("active")).unwrap();
        let queue = |rcpts: &[&str]| {
            let env = Envelope {
                sender: "s@h".into(),
                arrival_us: 1,
                attrs: vec![],
                recipients: rcpts
                    .iter()
                    .map(|a| Recipient {
                        address: a.to_string(),
                        orig_address: a.to_string(),
                        ..Recipient::default()
                    })
                    .collect(),
            };
            let mut w = QueueWriter::create(&root, QueueName::Active, &env).unwrap();
            w.write_content(b"x\n").unwrap();
            let id = w.commit().unwrap();
            let qf = QueueFile::open(&root, QueueName::Active, &id).unwrap();
            let offsets: Vec<u64> = qf.envelope.recipients.iter().map(|r| r.offset).collect();
            (id, offsets)
        };
        let (a, a_off) = queue(&["x@h"]);
        let (b, b_off) = queue(&["y@h"]);
        let mut reply = DeliveryReply::new(vec![result(a_off[0], DeliveryStatus::Sent)]);
        reply.more = vec![BatchedResults {
            queue_id: QueueId::new(b.as_str()).unwrap(),
            results: vec![result(b_off[0], DeliveryStatus::Deferred)],
        }];
        let o = outcomes(
            a.clone(),
            Route::new("local", "h"),
            vec![rcpt(a_off[0])],
            vec![member(&b, b_off[0])],
            Ok(reply),
            None,
        );
        record_done(&root, &o);
        let done = |id: &str| {
            QueueFile::open(&root, QueueName::Active, id)
                .unwrap()
                .envelope
                .recipients[0]
                .done
        };
        assert!(done(&a), "delivered: marked");
        assert!(!done(&b), "deferred: left pending");
        let _ = std::fs::remove_dir_all(&root);
    }
}
