//! Unit tests of the scheduler: grouping, limits, slow start, feedback, dead
//! destinations, rate delay, process limits, round-robin.

use super::*;

fn policy(limit: usize, initial: usize) -> TransportPolicy {
    TransportPolicy {
        concurrency_limit: limit,
        initial_concurrency: initial,
        ..TransportPolicy::default()
    }
}

fn limits() -> Limits {
    let mut per_transport = HashMap::new();
    per_transport.insert(
        "local".to_string(),
        TransportPolicy {
            recipient_limit: 1,
            ..policy(2, 5)
        },
    );
    Limits {
        default: TransportPolicy::default(),
        per_transport,
        total_concurrency: 100,
        dead_time: Duration::from_secs(300),
        pipeline_depth: 1,
    }
}

fn route(t: &str, n: &str) -> Route {
    Route::new(t, n)
}

fn rcpt(i: u64) -> DeliveryRecipient {
    DeliveryRecipient {
        offset: i,
        address: format!("u{i}@x"),
        orig_address: format!("u{i}@x"),
    }
}

fn req(q: &str, r: &Route) -> PendingRequest {
    PendingRequest {
        queue_id: q.into(),
        route: r.clone(),
        recipients: vec![rcpt(1)],
        size: 1000,
    }
}

fn drain(s: &mut Scheduler, now: Instant) -> Vec<PendingRequest> {
    std::iter::from_fn(|| s.next(now)).collect()
}

#[test]
fn feedback_syntax() {
    assert_eq!(
        Feedback::parse("1/concurrency"),
        Some(Feedback::PerConcurrency(1.0))
    );
    assert_eq!(Feedback::parse(" 2 "), Some(Feedback::Fixed(2.0)));
    assert_eq!(Feedback::parse("x"), None);
}

#[test]
fn local_gets_one_recipient_per_request() {
    let routed = (0..3).map(|i| (route("local", "h"), rcpt(i))).collect();
    let reqs = group("ID1", 0, routed, &limits());
    assert_eq!(reqs.len(), 3);
    assert!(reqs.iter().all(|r| r.recipients.len() == 1));
}

#[test]
fn remote_recipients_grouped_by_destination_up_to_the_limit() {
    let mut routed = Vec::new();
    for i in 0..120 {
        routed.push((route("smtp", "a.example"), rcpt(i)));
    }
    routed.push((route("smtp", "b.example"), rcpt(500)));
    let sizes: Vec<(String, usize)> = group("ID", 0, routed, &limits())
        .iter()
        .map(|r| (r.route.nexthop.clone(), r.recipients.len()))
        .collect();
    assert_eq!(
        sizes,
        vec![
            ("a.example".into(), 50),
            ("a.example".into(), 50),
            ("a.example".into(), 20),
            ("b.example".into(), 1)
        ]
    );
}

#[test]
fn zero_recipient_limit_means_unlimited() {
    let mut l = limits();
    l.default.recipient_limit = 0;
    let routed = (0..200).map(|i| (route("smtp", "a"), rcpt(i))).collect();
    assert_eq!(group("ID", 0, routed, &l).len(), 1);
}

#[test]
fn slow_start_then_growth_up_to_the_limit() {
    let now = Instant::now();
    let mut s = Scheduler::new(limits());
    let a = route("smtp", "a");
    for i in 0..100 {
        s.enqueue(req(&format!("M{i}"), &a));
    }
    // initial_destination_concurrency = 5.
    assert_eq!(drain(&mut s, now).len(), 5);
    // Each success adds 1/window: after 5 successes the window is about 6.
    for _ in 0..5 {
        s.finished(&a, &Outcome::Success, now);
    }
    let started = drain(&mut s, now).len();
    assert_eq!(
        started, 6,
        "window grew by one after a window's worth of successes"
    );
    // It never passes default_destination_concurrency_limit (20).
    for _ in 0..500 {
        let n = s.in_flight();
        for _ in 0..n {
            s.finished(&a, &Outcome::Success, now);
        }
        for _ in 0..100 {
            s.enqueue(req("X", &a));
        }
        let running = drain(&mut s, now).len();
        assert!(running <= 20);
    }
    assert_eq!(s.window(&a), Some(20));
}

