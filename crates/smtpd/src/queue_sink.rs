//! The real [`QueueSink`]: queue files in `incoming/` through
//! `rostfix_queue::QueueWriter` (relative to the working directory, which is
//! queue_directory after confinement), and a qmgr wake-up after each commit.

use crate::sink::{QueueSink, QueuedMessage, SinkError};
use rostfix_proto::QMGR_SOCKET;
use rostfix_queue::{Envelope, QueueName, QueueWriter};
use std::path::{Path, PathBuf};

/// Writes queue files under `root` (normally ".").
#[derive(Debug, Clone)]
pub struct SpoolSink {
    root: PathBuf,
}

impl SpoolSink {
    pub fn new(root: &Path) -> SpoolSink {
        SpoolSink {
            root: root.to_path_buf(),
        }
    }
}

/// A queue file being written.
#[derive(Debug)]
pub struct SpoolMessage {
    writer: QueueWriter,
    id: String,
}

impl QueueSink for SpoolSink {
    type Message = SpoolMessage;

    fn create(&mut self, envelope: &Envelope) -> Result<SpoolMessage, SinkError> {
        // smtpd runs as mail_owner: it may reuse finished messages' files.
        let writer = QueueWriter::create_recycled(&self.root, QueueName::Incoming, envelope)?;
        let id = writer.queue_id().to_string();
        Ok(SpoolMessage { writer, id })
    }

    fn free_space(&self) -> Option<u64> {
        match rostfix_queue::space::free_bytes(&self.root.join(QueueName::Incoming.as_str())) {
            Ok(free) => Some(free),
            Err(e) => {
                log::warn!("cannot get the free space of the queue file system: {e}");
                None
            }
        }
    }

    /// Rostfix has no separate flush service: qmgr's site flush retries the deferred
    /// mail for the domain (as `rostqueue -s` does).
    fn flush_site(&mut self, site: &str) -> Result<(), String> {
        rostfix_proto::send_trigger(
            &self.root.join(QMGR_SOCKET),
            &rostfix_proto::Trigger::FlushSite(site.to_string()),
            rostfix_proto::WAKEUP_TIMEOUT,
        )
        .map_err(|e| e.to_string())
    }

    fn committed(&mut self, queue_id: &str) {
        if let Err(e) = rostfix_proto::wake_qmgr(&self.root) {
            log::warn!("{queue_id}: cannot wake up qmgr via {QMGR_SOCKET}: {e}");
        }
    }
}

impl QueuedMessage for SpoolMessage {
    fn queue_id(&self) -> &str {
        &self.id
    }

    fn write(&mut self, data: &[u8]) -> Result<(), SinkError> {
        Ok(self.writer.write_content(data)?)
    }

    fn commit_as(self, hold: bool, envelope: Option<&Envelope>) -> Result<String, SinkError> {
        let into = hold.then_some(QueueName::Hold);
        Ok(self.writer.commit_to(into, envelope)?)
    }

    fn abort(self) {
        self.writer.abort();
    }
}
