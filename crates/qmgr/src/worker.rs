//! Delivery workers: one thread per agent stream, per destination. A worker sends its
//! requests one after another on the stream the agent keeps open (smtp, lmtp, local
//! answer keep_open; for other agents it connects again per request), so the agent's
//! next request is already waiting when it answers the last one, instead of after a
//! round trip through the main loop, which under load waits for a CPU at every wakeup.
//!
//! A destination never has more workers than its concurrency window: that many
//! deliveries at once, as Postfix counts them. The scheduler may hand out up to
//! [`crate::schedule::Limits::depth`] requests per window slot; the extra ones wait in
//! a worker's queue, never on a connection of their own. Workers are retired by the
//! main loop when idle (their queue empty) longer than the agent idle limit: dropping
//! the sender ends the thread, which closes the stream (and so the agent's cached
//! SMTP session). A worker never ends on its own, so no request sent to it is lost.
//!
//! An idle worker still holds its agent process, and master runs at most the
//! transport's maxproc of them. So when a destination needs a new worker and the
//! transport's workers already number its process limit, the longest-idle worker of
//! another destination is retired first: otherwise, with more destinations than
//! processes (a newsletter to 1 000 domains, 100 smtp processes), the new stream
//! waits for a process that an idle worker keeps for up to the agent idle limit, and
//! deliveries ran at about 100 per that limit, the CPUs idle.
//!
//! Per-recipient destinations (the local transport's) share the workers of their
//! transport and next hop (`Route::pool`): any idle one takes the next request, as any
//! idle local process takes Postfix's next delivery, so an idle stream never holds an
//! agent process for one mailbox while another mailbox's mail waits. For a group
//! commit the worker also records the done marks before it reports
//! (crate::group_commit).

use crate::event::{DeliveryOutcome, Event};
use crate::group_commit::{outcomes, record_done, Member};
use crate::ipc::{self, CallError};
use crate::route::Route;
use rostfix_proto::{DeliveryReply, DeliveryRequest};
use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::time::{Duration, Instant};

/// One request for a worker: what to send, and where.
#[derive(Debug)]
pub struct Job {
    pub request: DeliveryRequest,
    pub route: Route,
    /// `private/TRANSPORT`.
    pub path: PathBuf,
    /// The further messages of a group commit (`request.group.more`).
    pub members: Vec<Member>,
    /// For a group commit: queue_directory, where the worker records the done marks
    /// of the delivered recipients before it reports the outcome.
    pub commit_root: Option<PathBuf>,
}

impl Job {
    /// The job's outcome, one per message, given the agent's `reply`.
    fn outcome(
        self,
        reply: Result<DeliveryReply, CallError>,
        worker: Option<u64>,
    ) -> DeliveryOutcome {
        outcomes(
            self.request.queue_id.into(),
            self.route,
            self.request.recipients,
            self.members,
            reply,
            worker,
        )
    }
}

#[derive(Debug)]
struct Worker {
    id: u64,
    tx: Sender<Job>,
    /// Jobs sent and not yet reported back.
    queued: usize,
    idle_since: Instant,
}

/// Every destination's workers.
#[derive(Debug)]
pub struct Workers {
    by_route: HashMap<Route, Vec<Worker>>,
    next_id: u64,
    events: Sender<Event>,
    connect_timeout: Duration,
    io_timeout: Duration,
}

impl Workers {
    pub fn new(events: Sender<Event>, connect_timeout: Duration, io_timeout: Duration) -> Self {
        Workers {
            by_route: HashMap::new(),
            next_id: 0,
            events,
            connect_timeout,
            io_timeout,
        }
    }

    /// Gives `job` to a worker of `key` (its destination, or the shaping bucket the
    /// destination shares workers with): an idle one (its stream and the agent's
    /// session are reused), else a new one while the key has fewer than `window`, else
    /// the least busy. A new worker first makes room under the transport's
    /// `process_limit` (0: none) by retiring another destination's longest-idle
    /// worker. Err (with the job) when no thread could be started.
    pub fn assign(
        &mut self,
        job: Job,
        key: Route,
        window: usize,
        process_limit: usize,
    ) -> Result<(), Box<(Job, std::io::Error)>> {
        let needs_new = self
            .by_route
            .get(&key)
            .is_none_or(|l| !l.iter().any(|w| w.queued == 0) && l.len() < window.max(1));
        if needs_new && process_limit > 0 {
            self.make_room(&key, process_limit);
        }
        let list = self.by_route.entry(key).or_default();
        let idle = list.iter().position(|w| w.queued == 0);
        let pick = match idle {
            Some(i) => Some(i),
            None if list.len() < window.max(1) => None,
            None => list
                .iter()
                .enumerate()
                .min_by_key(|(_, w)| w.queued)
                .map(|(i, _)| i),
        };
        let index = match pick {
            Some(i) => i,
            None => {
                let id = self.next_id;
                self.next_id += 1;
                let tx = match spawn(
                    id,
                    self.events.clone(),
                    self.connect_timeout,
                    self.io_timeout,
                ) {
                    Ok(tx) => tx,
                    Err(e) => return Err(Box::new((job, e))),
                };
                list.push(Worker {
                    id,
                    tx,
                    queued: 0,
                    idle_since: Instant::now(),
                });
                list.len() - 1
            }
        };
        let worker = &mut list[index];
        // Cannot fail: a worker's thread ends only after its sender is dropped here.
        worker
            .tx
            .send(job)
            .map_err(|e| Box::new((e.0, std::io::Error::other("delivery worker has ended"))))?;
        worker.queued += 1;
        Ok(())
    }

