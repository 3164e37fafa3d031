//! The intake's exactly-once order against a scripted bus: refusals and redeliveries
//! acknowledged without copies, and every crash point between staging and the
//! acknowledgement recovered without loss or duplicate.

use super::*;
use crate::source::BusError;
use base64::Engine;
use std::collections::VecDeque;
use std::path::Path;

/// A bus that hands out scripted batches and records what it is told.
#[derive(Default)]
struct ScriptedBus {
    batches: VecDeque<Vec<BusMessage>>,
    acked: Vec<String>,
    nacked: Vec<String>,
    pulls: usize,
    fail_ack: bool,
}

impl Bus for ScriptedBus {
    fn pull(&mut self, _max: usize) -> Result<Vec<BusMessage>, BusError> {
        self.pulls += 1;
        Ok(self.batches.pop_front().unwrap_or_default())
    }
    fn ack(&mut self, handles: &[String]) -> Result<(), BusError> {
        if self.fail_ack {
            return Err(BusError::Answer("connection reset".into()));
        }
        self.acked.extend(handles.iter().cloned());
        Ok(())
    }
    fn extend(&mut self, _: &[String], _: Duration) -> Result<(), BusError> {
        Ok(())
    }
    fn nack(&mut self, handles: &[String]) -> Result<(), BusError> {
        self.nacked.extend(handles.iter().cloned());
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "scripted"
    }
}

