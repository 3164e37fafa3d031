//! Tests of the main loop against the real queue library and fake delivery agents and
//! bounce service on unix sockets in a temporary queue directory.

use super::recovery::Orphans;
use super::scan::SLICE_MESSAGES as SLICE;
use super::*;
use crate::backoff::RetryPolicy;
use crate::schedule::{Limits, TransportPolicy};
use rostfix_proto::{
    read_message, write_message, BounceReply, BounceRequest, DeliveryReply, DeliveryStatus,
    NoticeKind, RecipientResult,
};
use rostfix_queue::{
    queue_path, read_defer_reasons, set_retry_time, Envelope, QueueWriter, Recipient,
};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

fn queue_root(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("qm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in [
        "incoming", "active", "deferred", "hold", "corrupt", "defer", "bounce", "private", "public",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("create queue dir");
    }
    root
}

fn settings() -> Settings {
    let mut per_transport = HashMap::new();
    per_transport.insert(
        "local".to_string(),
        TransportPolicy {
            concurrency_limit: 2,
            recipient_limit: 1,
            ..TransportPolicy::default()
        },
    );
    Settings {
        limits: Limits {
            // One failure at concurrency 1 marks a destination dead.
            default: TransportPolicy {
                initial_concurrency: 1,
                ..TransportPolicy::default()
            },
            per_transport,
            total_concurrency: 100,
            dead_time: Duration::from_secs(300),
            pipeline_depth: 1,
        },
        retry: RetryPolicy {
            minimal_backoff: 300,
            maximal_backoff: 4000,
            maximal_queue_lifetime: 5 * 86400,
            bounce_queue_lifetime: 5 * 86400,
        },
        queue_run_delay: Duration::from_secs(300),
        active_limit: 100,
        recipient_limit: 1000,
        ipc_timeout: Duration::from_secs(10),
        delay_warning: 0,
        agent_idle_limit: Duration::from_secs(2),
        default_filter_nexthop: String::new(),
        myhostname: "mail.example.org".into(),
        verp_filter: "-=+".into(),
    }
}

fn resolver() -> Resolver {
    Resolver::from_main_cf_text(
        "myhostname = mail.example.org\nmydomain = example.org\nmyorigin = example.org\n\
         mydestination = mail.example.org, localhost\n\
         virtual_alias_maps = inline:{ { team@virt.example = bob@localhost, carol@example.net } }\n\
         virtual_alias_domains = virt.example\n\
         transport_maps = inline:{ { gone.example = error:5.1.2 domain is gone }, trash.example=discard: }\n",
    )
    .expect("resolver")
}

fn queue_message(root: &Path, sender: &str, rcpts: &[&str], arrival: i64) -> String {
    queue_message_notify(root, sender, rcpts, arrival, "")
}

fn queue_message_notify(
    root: &Path,
    sender: &str,
    rcpts: &[&str],
    arrival: i64,
    notify: &str,
) -> String {
    queue_message_attrs(root, sender, rcpts, arrival, notify, vec![])
}

fn queue_message_attrs(
    root: &Path,
    sender: &str,
    rcpts: &[&str],
    arrival: i64,
    notify: &str,
    attrs: Vec<(String, String)>,
) -> String {
    let env = Envelope {
        sender: sender.into(),
        arrival_us: arrival * 1_000_000,
        attrs,
        recipients: rcpts
            .iter()
            .map(|a| Recipient {
                address: a.to_string(),
                orig_address: a.to_string(),
                notify: notify.to_string(),
                ..Recipient::default()
            })
            .collect(),
    };
    let mut w = QueueWriter::create(root, QueueName::Incoming, &env).expect("create");
    w.write_content(b"Subject: test\n\nhello\n")
        .expect("content");
    w.commit().expect("commit")
}

/// A fake delivery agent: `verdict(address)` decides each recipient; sent ones are
/// marked done in the queue file first, as real agents do.
fn agent(
    root: &Path,
    name: &str,
    verdict: fn(&str) -> DeliveryStatus,
) -> Arc<Mutex<Vec<DeliveryRequest>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = UnixListener::bind(root.join("private").join(name)).expect("bind agent");
    let (root, log, name) = (root.to_path_buf(), Arc::clone(&seen), name.to_string());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let Ok(req) = read_message::<_, DeliveryRequest>(&mut s) else {
                continue;
            };
            let mut results = Vec::new();
            for r in &req.recipients {
                let status = verdict(&r.address);
                if status == DeliveryStatus::Sent {
                    let path = queue_path(&root, QueueName::Active, &req.queue_id);
                    QueueFile::mark_done(&path, r.offset).expect("agent marks done");
                }
                let (dsn, text) = match status {
                    DeliveryStatus::Sent => ("2.0.0", "delivered to mailbox"),
                    DeliveryStatus::Deferred => ("4.4.1", "connection refused"),
                    DeliveryStatus::Bounced => ("5.1.1", "unknown user"),
                };
                results.push(RecipientResult {
                    offset: r.offset,
                    status,
                    dsn: dsn.parse().unwrap(),
                    text: text.into(),
                    relay: name.clone(),
                    notify_sender: None,
                });
            }
            log.lock().expect("lock").push(req);
            let _ = write_message(&mut s, &DeliveryReply::new(results));
        }
    });
    seen
}

