//! Forwarding: addresses that an alias, `.forward` or `:include:` expansion produced
//! and that are not delivered by this local agent go back into the queue as a NEW
//! message, as Postfix's local does through cleanup. Rostfix has no cleanup daemon, so
//! local writes the queue file itself, the way pickup and smtpd do:
//!
//! 1. switch the effective identity to mail_owner (queue files must belong to it: qmgr
//!    runs as mail_owner and incoming/ is mail_owner's 0700 directory),
//! 2. `QueueWriter::create(incoming/)` with the sender chosen by the expansion (the
//!    `owner-ALIAS` address when the alias has an owner, else the original sender),
//!    the forwarded addresses as recipients (their original recipient is the address
//!    being expanded, so DSN and logs can name it),
//! 3. content = `Delivered-To: <top-level recipient>` (prepend_delivered_header has
//!    `forward` by default; it is what later catches a forwarding loop) + the
//!    original content, commit (fsync, link, directory fsync),
//! 4. only then is the original recipient reported delivered ("forwarded as ID"), and
//!    a `Trigger::Wakeup` goes to `public/qmgr` (a lost trigger only delays: qmgr
//!    scans incoming/ every 5 s).
//!
//! A crash between 3 and the mark-done of the original recipient forwards twice,
//! never loses.

use crate::failure::Failure;
use crate::headers::delivery_headers;
use crate::privileges::{Identity, PrivGuard};
use rostfix_queue::{Envelope, QueueName, QueueWriter, Recipient};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where forwarded messages go (a trait so expansion can be tested without a queue).
pub trait Forwarder {
    /// Queues one new message from `sender` to `recipients`; `delivered_to` is the
    /// address whose expansion forwards it. Returns the new queue id.
    fn forward(
        &mut self,
        sender: &str,
        recipients: &[String],
        orig_recipient: &str,
        delivered_to: &str,
        content: &[u8],
    ) -> Result<String, Failure>;
}

/// The real forwarder: writes into `root/incoming/` as `owner`, triggers qmgr.
#[derive(Debug, Clone)]
pub struct QueueForwarder {
    /// queue_directory ("." after the daemon chdir'ed there).
    pub root: PathBuf,
    /// mail_owner; None when not running as root (nothing to switch).
    pub owner: Option<Identity>,
    /// rostfix_arc_seal_forwarded: each copy gets an ARC set (crates/authverify).
    pub arc: Option<std::sync::Arc<rostfix_authverify::ArcSealing>>,
}

/// The content of a forwarded copy: the Delivered-To line, then the original.
pub fn forwarded_content(delivered_to: &str, content: &[u8]) -> Vec<u8> {
    // delivery_headers() gives "Return-Path:\nDelivered-To:\n"; a forwarded copy
    // carries only the Delivered-To line (the Return-Path is added at final delivery).
    let headers = delivery_headers("", "", delivered_to);
    let delivered = headers
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"Delivered-To:"))
        .unwrap_or(b"");
    let mut out = Vec::with_capacity(delivered.len() + 1 + content.len());
    out.extend_from_slice(delivered);
    out.push(b'\n');
    out.extend_from_slice(content);
    out
}

impl Forwarder for QueueForwarder {
    fn forward(
        &mut self,
        sender: &str,
        recipients: &[String],
        orig_recipient: &str,
        delivered_to: &str,
        content: &[u8],
    ) -> Result<String, Failure> {
        let envelope = Envelope {
            sender: sender.to_string(),
            arrival_us: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64),
            attrs: vec![],
            recipients: recipients
                .iter()
                .map(|a| Recipient {
                    address: a.clone(),
                    orig_address: orig_recipient.to_string(),
                    ..Recipient::default()
                })
                .collect(),
        };
        let fail = |e: rostfix_queue::QueueError| {
            Failure::defer(
                "4.3.0",
                format!("cannot forward: queue file write error: {e}"),
            )
        };
        let id = {
            let _guard = match self.owner {
                Some(id) => Some(
                    PrivGuard::switch(id).map_err(|e| Failure::defer("4.3.0", e.to_string()))?,
                ),
                None => None,
            };
            let mut w =
                QueueWriter::create(&self.root, QueueName::Incoming, &envelope).map_err(fail)?;
            let copy = forwarded_content(delivered_to, content);
            let copy = match self
                .arc
                .as_ref()
                .and_then(|a| a.seal(&[delivered_to], &copy))
            {
                Some(set) => [set.into_bytes(), copy].concat(),
                None => copy,
            };
            w.write_content(&copy).map_err(fail)?;
            w.commit().map_err(fail)?.to_string()
        };
        if let Err(e) = rostfix_proto::wake_qmgr(&self.root) {
            log::warn!("{id}: cannot wake qmgr: {e}");
        }
        Ok(id)
    }
}

/// A forwarder that only records what it was asked to queue (tests, dry runs).
#[derive(Debug, Default)]
pub struct CollectingForwarder {
    /// (sender, recipients, orig_recipient, delivered_to) per forwarded message.
    pub sent: Vec<(String, Vec<String>, String, String)>,
}

impl Forwarder for CollectingForwarder {
    fn forward(
        &mut self,
        sender: &str,
        recipients: &[String],
        orig_recipient: &str,
        delivered_to: &str,
        _content: &[u8],
    ) -> Result<String, Failure> {
        self.sent.push((
            sender.to_string(),
            recipients.to_vec(),
            orig_recipient.to_string(),
            delivered_to.to_string(),
        ));
        Ok(format!("FWD{}", self.sent.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use rostfix_queue::QueueFile;

    #[test]
    fn forwarded_copy_has_delivered_to_only() {
        assert_eq!(
            forwarded_content("Alice@Example.org", b"Subject: x\n\nbody\n"),
            b"Delivered-To: alice@example.org\nSubject: x\n\nbody\n"
        );
    }

    #[test]
    fn writes_a_queue_file() {
        let t = TestDir::new("resubmit");
        std::fs::create_dir_all(t.path().join("incoming")).unwrap();
        let mut f = QueueForwarder {
            root: t.path().to_path_buf(),
            owner: None,
            arc: None,
        };
        let id = f
            .forward(
                "owner-list@example.org",
                &["bob@example.net".into(), "carol@example.com".into()],
                "list@example.org",
                "list@example.org",
                b"Subject: x\n\nbody\n",
            )
            .unwrap();
        let qf = QueueFile::open(t.path(), QueueName::Incoming, &id).unwrap();
        assert_eq!(qf.envelope.sender, "owner-list@example.org");
        let rcpts: Vec<_> = qf
            .envelope
            .recipients
            .iter()
            .map(|r| (r.address.as_str(), r.orig_address.as_str()))
            .collect();
        assert_eq!(
            rcpts,
            vec![
                ("bob@example.net", "list@example.org"),
                ("carol@example.com", "list@example.org")
            ]
        );
        assert_eq!(
            qf.read_content().unwrap(),
            b"Delivered-To: list@example.org\nSubject: x\n\nbody\n"
        );
    }
}