    /// A job of worker `id` was reported (found by id: a job's worker may be keyed by
    /// a shaping bucket that was re-read since).
    pub fn done(&mut self, id: u64) {
        if let Some(w) = self
            .by_route
            .values_mut()
            .find_map(|l| l.iter_mut().find(|w| w.id == id))
        {
            w.queued = w.queued.saturating_sub(1);
            if w.queued == 0 {
                w.idle_since = Instant::now();
            }
        }
    }

    /// When `key`'s transport has `process_limit` workers or more, retires the
    /// longest-idle one of another destination (busy ones are left alone: the
    /// scheduler keeps deliveries in flight within the limit).
    fn make_room(&mut self, key: &Route, process_limit: usize) {
        let transport = &key.transport;
        let streams: usize = self
            .by_route
            .iter()
            .filter(|(r, _)| &r.transport == transport)
            .map(|(_, l)| l.len())
            .sum();
        if streams < process_limit {
            return;
        }
        let oldest = self
            .by_route
            .iter()
            .filter(|(r, _)| &r.transport == transport && *r != key)
            .flat_map(|(r, l)| {
                l.iter()
                    .filter(|w| w.queued == 0)
                    .map(move |w| (w.idle_since, w.id, r.clone()))
            })
            .min_by_key(|(since, id, _)| (*since, *id));
        if let Some((_, id, route)) = oldest {
            if let Some(list) = self.by_route.get_mut(&route) {
                // Dropping the sender ends the thread and closes the agent's stream.
                list.retain(|w| w.id != id);
                if list.is_empty() {
                    self.by_route.remove(&route);
                }
            }
        }
    }

    /// Ends workers idle longer than `limit` (every idle one when `all`); busy ones
    /// finish their queue first.
    pub fn retire_idle(&mut self, limit: Duration, all: bool) {
        self.by_route.retain(|_, list| {
            list.retain(|w| w.queued > 0 || (!all && w.idle_since.elapsed() < limit));
            !list.is_empty()
        });
    }

    /// Workers of `route` (for tests).
    #[cfg(test)]
    pub fn count(&self, route: &Route) -> usize {
        self.by_route.get(route).map_or(0, Vec::len)
    }
}

