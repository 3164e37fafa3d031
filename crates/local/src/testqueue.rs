//! Test helpers: a message queued in a test queue directory and the delivery request
//! qmgr would send for it.

use rostfix_proto::{DeliveryRecipient, DeliveryRequest};
use rostfix_queue::{Envelope, QueueFile, QueueName, QueueWriter, Recipient};
use std::path::Path;

/// Queues `content` for `rcpts` from bob@example.org in `root/active`; its id.
pub fn queue_message(root: &Path, rcpts: &[&str], content: &[u8]) -> String {
    std::fs::create_dir_all(root.join("active")).unwrap();
    let env = Envelope {
        sender: "bob@example.org".into(),
        arrival_us: 1_700_000_000_000_000,
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
    let mut w = QueueWriter::create(root, QueueName::Active, &env).unwrap();
    w.write_content(content).unwrap();
    w.commit().unwrap()
}

/// The request for every recipient of queued message `id`.
pub fn request(root: &Path, id: &str) -> DeliveryRequest {
    let qf = QueueFile::open(root, QueueName::Active, id).unwrap();
    DeliveryRequest {
        queue_name: QueueName::Active,
        queue_id: id.parse().unwrap(),
        sender: qf.envelope.sender.clone(),
        nexthop: "mx.example.org".into(),
        arrival: 1_700_000_000,
        recipients: qf
            .envelope
            .recipients
            .iter()
            .map(|r| DeliveryRecipient {
                offset: r.offset,
                address: r.address.clone(),
                orig_address: r.orig_address.clone(),
            })
            .collect(),
        activated: None,
        probe: false,
        shaping: None,
        group: None,
    }
}

/// One group-commit request for the messages of `reqs` (the first at the top).
pub fn group(reqs: Vec<DeliveryRequest>) -> DeliveryRequest {
    let mut it = reqs.into_iter();
    let mut head = it.next().expect("at least one request");
    let more = it
        .map(|r| rostfix_proto::BatchedMessage {
            queue_name: r.queue_name,
            queue_id: r.queue_id,
            sender: r.sender,
            arrival: r.arrival,
            recipients: r.recipients,
            activated: r.activated,
            probe: r.probe,
            retry: false,
        })
        .collect();
    head.group = Some(rostfix_proto::GroupCommit { retry: false, more });
    head
}
