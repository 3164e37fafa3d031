//! Opening the queue file a request names (a delivery request from qmgr, a bounce
//! request): the one way local, virtual, smtp/lmtp and bounce read the message they
//! were asked about. The request's queue name and id were checked when it was
//! decoded (rostfix_proto's typed names), so what is left are the file's own failures.

use crate::{MessageContent, QueueError, QueueFile, QueueName};
use rostfix_proto::{BounceRequest, DeliveryRequest, QueueId};
use std::path::Path;

/// The parsed queue file and its message content.
#[derive(Debug)]
pub struct RequestedMessage {
    pub file: QueueFile,
    pub content: Vec<u8>,
}

/// The parsed queue file and its content held open to be streamed: what a delivery
/// agent that can send a message of any size through a buffer asks for (smtp, lmtp).
#[derive(Debug)]
pub struct RequestedStream {
    pub file: QueueFile,
    pub content: MessageContent,
}

/// Why the requested message could not be read; each is temporary for a delivery
/// (qmgr looks at the file again).
#[derive(Debug, thiserror::Error)]
pub enum RequestedError {
    #[error("cannot read queue file: {0}")]
    Open(QueueError),
    #[error("cannot read message content: {0}")]
    Content(QueueError),
}

/// Something that names one queue file.
pub trait NamesQueueFile {
    fn queue_file(&self) -> (QueueName, &QueueId);
}

impl NamesQueueFile for DeliveryRequest {
    fn queue_file(&self) -> (QueueName, &QueueId) {
        (self.queue_name, &self.queue_id)
    }
}

impl NamesQueueFile for BounceRequest {
    fn queue_file(&self) -> (QueueName, &QueueId) {
        (self.queue_name, &self.queue_id)
    }
}

/// Opens and parses the queue file `req` names under `root` (queue_directory, "."
/// after chdir) and reads its content.
pub fn open_requested(
    root: &Path,
    req: &impl NamesQueueFile,
) -> Result<RequestedMessage, RequestedError> {
    let (queue, id) = req.queue_file();
    let (file, content) =
        QueueFile::open_with_content(root, queue, id, &|_| true).map_err(RequestedError::Open)?;
    let content = content.read_all().map_err(RequestedError::Content)?;
    Ok(RequestedMessage { file, content })
}

/// [`open_requested`] for a delivery request, with only the request's recipients
/// read from the envelope (`file.envelope.recipients` holds those, in file order).
pub fn open_requested_recipients(
    root: &Path,
    req: &DeliveryRequest,
) -> Result<RequestedMessage, RequestedError> {
    let RequestedStream { file, content } = open_requested_stream(root, req)?;
    let content = content.read_all().map_err(RequestedError::Content)?;
    Ok(RequestedMessage { file, content })
}

/// [`open_requested_recipients`] with the content left in the file, to be streamed.
pub fn open_requested_stream(
    root: &Path,
    req: &DeliveryRequest,
) -> Result<RequestedStream, RequestedError> {
    let wanted: std::collections::HashSet<u64> = req.recipients.iter().map(|r| r.offset).collect();
    let (file, content) =
        QueueFile::open_with_content(root, req.queue_name, &req.queue_id, &|off| {
            wanted.contains(&off)
        })
        .map_err(RequestedError::Open)?;
    Ok(RequestedStream { file, content })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempRoot;
    use crate::{Envelope, QueueWriter, Recipient};

    fn request(id: &str) -> DeliveryRequest {
        DeliveryRequest {
            queue_name: QueueName::Active,
            queue_id: QueueId::new(id).unwrap(),
            sender: String::new(),
            nexthop: String::new(),
            arrival: 0,
            recipients: Vec::new(),
            activated: None,
            probe: false,
            shaping: None,
            group: None,
        }
    }

    #[test]
    fn reads_the_named_file_and_says_which_step_failed() {
        let dir = TempRoot::new();
        let root = dir.path();
        let env = Envelope {
            sender: "a@example.org".into(),
            recipients: vec![Recipient {
                address: "b@example.org".into(),
                ..Recipient::default()
            }],
            ..Envelope::default()
        };
        let mut w = QueueWriter::create(root, QueueName::Active, &env).unwrap();
        w.write_content(b"Subject: x\n\nbody\n").unwrap();
        let id = w.commit().unwrap();
        let got = open_requested(root, &request(&id)).unwrap();
        assert_eq!(got.content, b"Subject: x\n\nbody\n");
        assert_eq!(got.file.envelope.sender, "a@example.org");

        let gone = open_requested(root, &request("ABCDEF0")).unwrap_err();
        assert!(matches!(
            gone,
            RequestedError::Open(QueueError::NotFound(_))
        ));
        assert!(
            gone.to_string().starts_with("cannot read queue file: "),
            "{gone}"
        );
    }

    #[test]
    fn a_delivery_request_reads_only_its_recipients() {
        let dir = TempRoot::new();
        let root = dir.path();
        let env = Envelope {
            sender: "a@example.org".into(),
            recipients: (0..5)
                .map(|i| Recipient {
                    address: format!("r{i}@example.org"),
                    notify: if i == 3 {
                        "FAILURE".into()
                    } else {
                        String::new()
                    },
                    ..Recipient::default()
                })
                .collect(),
            ..Envelope::default()
        };
        let mut w = QueueWriter::create(root, QueueName::Active, &env).unwrap();
        w.write_content(b"Subject: x\n\nbody\n").unwrap();
        let id = w.commit().unwrap();
        let all = open_requested(root, &request(&id)).unwrap();
        assert_eq!(all.file.envelope.recipients.len(), 5);
        let third = &all.file.envelope.recipients[3];
        let mut req = request(&id);
        req.recipients = vec![rostfix_proto::DeliveryRecipient {
            offset: third.offset,
            address: third.address.clone(),
            orig_address: third.address.clone(),
        }];
        let got = open_requested_recipients(root, &req).unwrap();
        assert_eq!(got.file.envelope.recipients.len(), 1);
        assert_eq!(got.file.envelope.recipients[0].address, "r3@example.org");
        assert_eq!(got.file.envelope.recipients[0].notify, "FAILURE");
        assert_eq!(got.content, b"Subject: x\n\nbody\n");
        let streamed = open_requested_stream(root, &req).unwrap();
        assert_eq!(streamed.file.envelope.recipients.len(), 1);
        assert_eq!(
            streamed.content.read_all().unwrap(),
            b"Subject: x\n\nbody\n"
        );
    }
}