/// A fake bounce service answering every request with `reply`.
fn bounce_service(root: &Path, reply: BounceReply) -> Arc<Mutex<Vec<BounceRequest>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = UnixListener::bind(root.join("private").join("bounce")).expect("bind bounce");
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let Ok(req) = read_message::<_, BounceRequest>(&mut s) else {
                continue;
            };
            log.lock().expect("lock").push(req);
            let _ = write_message(&mut s, &reply);
        }
    });
    seen
}

fn local_verdict(address: &str) -> DeliveryStatus {
    if address.starts_with("dave") {
        DeliveryStatus::Bounced
    } else {
        DeliveryStatus::Sent
    }
}

fn always_defer(_: &str) -> DeliveryStatus {
    DeliveryStatus::Deferred
}

fn manager(root: &Path) -> (Manager, Receiver<Event>) {
    let (tx, rx) = std::sync::mpsc::channel();
    (
        Manager::new(root.to_path_buf(), settings(), resolver(), tx),
        rx,
    )
}

/// Drives the loop until no message is active (or a deadline passes).
fn run_until_idle(m: &mut Manager, rx: &Receiver<Event>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    m.dispatch();
    while !m.messages.is_empty() && Instant::now() < deadline {
        if let Ok(ev) = rx.recv_timeout(Duration::from_millis(200)) {
            m.handle(ev);
        }
        m.dispatch();
    }
    assert!(
        m.messages.is_empty(),
        "messages still active: {:?}",
        m.messages.keys().collect::<Vec<_>>()
    );
    assert_eq!(m.sched.in_flight(), 0);
    assert_eq!(m.bounce_jobs, 0);
}

fn exists(root: &Path, q: QueueName, id: &str) -> bool {
    queue_path(root, q, id).exists()
}