fn root(name: &str) -> PathBuf {
    let r = std::env::temp_dir().join(format!("rostfix-bus-intake-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&r);
    for d in ["bus", "maildrop", "corrupt"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    r
}

fn msg(id: &str, recipients: &str) -> BusMessage {
    BusMessage {
        id: id.into(),
        ack_handle: format!("ack-{id}"),
        attributes: [
            ("sender".to_string(), "news@example.com".to_string()),
            ("recipients".to_string(), recipients.to_string()),
            ("campaign_id".to_string(), "c1".to_string()),
        ]
        .into_iter()
        .collect(),
        data_b64: base64::engine::general_purpose::STANDARD
            .encode(format!("Subject: {id}\r\n\r\nbody\r\n")),
    }
}

fn limits() -> Limits {
    Limits {
        max_outstanding: 100,
        size_limit: 10_000,
        queue_minfree: 0,
    }
}

fn intake(r: &Path, bus: ScriptedBus) -> Intake<ScriptedBus> {
    let store = DedupStore::open(&r.join("bus"), 3600, now_secs()).unwrap();
    Intake::new(r.to_path_buf(), bus, store, limits(), 1000)
}

fn count(r: &Path, dir: &str) -> usize {
    rostfix_queue::list_queue(r, QueueName::parse(dir).unwrap_or(QueueName::Bus))
        .unwrap()
        .len()
}

#[test]
fn a_batch_with_refusals_and_a_repeat() {
    let r = root("batch");
    let batch = vec![
        msg("1", "a@x.example"),
        msg("2", "b@x.example, c@x.example"),
        msg("2", "b@x.example"),
        msg("3", "not an address"),
        msg("4", "d@x.example"),
    ];
    let mut bus = ScriptedBus::default();
    bus.batches.push_back(batch);
    let mut i = intake(&r, bus);
    assert_eq!(
        i.step().unwrap(),
        Step::Batch {
            queued: 3,
            duplicates: 1,
            refused: 1,
            returned: 0
        }
    );
    assert_eq!(count(&r, "maildrop"), 3);
    assert_eq!(count(&r, "bus"), 0);
    assert_eq!(i.bus.acked.len(), 5, "every message acknowledged");
    assert!(i.bus.nacked.is_empty());
    assert_eq!(i.step().unwrap(), Step::Empty);
    std::fs::remove_dir_all(&r).unwrap();
}

#[test]
fn a_redelivery_after_a_lost_ack_is_not_queued_again() {
    let r = root("lost-ack");
    let batch = vec![msg("7", "a@x.example"), msg("8", "b@x.example")];
    let bus = ScriptedBus {
        batches: VecDeque::from([batch.clone()]),
        fail_ack: true,
        ..ScriptedBus::default()
    };
    let mut i = intake(&r, bus);
    assert!(matches!(i.step().unwrap(), Step::Batch { queued: 2, .. }));
    drop(i); // the process ends: the bus never heard of the ack
    let bus = ScriptedBus {
        batches: VecDeque::from([batch]),
        ..ScriptedBus::default()
    };
    let mut i = intake(&r, bus);
    assert_eq!(i.recover().unwrap(), 0);
    assert_eq!(
        i.step().unwrap(),
        Step::Batch {
            queued: 0,
            duplicates: 2,
            refused: 0,
            returned: 0
        }
    );
    assert_eq!(count(&r, "maildrop"), 2);
    assert_eq!(i.bus.acked, vec!["ack-7", "ack-8"]);
    std::fs::remove_dir_all(&r).unwrap();
}

#[test]
fn a_crash_after_staging_is_recovered_once() {
    let r = root("staged");
    // The crash point: staged (durable in bus/), neither recorded nor released.
    let sub = msg("9", "a@x.example").to_submission(0).unwrap();
    stage::stage(&r, &sub, "9", 1).unwrap();
    // ... and a torn record of another batch.
    std::fs::write(r.join("bus/ids"), "1 5\n2 1").unwrap();
    let bus = ScriptedBus {
        batches: VecDeque::from([vec![msg("9", "a@x.example")]]),
        ..ScriptedBus::default()
    };
    let mut i = intake(&r, bus);
    assert_eq!(i.recover().unwrap(), 1);
    assert_eq!(count(&r, "maildrop"), 1);
    assert_eq!(count(&r, "bus"), 0);
    // The bus redelivers the unacknowledged message: recognised.
    assert!(matches!(
        i.step().unwrap(),
        Step::Batch {
            queued: 0,
            duplicates: 1,
            ..
        }
    ));
    assert_eq!(count(&r, "maildrop"), 1);
    std::fs::remove_dir_all(&r).unwrap();
}

#[test]
fn a_crash_after_recording_is_recovered_once() {
    let r = root("recorded");
    let sub = msg("11", "a@x.example").to_submission(0).unwrap();
    stage::stage(&r, &sub, "11", 1).unwrap();
    std::fs::write(r.join("bus/ids"), format!("{} 11\n", now_secs())).unwrap();
    let mut i = intake(&r, ScriptedBus::default());
    assert_eq!(i.recover().unwrap(), 1);
    assert_eq!(count(&r, "maildrop"), 1);
    drop(i);
    // Recovery again finds nothing more to do.
    let mut i = intake(&r, ScriptedBus::default());
    assert_eq!(i.recover().unwrap(), 0);
    assert_eq!(count(&r, "maildrop"), 1);
    let log = std::fs::read_to_string(r.join("bus/ids")).unwrap();
    assert_eq!(log.lines().count(), 1, "not recorded twice: {log}");
    std::fs::remove_dir_all(&r).unwrap();
}

#[test]
fn nothing_is_pulled_while_maildrop_is_full() {
    let r = root("backlog");
    for n in 0..3 {
        std::fs::write(r.join(format!("maildrop/ABCDEF{n}")), b"x").unwrap();
    }
    let store = DedupStore::open(&r.join("bus"), 3600, now_secs()).unwrap();
    let mut i = Intake::new(
        r.clone(),
        ScriptedBus::default(),
        store,
        Limits {
            max_outstanding: 3,
            ..limits()
        },
        1000,
    );
    assert_eq!(i.step().unwrap(), Step::Backlog(3));
    assert_eq!(i.bus.pulls, 0);
    std::fs::remove_dir_all(&r).unwrap();
}

#[test]
fn nothing_is_pulled_while_space_is_short() {
    let r = root("space");
    let store = DedupStore::open(&r.join("bus"), 3600, now_secs()).unwrap();
    let mut i = Intake::new(
        r.clone(),
        ScriptedBus::default(),
        store,
        Limits {
            queue_minfree: u64::MAX,
            ..limits()
        },
        1000,
    );
    assert!(matches!(i.step().unwrap(), Step::NoSpace(why) if why.contains("queue_minfree")));
    assert_eq!(i.bus.pulls, 0);
    std::fs::remove_dir_all(&r).unwrap();
}