#[test]
fn failures_shrink_the_window_and_kill_the_destination() {
    let now = Instant::now();
    let mut l = limits();
    l.default.failed_cohort_limit = 2;
    let mut s = Scheduler::new(l);
    let a = route("smtp", "a");
    for _ in 0..10 {
        s.enqueue(req("M", &a));
    }
    assert_eq!(drain(&mut s, now).len(), 5);
    for _ in 0..5 {
        s.finished(&a, &Outcome::Failure("refused".into()), now);
    }
    assert_eq!(
        s.window(&a),
        Some(4),
        "a window's worth of failures: one less"
    );
    assert!(!s.is_dead(&a, now));
    // Keep failing: cohorts accumulate 1/window each.
    for _ in 0..10 {
        s.enqueue(req("M", &a));
        if let Some(_r) = s.next(now) {
            s.finished(&a, &Outcome::Failure("refused".into()), now);
        }
    }
    assert!(s.is_dead(&a, now));
    assert!(
        s.next(now).is_none(),
        "nothing starts to a dead destination"
    );
    let suspended = s.take_suspended(now);
    assert!(!suspended.is_empty());
    assert!(suspended
        .iter()
        .all(|(_, why)| why == "delivery temporarily suspended: refused"));
    // Later it is alive again at the initial concurrency.
    let later = now + Duration::from_secs(301);
    assert!(s.take_suspended(later).is_empty());
    assert!(!s.is_dead(&a, later));
}

#[test]
fn success_resets_the_failed_cohort_count() {
    let now = Instant::now();
    let mut s = Scheduler::new(limits());
    let a = route("smtp", "a");
    for _ in 0..3 {
        s.enqueue(req("M", &a));
    }
    let started = drain(&mut s, now);
    assert_eq!(started.len(), 3);
    s.finished(&a, &Outcome::Failure("x".into()), now);
    s.finished(&a, &Outcome::Success, now);
    s.finished(&a, &Outcome::Failure("x".into()), now);
    assert!(!s.is_dead(&a, now));
}

#[test]
fn dead_destination_does_not_hold_others() {
    let now = Instant::now();
    let mut l = limits();
    l.default.initial_concurrency = 1;
    let mut s = Scheduler::new(l);
    let (a, b) = (route("smtp", "a"), route("smtp", "b"));
    s.enqueue(req("M1", &a));
    let first = s.next(now).expect("a starts");
    s.finished(&first.route, &Outcome::Failure("timeout".into()), now);
    assert!(s.is_dead(&a, now));
    s.enqueue(req("M2", &a));
    s.enqueue(req("M3", &b));
    assert_eq!(s.next(now).map(|r| r.route), Some(b));
    assert_eq!(s.take_suspended(now).len(), 1);
    assert_eq!(s.revive_site("[A]:25"), 1);
    assert!(!s.is_dead(&a, now));
}

#[test]
fn rate_delay_spaces_deliveries() {
    let now = Instant::now();
    let mut l = limits();
    l.default.rate_delay = Duration::from_secs(2);
    let mut s = Scheduler::new(l);
    let a = route("smtp", "a");
    for _ in 0..3 {
        s.enqueue(req("M", &a));
    }
    assert!(s.next(now).is_some());
    assert!(s.next(now).is_none(), "one at a time");
    s.finished(&a, &Outcome::Success, now);
    assert!(
        s.next(now + Duration::from_secs(1)).is_none(),
        "waits the delay"
    );
    assert!(s.next(now + Duration::from_secs(2)).is_some());
}

#[test]
fn process_limit_caps_a_transport_over_destinations() {
    let now = Instant::now();
    let mut l = limits();
    l.default.process_limit = 3;
    let mut s = Scheduler::new(l);
    for n in ["a", "b", "c", "d"] {
        for _ in 0..3 {
            s.enqueue(req("M", &route("smtp", n)));
        }
    }
    assert_eq!(drain(&mut s, now).len(), 3);
    s.finished(&route("smtp", "a"), &Outcome::Success, now);
    assert_eq!(drain(&mut s, now).len(), 1);
}

/// `n` requests, one message each, for the one local recipient `address`.
fn for_mailbox(address: &str, n: u64) -> Vec<PendingRequest> {
    (0..n)
        .flat_map(|i| {
            let r = DeliveryRecipient {
                offset: i,
                address: address.into(),
                orig_address: address.into(),
            };
            group(
                &format!("ID{i}"),
                1000,
                vec![(route("local", "h"), r)],
                &limits(),
            )
        })
        .collect()
}