/// Starts worker `id`'s thread; it serves jobs until its sender is dropped.
fn spawn(
    id: u64,
    events: Sender<Event>,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> std::io::Result<Sender<Job>> {
    let (tx, rx) = channel::<Job>();
    std::thread::Builder::new()
        .name("deliver".into())
        .spawn(move || {
            let mut kept: Option<UnixStream> = None;
            while let Ok(mut job) = rx.recv() {
                let (reply, stream) = ipc::deliver_on(
                    kept.take(),
                    &job.path,
                    &job.request,
                    connect_timeout,
                    io_timeout,
                );
                kept = stream;
                let commit_root = job.commit_root.take();
                let outcome = job.outcome(reply, Some(id));
                if let Some(root) = commit_root {
                    record_done(&root, &outcome);
                }
                if events.send(Event::Delivered(outcome)).is_err() {
                    return; // the main loop is gone
                }
            }
        })?;
    Ok(tx)
}

/// The outcome of a job no worker could take.
pub fn unstarted(job: Job, e: std::io::Error) -> DeliveryOutcome {
    job.outcome(
        Err(CallError::Connect {
            path: "worker thread".into(),
            source: e,
        }),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::{
        read_message, write_message, DeliveryRecipient, DeliveryReply, DeliveryStatus,
        RecipientResult,
    };
    use std::os::unix::net::UnixListener;

    fn job(route: &Route, path: &std::path::Path, n: u64) -> Job {
        Job {
            request: DeliveryRequest {
                queue_name: rostfix_proto::QueueName::Active,
                queue_id: format!("ABCDEF{n}").parse().unwrap(),
                sender: String::new(),
                nexthop: route.nexthop.clone(),
                arrival: 0,
                recipients: vec![DeliveryRecipient {
                    offset: n,
                    address: "a@b".into(),
                    orig_address: "a@b".into(),
                }],
                activated: None,
                probe: false,
                shaping: None,
                group: None,
            },
            route: route.clone(),
            path: path.to_path_buf(),
            members: Vec::new(),
            commit_root: None,
        }
    }

    /// An agent that keeps its streams open and counts connections.
    fn agent(path: &std::path::Path) -> std::sync::mpsc::Receiver<()> {
        let listener = UnixListener::bind(path).unwrap();
        let (conn_tx, conn_rx) = channel();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { return };
                let _ = conn_tx.send(());
                std::thread::spawn(move || {
                    while let Ok(req) = read_message::<_, DeliveryRequest>(&mut s) {
                        let mut reply = DeliveryReply::new(vec![RecipientResult {
                            offset: req.recipients[0].offset,
                            status: DeliveryStatus::Sent,
                            dsn: "2.0.0".parse().unwrap(),
                            text: "ok".into(),
                            relay: "x".into(),
                            notify_sender: None,
                        }]);
                        reply.keep_open = true;
                        if write_message(&mut s, &reply).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        conn_rx
    }

    #[test]
    fn jobs_beyond_the_window_queue_on_existing_workers_and_streams() {
        let dir = std::env::temp_dir().join(format!("qmgr-worker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("local");
        let conns = agent(&path);
        let (events, rx) = channel();
        let mut w = Workers::new(events, Duration::from_secs(5), Duration::from_secs(5));
        let route = Route::new("local", "h");
        // Window 2, six jobs at once: two workers, three jobs each, two connections.
        for n in 0..6 {
            w.assign(job(&route, &path, n), route.clone(), 2, 0)
                .unwrap();
        }
        assert_eq!(w.count(&route), 2);
        let mut offsets = Vec::new();
        for _ in 0..6 {
            match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
                Event::Delivered(o) => {
                    assert!(o.reply.is_ok());
                    w.done(o.worker.unwrap());
                    offsets.push(o.requested[0].offset);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        offsets.sort_unstable();
        assert_eq!(offsets, [0, 1, 2, 3, 4, 5]);
        assert_eq!(conns.try_iter().count(), 2, "one connection per worker");
        // Idle workers are kept until the limit, then retired.
        w.retire_idle(Duration::from_secs(60), false);
        assert_eq!(w.count(&route), 2);
        w.retire_idle(Duration::from_secs(60), true);
        assert_eq!(w.count(&route), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_new_destination_takes_an_idle_process_at_the_process_limit() {
        let dir = std::env::temp_dir().join(format!("qmgr-worker-lim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("smtp");
        let _conns = agent(&path);
        let (events, rx) = channel();
        let mut w = Workers::new(events, Duration::from_secs(5), Duration::from_secs(5));
        let routes: Vec<Route> = ["a", "b", "c"]
            .iter()
            .map(|h| Route::new("smtp", *h))
            .collect();
        // Process limit 2: a and b each get a worker, which go idle.
        for (n, route) in routes[..2].iter().enumerate() {
            w.assign(job(route, &path, n as u64), route.clone(), 5, 2)
                .unwrap();
            match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
                Event::Delivered(o) => w.done(o.worker.unwrap()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((w.count(&routes[0]), w.count(&routes[1])), (1, 1));
        // c needs one: a's, idle longest, is retired for it.
        w.assign(job(&routes[2], &path, 2), routes[2].clone(), 5, 2)
            .unwrap();
        assert_eq!(
            (
                w.count(&routes[0]),
                w.count(&routes[1]),
                w.count(&routes[2])
            ),
            (0, 1, 1)
        );
        // An idle worker of the destination itself is reused, nothing retired.
        match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Event::Delivered(o) => w.done(o.worker.unwrap()),
            other => panic!("unexpected {other:?}"),
        }
        w.assign(job(&routes[1], &path, 3), routes[1].clone(), 5, 2)
            .unwrap();
        assert_eq!((w.count(&routes[1]), w.count(&routes[2])), (1, 1));
        // Without a limit nothing is retired.
        w.assign(job(&routes[0], &path, 4), routes[0].clone(), 5, 0)
            .unwrap();
        assert_eq!(
            (
                w.count(&routes[0]),
                w.count(&routes[1]),
                w.count(&routes[2])
            ),
            (1, 1, 1)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