#[test]
fn wakeups_only_ask_for_a_scan_which_the_loop_turn_makes_once() {
    let root = queue_root("wakeup");
    let (mut m, _rx) = manager(&root);
    m.scan_incoming();
    m.scan_deferred(false);
    let id = queue_message(&root, "alice@example.org", &["x@trash.example"], now_secs());
    for _ in 0..3 {
        m.handle(Event::Trigger(Trigger::Wakeup));
    }
    assert!(
        exists(&root, QueueName::Incoming, &id),
        "scanned by a wakeup itself"
    );
    assert!(m.scan_wanted);
    m.after_events();
    assert!(!m.scan_wanted);
    // Activated and discarded by that one scan.
    assert!(!exists(&root, QueueName::Incoming, &id));
    assert!(!exists(&root, QueueName::Active, &id));
    assert!(m.messages.is_empty());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn all_sent_removes_the_file() {
    let root = queue_root("sent");
    let local = agent(&root, "local", local_verdict);
    let id = queue_message(
        &root,
        "alice@example.org",
        &["bob@localhost", "root"],
        now_secs(),
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    for q in [QueueName::Incoming, QueueName::Active, QueueName::Deferred] {
        assert!(!exists(&root, q, &id), "{id} left in {q:?}");
    }
    let reqs = local.lock().expect("lock");
    assert_eq!(reqs.len(), 2, "one recipient per local request");
    assert!(reqs.iter().all(|r| r.nexthop == "mail.example.org"
        && r.queue_name == rostfix_proto::QueueName::Active
        && r.sender == "alice@example.org"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn mixed_results_defer_the_message_and_bounce_the_failed() {
    let root = queue_root("mixed");
    let _local = agent(&root, "local", local_verdict);
    let smtp = agent(&root, "smtp", always_defer);
    let bounces = bounce_service(&root, BounceReply::Queued("B0000001".into()));
    let id = queue_message(
        &root,
        "alice@example.org",
        &["bob@localhost", "dave@localhost", "carol@Example.NET"],
        now_secs(),
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);

    assert!(exists(&root, QueueName::Deferred, &id));
    assert!(!exists(&root, QueueName::Active, &id));
    let qf = QueueFile::open(&root, QueueName::Deferred, &id).expect("deferred file");
    let pending: Vec<&str> = qf.pending().map(|r| r.address.as_str()).collect();
    assert_eq!(
        pending,
        ["carol@Example.NET"],
        "sent and bounced recipients are done"
    );

    let b = bounces.lock().expect("lock");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].sender, "alice@example.org");
    assert_eq!(b[0].recipients.len(), 1);
    assert_eq!(b[0].recipients[0].address, "dave@localhost");
    assert_eq!(b[0].recipients[0].dsn, "5.1.1");

    assert_eq!(smtp.lock().expect("lock")[0].nexthop, "example.net");
    let reasons = read_defer_reasons(&root, &id).expect("defer log");
    assert_eq!(
        reasons,
        vec![(
            "carol@Example.NET".to_string(),
            "connection refused".to_string()
        )]
    );

    let mtime = std::fs::metadata(queue_path(&root, QueueName::Deferred, &id))
        .and_then(|md| md.modified())
        .expect("mtime")
        .duration_since(UNIX_EPOCH)
        .expect("after epoch")
        .as_secs() as i64;
    assert!(
        (now_secs() + 295..=now_secs() + 305).contains(&mtime),
        "retry in minimal_backoff_time"
    );

    // Not due yet: a normal deferred scan leaves it alone.
    m.scan_deferred(false);
    assert!(m.messages.is_empty());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn missing_agent_defers_with_transport_unavailable() {
    let root = queue_root("noagent");
    let id = queue_message(
        &root,
        "alice@example.org",
        &["carol@example.net"],
        now_secs(),
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    assert!(exists(&root, QueueName::Deferred, &id));
    let reasons = read_defer_reasons(&root, &id).expect("defer log");
    assert_eq!(
        reasons,
        vec![(
            "carol@example.net".to_string(),
            "mail transport unavailable".to_string()
        )]
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn expired_message_is_returned_to_sender_and_removed() {
    let root = queue_root("expired");
    let _smtp = agent(&root, "smtp", always_defer);
    let bounces = bounce_service(&root, BounceReply::Queued("B0000002".into()));
    let id = queue_message(
        &root,
        "alice@example.org",
        &["carol@example.net"],
        now_secs() - 6 * 86400,
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    for q in [QueueName::Active, QueueName::Deferred] {
        assert!(!exists(&root, q, &id), "{id} left in {q:?}");
    }
    let b = bounces.lock().expect("lock");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].recipients[0].dsn, "4.4.7");
    assert_eq!(
        b[0].recipients[0].text,
        "message delivery timed out: connection refused"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn failed_bounce_keeps_the_recipient_queued() {
    let root = queue_root("bouncefail");
    let _local = agent(&root, "local", local_verdict);
    let _bounce = bounce_service(&root, BounceReply::Failed("disk full".into()));
    let id = queue_message(&root, "alice@example.org", &["dave@localhost"], now_secs());
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    let qf = QueueFile::open(&root, QueueName::Deferred, &id).expect("deferred");
    assert_eq!(qf.pending().count(), 1);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn corrupt_file_goes_to_corrupt() {
    let root = queue_root("corrupt");
    std::fs::write(
        root.join("incoming").join("ABCDEF12345"),
        b"this is not a queue file",
    )
    .expect("write");
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    assert!(exists(&root, QueueName::Corrupt, "ABCDEF12345"));
    assert!(!exists(&root, QueueName::Active, "ABCDEF12345"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn recover_then_flush_id_delivers_a_deferred_message_now() {
    let root = queue_root("recover");
    let local = agent(&root, "local", local_verdict);
    let id = queue_message(&root, "alice@example.org", &["bob@localhost"], now_secs());
    // A crash left it in active/.
    move_file(&root, QueueName::Incoming, QueueName::Active, &id).expect("move");
    let (mut m, rx) = manager(&root);
    m.recover();
    assert!(exists(&root, QueueName::Incoming, &id));
    // Pretend it was deferred until far in the future.
    move_file(&root, QueueName::Incoming, QueueName::Deferred, &id).expect("move");
    set_retry_time(
        &queue_path(&root, QueueName::Deferred, &id),
        system_time(now_secs() + 86400),
    )
    .expect("mtime");
    m.scan_deferred(false);
    assert!(m.messages.is_empty(), "not due");
    m.on_trigger(Trigger::FlushId(id.clone()));
    run_until_idle(&mut m, &rx);
    assert_eq!(local.lock().expect("lock").len(), 1);
    assert!(!exists(&root, QueueName::Deferred, &id));
    let _ = std::fs::remove_dir_all(&root);
}

fn dead_verdict(address: &str) -> DeliveryStatus {
    if address.ends_with("@dead.example") {
        DeliveryStatus::Deferred
    } else {
        DeliveryStatus::Sent
    }
}

#[test]
fn virtual_aliases_are_expanded_once_and_stored_before_delivery() {
    let root = queue_root("valias");
    let local = agent(&root, "local", local_verdict);
    let smtp = agent(&root, "smtp", always_defer);
    let id = queue_message(
        &root,
        "alice@example.org",
        &["team@virt.example", "nobody@virt.example"],
        now_secs(),
    );
    let bounces = bounce_service(&root, BounceReply::Queued("B0000003".into()));
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    // bob was delivered locally, carol deferred remotely, nobody bounced (no mapping).
    assert_eq!(
        local.lock().expect("lock")[0].recipients[0].address,
        "bob@localhost"
    );
    assert_eq!(
        local.lock().expect("lock")[0].recipients[0].orig_address,
        "team@virt.example"
    );
    assert_eq!(
        smtp.lock().expect("lock")[0].recipients[0].address,
        "carol@example.net"
    );
    let b = bounces.lock().expect("lock");
    assert_eq!(b[0].recipients[0].address, "nobody@virt.example");
    assert_eq!(b[0].recipients[0].dsn, "5.1.1");
    assert_eq!(
        b[0].recipients[0].text,
        "User unknown in virtual alias table"
    );
    let qf = QueueFile::open(&root, QueueName::Deferred, &id).expect("deferred");
    assert_eq!(qf.envelope.attr("alias_expanded"), Some("1"));
    let all: Vec<(&str, bool)> = qf
        .envelope
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.done))
        .collect();
    assert_eq!(
        all,
        [
            ("bob@localhost", true),
            ("carol@example.net", false),
            ("nobody@virt.example", true)
        ]
    );
    // A retry does not expand again.
    m.on_trigger(Trigger::Flush);
    run_until_idle(&mut m, &rx);
    let qf = QueueFile::open(&root, QueueName::Deferred, &id).expect("deferred");
    assert_eq!(qf.envelope.recipients.len(), 3);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn error_and_discard_transports_are_handled_by_qmgr() {
    let root = queue_root("builtin");
    let bounces = bounce_service(&root, BounceReply::Queued("B0000004".into()));
    let id = queue_message(
        &root,
        "alice@example.org",
        &["a@gone.example", "b@trash.example"],
        now_secs(),
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    for q in [QueueName::Active, QueueName::Deferred] {
        assert!(!exists(&root, q, &id));
    }
    let b = bounces.lock().expect("lock");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].recipients[0].address, "a@gone.example");
    assert_eq!(b[0].recipients[0].dsn, "5.1.2");
    assert_eq!(b[0].recipients[0].text, "domain is gone");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_dead_destination_does_not_hold_other_mail() {
    let root = queue_root("dead");
    let smtp = agent(&root, "smtp", dead_verdict);
    let m1 = queue_message(&root, "alice@example.org", &["x@dead.example"], now_secs());
    let m2 = queue_message(&root, "alice@example.org", &["y@dead.example"], now_secs());
    let m3 = queue_message(&root, "alice@example.org", &["z@ok.example"], now_secs());
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    let seen = smtp.lock().expect("lock");
    let to_dead = seen.iter().filter(|r| r.nexthop == "dead.example").count();
    assert_eq!(
        to_dead, 1,
        "after the failure the destination is not tried again"
    );
    assert!(
        !exists(&root, QueueName::Deferred, &m3),
        "ok.example delivered"
    );
    assert!(exists(&root, QueueName::Deferred, &m1));
    assert!(exists(&root, QueueName::Deferred, &m2));
    let reasons = read_defer_reasons(&root, &m2).expect("log");
    assert_eq!(
        reasons[0].1,
        "delivery temporarily suspended: connection refused"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn notify_success_gets_a_success_notice() {
    let root = queue_root("success");
    let _local = agent(&root, "local", local_verdict);
    let bounces = bounce_service(&root, BounceReply::Queued("B0000005".into()));
    let id = queue_message_notify(
        &root,
        "alice@example.org",
        &["bob@localhost"],
        now_secs(),
        "SUCCESS,FAILURE",
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    assert!(!exists(&root, QueueName::Active, &id));
    let b = bounces.lock().expect("lock");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].kind, NoticeKind::Success);
    assert_eq!(b[0].recipients[0].action, "delivered");
    assert_eq!(b[0].recipients[0].dsn, "2.0.0");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn flush_site_requeues_only_that_destination() {
    let root = queue_root("site");
    let a = queue_message(&root, "alice@example.org", &["u@a.example"], now_secs());
    let b = queue_message(&root, "alice@example.org", &["u@b.example"], now_secs());
    for id in [&a, &b] {
        move_file(&root, QueueName::Incoming, QueueName::Deferred, id).expect("move");
        set_retry_time(
            &queue_path(&root, QueueName::Deferred, id),
            system_time(now_secs() + 86400),
        )
        .expect("mtime");
    }
    let smtp = agent(&root, "smtp", local_verdict);
    let (mut m, rx) = manager(&root);
    m.on_trigger(Trigger::FlushSite("A.example".into()));
    run_until_idle(&mut m, &rx);
    assert!(!exists(&root, QueueName::Deferred, &a));
    assert!(exists(&root, QueueName::Deferred, &b));
    assert_eq!(smtp.lock().expect("lock").len(), 1);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_new_qmgr_leaves_the_old_ones_messages_alone_until_it_lets_go() {
    let root = queue_root("handover");
    let local = agent(&root, "local", local_verdict);
    let id = queue_message(&root, "alice@example.org", &["bob@localhost"], now_secs());
    // The old qmgr activated the message (its delivery is about to start).
    let (mut old, _old_rx) = manager(&root);
    old.scan_incoming();
    assert!(old.messages.contains_key(&id));
    assert!(exists(&root, QueueName::Active, &id));
    // A reload starts a new qmgr while the old one still owns the file.
    let (mut new, rx) = manager(&root);
    new.recover();
    assert!(
        exists(&root, QueueName::Active, &id),
        "requeued under the old qmgr"
    );
    new.scan_incoming();
    assert!(new.messages.is_empty());
    assert_eq!(new.recover_orphans().busy, 1);
    // The old qmgr exits with the message not started: the file is an orphan now.
    drop(old);
    let found = new.recover_orphans();
    assert_eq!((found.requeued, found.busy), (1, 0));
    new.scan_incoming();
    run_until_idle(&mut new, &rx);
    assert_eq!(local.lock().expect("lock").len(), 1, "delivered once");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_message_skipped_by_one_scan_is_not_delivered_by_two_managers() {
    let root = queue_root("twoscans");
    let id = queue_message(&root, "alice@example.org", &["bob@localhost"], now_secs());
    let (mut first, _rx1) = manager(&root);
    first.scan_incoming();
    // Another qmgr sees the file back in incoming/ while the first still holds it
    // (as when the first was moving it out): it must not take it.
    move_file(&root, QueueName::Active, QueueName::Incoming, &id).expect("move");
    let (mut second, _rx2) = manager(&root);
    second.scan_incoming();
    assert!(second.messages.is_empty(), "owned by the first qmgr");
    assert!(exists(&root, QueueName::Active, &id));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_failed_move_to_deferred_is_retried_until_it_works() {
    let root = queue_root("stranded");
    let _local = agent(&root, "local", always_defer);
    let id = queue_message(&root, "alice@example.org", &["bob@localhost"], now_secs());
    // deferred/ cannot take the file (as on a full file system).
    std::fs::remove_dir_all(root.join("deferred")).expect("rmdir");
    std::fs::write(root.join("deferred"), b"").expect("block it");
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    assert!(exists(&root, QueueName::Active, &id), "stranded in active");
    assert_eq!(m.stranded.len(), 1);
    // Still owned: another qmgr would not requeue it meanwhile.
    assert_eq!(m.recover_orphans(), Orphans::default());
    m.retry_stranded();
    assert_eq!(m.stranded.len(), 1, "kept while the move fails");
    // Space returns.
    std::fs::remove_file(root.join("deferred")).expect("unblock");
    std::fs::create_dir(root.join("deferred")).expect("mkdir");
    m.after_events();
    assert!(m.stranded.is_empty());
    assert!(exists(&root, QueueName::Deferred, &id));
    assert!(!exists(&root, QueueName::Active, &id));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_filter_attribute_overrides_every_recipients_route() {
    let root = queue_root("filter");
    let scan = agent(&root, "scan", local_verdict);
    let local = agent(&root, "local", local_verdict);
    let filter = |v: &str| vec![("filter".to_string(), v.to_string())];
    // Local, remote and error-routed recipients alike go to the filter.
    let id = queue_message_attrs(
        &root,
        "alice@example.org",
        &["bob@localhost", "x@remote.example", "a@gone.example"],
        now_secs(),
        "",
        filter("scan:[127.0.0.1]:10024"),
    );
    // No destination: the recipient's domain, as Postfix's qmgr.
    queue_message_attrs(
        &root,
        "alice@example.org",
        &["y@other.example"],
        now_secs(),
        "",
        filter("scan:"),
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    assert!(!exists(&root, QueueName::Active, &id));
    assert!(
        local.lock().expect("lock").is_empty(),
        "filtered mail went to local"
    );
    let reqs = scan.lock().expect("lock");
    let mut seen: Vec<(String, String)> = reqs
        .iter()
        .flat_map(|r| {
            r.recipients
                .iter()
                .map(|x| (x.address.clone(), r.nexthop.clone()))
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "a@gone.example".to_string(),
                "[127.0.0.1]:10024".to_string()
            ),
            ("bob@localhost".to_string(), "[127.0.0.1]:10024".to_string()),
            (
                "x@remote.example".to_string(),
                "[127.0.0.1]:10024".to_string()
            ),
            ("y@other.example".to_string(), "other.example".to_string()),
        ]
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_bad_filter_attribute_defers_instead_of_skipping_the_filter() {
    let root = queue_root("badfilter");
    let local = agent(&root, "local", local_verdict);
    let id = queue_message_attrs(
        &root,
        "alice@example.org",
        &["bob@localhost"],
        now_secs(),
        "",
        vec![("filter".to_string(), "../../x:y".to_string())],
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    assert!(local.lock().expect("lock").is_empty());
    assert!(exists(&root, QueueName::Deferred, &id));
    let _ = std::fs::remove_dir_all(&root);
}

/// A fake verify service recording every request.
fn verify_service(root: &Path) -> Arc<Mutex<Vec<rostfix_proto::VerifyRequest>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = UnixListener::bind(root.join("private").join("verify")).expect("bind verify");
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let Ok(req) = read_message::<_, rostfix_proto::VerifyRequest>(&mut s) else {
                continue;
            };
            log.lock().expect("lock").push(req);
            let _ = write_message(&mut s, &rostfix_proto::VerifyReply::Updated);
        }
    });
    seen
}

#[test]
fn a_probe_reports_to_verify_and_is_never_bounced_or_retried() {
    use rostfix_proto::{VerifyRequest, VerifyStatus};
    let root = queue_root("probe");
    let local = agent(&root, "local", local_verdict);
    let smtp = agent(&root, "smtp", always_defer);
    let bounces = bounce_service(&root, BounceReply::Queued("B0000001".into()));
    let verify = verify_service(&root);
    let id = queue_message_attrs(
        &root,
        "double-bounce@example.org",
        &["bob@localhost", "dave@localhost", "carol@Example.NET"],
        now_secs(),
        "",
        vec![("verify_probe".into(), "1".into())],
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);

    assert!(local.lock().expect("lock").iter().all(|r| r.probe));
    assert!(smtp.lock().expect("lock").iter().all(|r| r.probe));
    assert!(
        bounces.lock().expect("lock").is_empty(),
        "a probe is never bounced"
    );
    for q in [QueueName::Active, QueueName::Deferred, QueueName::Incoming] {
        assert!(!exists(&root, q, &id), "probe left in {q:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while verify.lock().expect("lock").len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut got: Vec<(String, VerifyStatus, String)> = verify
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|r| match r {
            VerifyRequest::Update {
                address,
                status,
                text,
            } => Some((address.clone(), *status, text.clone())),
            VerifyRequest::Query { .. } => None,
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (
                "bob@localhost".to_string(),
                VerifyStatus::Deliverable,
                "delivered to mailbox".to_string()
            ),
            (
                "carol@Example.NET".to_string(),
                VerifyStatus::Deferred,
                "connection refused".to_string()
            ),
            (
                "dave@localhost".to_string(),
                VerifyStatus::Undeliverable,
                "unknown user".to_string()
            ),
        ]
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn verp_gives_each_recipient_its_own_request_and_sender() {
    let root = queue_root("verp");
    let smtp = agent(&root, "smtp", local_verdict);
    let verp = vec![("verp_delimiters".to_string(), "+=".to_string())];
    queue_message_attrs(
        &root,
        "news@example.org",
        &["ann@far.example", "bob@far.example"],
        now_secs(),
        "",
        verp,
    );
    // Delimiters outside verp_delimiter_filter: delivered, but with the plain sender.
    let bad = vec![("verp_delimiters".to_string(), "#=".to_string())];
    queue_message_attrs(
        &root,
        "plain@example.org",
        &["cy@far.example", "dee@far.example"],
        now_secs(),
        "",
        bad,
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    let reqs = smtp.lock().expect("lock");
    let mut seen: Vec<(String, Vec<String>)> = reqs
        .iter()
        .map(|r| {
            let rcpts = r.recipients.iter().map(|x| x.address.clone()).collect();
            (r.sender.clone(), rcpts)
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "news+ann=far.example@example.org".into(),
                vec!["ann@far.example".into()]
            ),
            (
                "news+bob=far.example@example.org".into(),
                vec!["bob@far.example".into()]
            ),
            (
                "plain@example.org".into(),
                vec!["cy@far.example".into(), "dee@far.example".into()]
            ),
        ]
    );
    let _ = std::fs::remove_dir_all(&root);
}

fn batching_settings() -> Settings {
    let mut s = settings();
    if let Some(p) = s.limits.per_transport.get_mut("local") {
        p.batch_limit = 32;
        p.batch_size_limit = 0;
    }
    s
}

/// A fake local agent that speaks the group commit: it marks nothing (qmgr records
/// the marks), answers every message of a request, keeps the stream open; with
/// `hang_up` it closes the stream instead of answering (an agent killed mid-batch).
fn group_agent(root: &Path, hang_up: bool) -> Arc<Mutex<Vec<DeliveryRequest>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = UnixListener::bind(root.join("private").join("local")).expect("bind agent");
    let (root, log) = (root.to_path_buf(), Arc::clone(&seen));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let (root, log) = (root.clone(), Arc::clone(&log));
            std::thread::spawn(move || {
                while let Ok(req) = read_message::<_, DeliveryRequest>(&mut s) {
                    log.lock().expect("lock").push(req.clone());
                    if hang_up {
                        return;
                    }
                    let replies = req
                        .messages()
                        .into_iter()
                        .map(|m| {
                            // Nothing is marked before qmgr hears of the delivery.
                            let qf = QueueFile::open(&root, QueueName::Active, &m.queue_id)
                                .expect("queued");
                            assert!(qf.envelope.recipients.iter().all(|r| !r.done));
                            let results = m
                                .recipients
                                .iter()
                                .map(|r| RecipientResult {
                                    offset: r.offset,
                                    status: DeliveryStatus::Sent,
                                    dsn: "2.0.0".parse().unwrap(),
                                    text: "delivered to maildir".into(),
                                    relay: "local".into(),
                                    notify_sender: None,
                                })
                                .collect();
                            (m.queue_id.clone(), DeliveryReply::new(results))
                        })
                        .collect();
                    let mut reply = DeliveryReply::merged(replies);
                    reply.keep_open = true;
                    if write_message(&mut s, &reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    seen
}

/// `n` messages for bob@localhost delivered by a [`group_agent`] through a manager
/// with the group commit on, until nothing is active.
#[allow(clippy::type_complexity)]
fn group_run(
    name: &str,
    hang_up: bool,
    n: usize,
) -> (
    PathBuf,
    Arc<Mutex<Vec<DeliveryRequest>>>,
    Vec<String>,
    Manager,
    Receiver<Event>,
) {
    let root = queue_root(name);
    let local = group_agent(&root, hang_up);
    let ids: Vec<String> = (0..n)
        .map(|_| queue_message(&root, "alice@example.org", &["bob@localhost"], now_secs()))
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut m = Manager::new(root.clone(), batching_settings(), resolver(), tx);
    m.scan_incoming();
    run_until_idle(&mut m, &rx);
    (root, local, ids, m, rx)
}

#[test]
fn mail_for_one_mailbox_goes_in_group_commits_and_qmgr_marks_it_done() {
    let (root, local, ids, _m, _rx) = group_run("group", false, 7);
    for id in &ids {
        for q in [QueueName::Incoming, QueueName::Active, QueueName::Deferred] {
            assert!(!exists(&root, q, id), "{id} left in {q:?}");
        }
    }
    let reqs = local.lock().expect("lock");
    assert!(
        reqs.iter().all(|r| r.group.is_some()),
        "every request a group commit"
    );
    let messages: usize = reqs.iter().map(|r| r.messages().len()).sum();
    assert_eq!(messages, 7, "each message once");
    // Seven messages, two slots for the one mailbox: two batches (4 + 3).
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_group_commit_without_a_reply_defers_every_message_unmarked() {
    let (root, local, ids, mut m, rx) = group_run("group-hangup", true, 3);
    for id in &ids {
        assert!(exists(&root, QueueName::Deferred, id), "{id} deferred");
        let qf = QueueFile::open(&root, QueueName::Deferred, id).expect("readable");
        assert!(!qf.envelope.recipients[0].done, "{id} not marked");
    }
    assert!(local
        .lock()
        .expect("lock")
        .iter()
        .all(|r| !r.group.as_ref().unwrap().retry));
    // The retry tells the agent to look among the mailbox's read messages too (the
    // failures marked the mailbox dead: revived as `rostqueue -s` would).
    let before = local.lock().expect("lock").len();
    assert!(m.sched.revive_site("mail.example.org") > 0);
    m.scan_deferred(true);
    run_until_idle(&mut m, &rx);
    let reqs = local.lock().expect("lock");
    assert!(reqs.len() > before, "sent again");
    let last = reqs.last().expect("retried");
    let g = last.group.as_ref().expect("group commit");
    assert!(g.retry && g.more.iter().all(|b| b.retry), "{last:?}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn scans_take_a_slice_per_turn_so_dispatch_is_not_held_back() {
    let root = queue_root("slices");
    let total = SLICE + 100;
    let ids: Vec<String> = (0..total)
        .map(|_| {
            queue_message(
                &root,
                "alice@example.org",
                &["carol@example.net"],
                now_secs(),
            )
        })
        .collect();
    let mut s = settings();
    s.active_limit = 2 * total;
    s.recipient_limit = 2 * total;
    let (tx, _rx) = std::sync::mpsc::channel();
    let mut m = Manager::new(root.clone(), s.clone(), resolver(), tx);

    // incoming/: one slice, then the flag that has the loop come back at once.
    m.scan_incoming();
    let first = m.messages.len();
    assert!(first > 0 && first <= SLICE, "one slice: {first}");
    assert!(m.scan_wanted && m.scan_in_progress());
    while m.scan_in_progress() {
        m.scan_incoming();
    }
    assert_eq!(m.messages.len(), total);
    drop(m);

    // deferred/, forced (`rostqueue -f`): the pass goes on turn after turn.
    for id in &ids {
        rostfix_queue::rename_file(&root, QueueName::Active, QueueName::Deferred, id)
            .expect("to deferred");
    }
    let (tx, _rx) = std::sync::mpsc::channel();
    let mut m = Manager::new(root.clone(), s, resolver(), tx);
    m.scan_deferred(true);
    let first = m.messages.len();
    assert!(first > 0 && first <= SLICE, "one slice: {first}");
    assert!(m.scan_in_progress());
    let mut turns = 1;
    while m.scan_in_progress() {
        m.continue_deferred_scan();
        turns += 1;
    }
    assert!(turns >= 2, "{turns}");
    assert_eq!(m.messages.len(), total);
    assert!(ids.iter().all(|id| exists(&root, QueueName::Active, id)));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_full_active_queue_keeps_the_deferred_pass_without_spinning() {
    let root = queue_root("slices-full");
    for _ in 0..5 {
        let id = queue_message(
            &root,
            "alice@example.org",
            &["carol@example.net"],
            now_secs(),
        );
        rostfix_queue::rename_file(&root, QueueName::Incoming, QueueName::Deferred, &id)
            .expect("to deferred");
    }
    let mut s = settings();
    s.active_limit = 2;
    let (tx, _rx) = std::sync::mpsc::channel();
    let mut m = Manager::new(root.clone(), s, resolver(), tx);
    m.scan_deferred(true);
    assert_eq!(m.messages.len(), 2);
    // No room: the pass waits (the loop sleeps for events instead of turning).
    assert!(m.deferred_scan.is_some());
    assert!(!m.scan_in_progress());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_request_that_cannot_reach_its_agent_while_stopping_is_not_an_attempt() {
    // Master removes the agents' sockets before it signals qmgr: a delivery started in
    // between fails to connect. It must not be logged as deferred, recorded in the
    // defer log, or move the message out of active/ (the next qmgr takes it up).
    let root = queue_root("stopping");
    let id = queue_message(
        &root,
        "alice@example.org",
        &["carol@example.net"],
        now_secs(),
    );
    let (mut m, rx) = manager(&root);
    m.scan_incoming();
    m.dispatch();
    let ev = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the failed connect is reported");
    m.stopping = true;
    m.handle(ev);
    assert_eq!(m.sched.in_flight(), 0, "the slot is given back");
    assert_eq!(m.messages.get(&id).map(|msg| msg.outstanding), Some(0));
    assert!(
        exists(&root, QueueName::Active, &id),
        "left for the next qmgr"
    );
    assert!(!exists(&root, QueueName::Deferred, &id));
    assert!(
        read_defer_reasons(&root, &id)
            .unwrap_or_default()
            .is_empty(),
        "no deferral recorded"
    );
    let qf = QueueFile::open(&root, QueueName::Active, &id).expect("active file");
    assert_eq!(qf.pending().count(), 1);
    let _ = std::fs::remove_dir_all(&root);
}

/// A message of `n` recipients over a few remote domains, and a manager that reads
/// large messages in slices of 100 (qmgr_message_recipient_limit 100).
fn sliced_setup(name: &str, n: usize) -> (PathBuf, String, Manager, Receiver<Event>) {
    let root = queue_root(name);
    let rcpts: Vec<String> = (0..n)
        .map(|i| format!("u{i}@d{}.example.net", i % 7))
        .collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let id = queue_message(&root, "list@example.org", &refs, now_secs());
    let mut s = settings();
    s.recipient_limit = 100;
    s.limits.default.initial_concurrency = 5;
    let (tx, rx) = std::sync::mpsc::channel();
    let m = Manager::new(root.clone(), s, resolver(), tx);
    (root, id, m, rx)
}

/// Runs the loop until `id` leaves memory; returns the most recipients it held at once.
fn run_tracking_held(m: &mut Manager, rx: &Receiver<Event>, id: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut most = 0;
    m.scan_incoming();
    m.dispatch();
    while m.messages.contains_key(id) && Instant::now() < deadline {
        most = most.max(m.messages.get(id).map_or(0, |msg| msg.recipients.len()));
        assert!(m.rcpt_count <= 400, "rcpt_count {}", m.rcpt_count);
        if let Ok(ev) = rx.recv_timeout(Duration::from_millis(200)) {
            m.handle(ev);
        }
        m.dispatch();
    }
    assert!(!m.messages.contains_key(id), "{id} still active");
    assert_eq!(m.rcpt_count, 0, "every recipient counted out again");
    most
}

#[test]
fn a_large_message_is_held_a_slice_at_a_time_and_each_recipient_delivered_once() {
    let n = 1000;
    let (root, id, mut m, rx) = sliced_setup("sliced-sent", n);
    let smtp = agent(&root, "smtp", |_| DeliveryStatus::Sent);
    let most = run_tracking_held(&mut m, &rx, &id);
    // A slice of 100, plus the next one read when half the requests are done.
    assert!(most <= 200, "held {most} recipients of {n} at once");
    for q in [QueueName::Incoming, QueueName::Active, QueueName::Deferred] {
        assert!(!exists(&root, q, &id), "{id} left in {q:?}");
    }
    let reqs = smtp.lock().expect("lock");
    let mut delivered: Vec<String> = reqs
        .iter()
        .flat_map(|r| r.recipients.iter().map(|d| d.address.clone()))
        .collect();
    assert_eq!(delivered.len(), n, "no recipient asked for twice");
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), n, "every recipient asked for");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn deferred_recipients_of_every_slice_keep_the_message_until_all_are_read() {
    let n = 450;
    let (root, id, mut m, rx) = sliced_setup("sliced-deferred", n);
    // The odd ones are delivered, the even ones deferred (a 4xx to RCPT: the
    // destinations stay alive).
    let _smtp = agent(&root, "smtp", |a| {
        let i: usize = a[1..a.find('@').unwrap_or(1)].parse().unwrap_or(0);
        if i.is_multiple_of(2) {
            DeliveryStatus::Deferred
        } else {
            DeliveryStatus::Sent
        }
    });
    run_tracking_held(&mut m, &rx, &id);
    assert!(
        exists(&root, QueueName::Deferred, &id),
        "deferred once, at the end"
    );
    let qf = QueueFile::open(&root, QueueName::Deferred, &id).expect("deferred file");
    let pending: Vec<&str> = qf.pending().map(|r| r.address.as_str()).collect();
    assert_eq!(pending.len(), n / 2);
    assert!(pending.iter().all(|a| {
        let i: usize = a[1..a.find('@').unwrap_or(1)].parse().unwrap_or(1);
        i.is_multiple_of(2)
    }));
    // Every slice's deferrals reached the defer log.
    let reasons = read_defer_reasons(&root, &id).expect("defer log");
    assert_eq!(reasons.len(), n / 2);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn an_expired_large_message_is_returned_once_with_every_slice_tried() {
    let n = 250;
    let root = queue_root("sliced-expired");
    let rcpts: Vec<String> = (0..n)
        .map(|i| format!("u{i}@d{}.example.net", i % 3))
        .collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    // Older than maximal_queue_lifetime (5 days).
    let id = queue_message(&root, "list@example.org", &refs, now_secs() - 6 * 86400);
    let smtp = agent(&root, "smtp", |a| {
        if a.starts_with("u1") {
            DeliveryStatus::Sent
        } else {
            DeliveryStatus::Deferred
        }
    });
    let bounces = bounce_service(&root, BounceReply::Queued("B0000001".into()));
    let mut s = settings();
    s.recipient_limit = 100;
    s.limits.default.initial_concurrency = 5;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut m = Manager::new(root.clone(), s, resolver(), tx);
    run_tracking_held(&mut m, &rx, &id);
    let tried: usize = smtp
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.recipients.len())
        .sum();
    assert_eq!(tried, n, "every slice was tried before the expiry");
    let b = bounces.lock().expect("lock");
    assert_eq!(b.len(), 1, "one expiry notice for the whole message");
    let sent = rcpts.iter().filter(|a| a.starts_with("u1")).count();
    assert_eq!(b[0].recipients.len(), n - sent);
    assert!(!exists(&root, QueueName::Active, &id));
    assert!(!exists(&root, QueueName::Deferred, &id));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_large_discarded_message_completes_slice_after_slice_without_recursing() {
    // Every slice goes to qmgr's own discard transport and so completes inside the
    // call that queues it; the next slice must come from the loop, not a nested call.
    let n = 5_000;
    let root = queue_root("sliced-discard");
    let rcpts: Vec<String> = (0..n).map(|i| format!("u{i}@trash.example")).collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let id = queue_message(&root, "list@example.org", &refs, now_secs());
    let mut s = settings();
    s.recipient_limit = 100;
    let (tx, _rx) = std::sync::mpsc::channel();
    let mut m = Manager::new(root.clone(), s, resolver(), tx);
    // A small stack: 50 slices in nested calls would not fit in it.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            m.scan_incoming();
            (m.messages.is_empty(), m.rcpt_count)
        })
        .expect("thread");
    let (empty, count) = handle.join().expect("no stack overflow");
    assert!(empty && count == 0);
    for q in [QueueName::Incoming, QueueName::Active, QueueName::Deferred] {
        assert!(!exists(&root, q, &id), "{id} left in {q:?}");
    }
    let _ = std::fs::remove_dir_all(&root);
}