#[test]
fn local_concurrency_is_capped_at_two_per_recipient() {
    let now = Instant::now();
    let mut s = Scheduler::new(limits());
    let alice = for_mailbox("Alice@h", 5);
    let alice_route = alice[0].route.clone();
    assert_eq!(alice_route.recipient, "alice@h");
    for r in alice {
        s.enqueue(r);
    }
    assert_eq!(drain(&mut s, now).len(), 2);
    assert_eq!((s.in_flight(), s.queued()), (2, 3));
    s.finished(&alice_route, &Outcome::Success, now);
    let third = s.next(now).expect("a slot was freed");
    assert_eq!(third.recipients[0].offset, 2);
    // Another mailbox has slots of its own (Postfix: the destination is the recipient).
    for r in for_mailbox("bob@h", 3) {
        s.enqueue(r);
    }
    let bobs = drain(&mut s, now);
    assert_eq!(bobs.len(), 2);
    assert!(bobs.iter().all(|r| r.route.recipient == "bob@h"));
}

fn batching(batch_limit: usize, batch_size_limit: u64) -> Limits {
    let mut l = limits();
    if let Some(p) = l.per_transport.get_mut("local") {
        p.batch_limit = batch_limit;
        p.batch_size_limit = batch_size_limit;
    }
    l
}

#[test]
fn a_backlog_for_one_mailbox_is_spread_over_both_slots_in_batches() {
    let now = Instant::now();
    let mut s = Scheduler::new(batching(32, 0));
    for r in for_mailbox("alice@h", 11) {
        s.enqueue(r);
    }
    // Two free slots, eleven waiting: six now, the other five in the second slot.
    let first = s.next_batch(now).expect("a batch");
    let second = s.next_batch(now).expect("a second batch");
    assert_eq!((first.len(), second.len()), (6, 5));
    assert!(s.next_batch(now).is_none(), "both slots busy");
    assert_eq!((s.in_flight(), s.queued()), (2, 0));
    let offsets: Vec<u64> = first
        .iter()
        .chain(&second)
        .map(|r| r.recipients[0].offset)
        .collect();
    assert_eq!(offsets, (0..11).collect::<Vec<_>>(), "in queue order");
    // What arrives while both run goes in one batch to the first slot that frees.
    for r in for_mailbox("alice@h", 40) {
        s.enqueue(r);
    }
    s.finished(&first[0].route, &Outcome::Success, now);
    assert_eq!(
        s.next_batch(now).map(|b| b.len()),
        Some(32),
        "the batch limit"
    );
    assert_eq!(s.queued(), 8);
}

#[test]
fn a_batch_stops_at_the_byte_bound_but_holds_at_least_one_message() {
    let now = Instant::now();
    let mut s = Scheduler::new(batching(32, 2500));
    let mut reqs = for_mailbox("alice@h", 4);
    reqs[0].size = 5000;
    for r in reqs {
        s.enqueue(r);
    }
    assert_eq!(
        s.next_batch(now).map(|b| b.len()),
        Some(1),
        "alone and too big"
    );
    let b = s.next_batch(now).expect("the other slot");
    assert_eq!(b.len(), 2, "2 x 1000 bytes fit in 2500, a third does not");
}

#[test]
fn without_a_batch_limit_every_request_takes_its_own_slot() {
    let now = Instant::now();
    let mut s = Scheduler::new(batching(1, 0));
    for r in for_mailbox("alice@h", 5) {
        s.enqueue(r);
    }
    assert_eq!(s.next_batch(now).map(|b| b.len()), Some(1));
    assert_eq!(s.next_batch(now).map(|b| b.len()), Some(1));
    assert!(s.next_batch(now).is_none());
}

#[test]
fn round_robin_between_destinations() {
    let now = Instant::now();
    let mut s = Scheduler::new(limits());
    for _ in 0..3 {
        s.enqueue(req("A", &route("smtp", "a")));
        s.enqueue(req("B", &route("smtp", "b")));
    }
    let order: Vec<String> = drain(&mut s, now)
        .into_iter()
        .map(|r| r.route.nexthop)
        .collect();
    assert_eq!(order, ["a", "b", "a", "b", "a", "b"]);
}

#[test]
fn total_cap_applies_across_destinations() {
    let now = Instant::now();
    let mut l = limits();
    l.total_concurrency = 2;
    let mut s = Scheduler::new(l);
    for n in ["a", "b", "c"] {
        s.enqueue(req("ID", &route("smtp", n)));
    }
    assert_eq!(drain(&mut s, now).len(), 2);
    s.finished(&route("smtp", "a"), &Outcome::Success, now);
    assert!(s.next(now).is_some());
}

#[test]
fn finishing_an_unknown_route_changes_nothing() {
    let mut s = Scheduler::new(limits());
    s.finished(&route("smtp", "nowhere"), &Outcome::Success, Instant::now());
    assert_eq!(s.in_flight(), 0);
}

#[test]
fn depth_hands_out_more_requests_than_the_window_except_with_a_rate_delay() {
    let mut l = limits();
    l.pipeline_depth = 2;
    let mut s = Scheduler::new(l.clone());
    let now = Instant::now();
    let a = route("smtp", "a.example");
    for i in 0..20 {
        s.enqueue(req(&format!("Q{i}"), &a));
    }
    // Not proven yet: the initial window of 5 and no more.
    assert_eq!(s.window_of(&a), 5);
    let mut n = 0;
    while s.next(now).is_some() {
        n += 1;
    }
    assert_eq!(n, 5);
    // One answered: the window grows by feedback, and twice its size may be handed
    // out (the rest wait behind running deliveries).
    s.finished(&a, &Outcome::Success, now);
    let w = s.window_of(&a);
    while s.next(now).is_some() {
        n += 1;
    }
    assert_eq!(n - 1, 2 * w);
    // A failure stops the queueing ahead again.
    s.finished(&a, &Outcome::Failure("down".into()), now);
    assert!(s.next(now).is_none());

    let mut slow = l;
    slow.per_transport.insert(
        "slow".into(),
        TransportPolicy {
            rate_delay: Duration::from_secs(1),
            ..TransportPolicy::default()
        },
    );
    let mut s = Scheduler::new(slow);
    let b = route("slow", "b.example");
    for i in 0..3 {
        s.enqueue(req(&format!("R{i}"), &b));
    }
    assert!(s.next(now).is_some());
    assert!(s.next(now).is_none(), "one at a time with a rate delay");
}

fn shaping_rules() -> crate::shaping::rules::Rules {
    crate::shaping::rules::parse(
        "[a]\nmx = *.provider-a.test\nconcurrency = 2\nrate = 3600\nburst = 3\n\
         messages_per_connection = 7\nrecover_interval = 10s\ncooloff = 20s\n",
    )
    .unwrap()
}

#[test]
fn a_bucket_limits_concurrency_and_rate_over_its_destinations() {
    let now = Instant::now();
    let mut s = Scheduler::new(limits());
    s.set_rules(&shaping_rules(), now, |_| None);
    let (a1, a2, b) = (
        route("smtp", "a1.test"),
        route("smtp", "a2.test"),
        route("smtp", "b.test"),
    );
    for i in 0..3 {
        s.enqueue_in(req(&format!("A1{i}"), &a1), Some("a".into()));
        s.enqueue_in(req(&format!("A2{i}"), &a2), Some("a".into()));
        s.enqueue(req(&format!("B{i}"), &b));
    }
    assert_eq!(s.bucket_of(&a1), Some(("a", 7)));
    assert_eq!(s.bucket_of(&b), None);
    // Two of the bucket's six at once (over both destinations), all three of b.
    let started = drain(&mut s, now);
    let in_a = started.iter().filter(|r| r.route != b).count();
    assert_eq!((in_a, started.len() - in_a), (2, 3));
    // One finishes: the third token of the burst lets one more go.
    s.finished(&a1, &Outcome::Success, now);
    assert_eq!(drain(&mut s, now).len(), 1);
    // The next waits for the rate (3600/h: one a second), not the concurrency.
    s.finished(&a2, &Outcome::Success, now);
    assert!(drain(&mut s, now).is_empty());
    let t = s.next_shaping_event(now).unwrap();
    assert_eq!(t.duration_since(now), Duration::from_secs(1));
    assert_eq!(drain(&mut s, t).len(), 1);
}

#[test]
fn throttles_slow_the_bucket_and_it_recovers_by_ticks() {
    let now = Instant::now();
    let mut s = Scheduler::new(limits());
    s.set_rules(&shaping_rules(), now, |_| None);
    let a1 = route("smtp", "a1.test");
    s.enqueue_in(req("Q1", &a1), Some("a".into()));
    s.throttled(&a1, "421 4.7.0 from mx1.provider-a.test[127.0.0.1]", now);
    assert_eq!(s.bucket_limits("a"), Some((1800, 1)));
    s.tick(now + Duration::from_secs(19));
    assert_eq!(s.bucket_limits("a"), Some((1800, 1)));
    s.tick(now + Duration::from_secs(20));
    assert_eq!(s.bucket_limits("a"), Some((2700, 2)));
    s.tick(now + Duration::from_secs(30));
    assert_eq!(s.bucket_limits("a"), Some((3600, 2)));
    // A reload that drops the bucket leaves its destinations unshaped.
    s.set_rules(&crate::shaping::rules::Rules::default(), now, |_| None);
    assert_eq!(s.bucket_of(&a1), None);
    assert_eq!(s.bucket_limits("a"), None);
}
