//! Writing one message into `maildrop/` through the queue library: envelope first
//! (sender, recipients, `uid` of the real user, `rewrite_context=local`), then the
//! content streamed from standard input with the size limit enforced as it arrives,
//! then a durable commit. Any failure removes the partial file.

use rostfix_queue::{Envelope, QueueError, QueueName, QueueWriter, Recipient};
use std::io::{self, Read};
use std::path::Path;

/// Why the message was not dropped; each maps to a sysexits code.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error("cannot create maildrop file: {0}")]
    Create(QueueError),
    #[error("error writing maildrop file: {0}")]
    Write(QueueError),
    #[error("error reading message: {0}")]
    Read(io::Error),
    #[error("message file too big")]
    TooBig,
    #[error("interrupted: message not submitted")]
    Interrupted,
}

impl DropError {
    /// The sysexits code for this failure.
    pub fn exit_code(&self) -> i32 {
        use crate::sysexits::*;
        match self {
            DropError::Create(QueueError::Invalid { .. }) => EX_DATAERR,
            DropError::Create(_) => EX_CANTCREAT,
            DropError::Write(_) | DropError::Interrupted => EX_TEMPFAIL,
            DropError::Read(_) => EX_IOERR,
            DropError::TooBig => EX_DATAERR,
        }
    }
}

/// The envelope rostdrop writes: pickup trusts the file owner, `uid` is informative.
pub fn build_envelope(sender: &str, recipients: &[String], uid: u32, arrival_us: i64) -> Envelope {
    Envelope {
        sender: sender.to_string(),
        arrival_us,
        attrs: vec![
            ("uid".into(), uid.to_string()),
            ("rewrite_context".into(), "local".into()),
        ],
        recipients: recipients
            .iter()
            .map(|r| Recipient {
                address: r.clone(),
                orig_address: r.clone(),
                ..Recipient::default()
            })
            .collect(),
    }
}

/// Writes `root/maildrop/ID` and returns ID. `limit` is message_size_limit (0 = none);
/// `interrupted` is asked at end of input, so a cut-short submission is not committed.
pub fn write_maildrop<R: Read>(
    root: &Path,
    envelope: &Envelope,
    mut input: R,
    limit: u64,
    interrupted: impl Fn() -> bool,
) -> Result<String, DropError> {
    let mut writer =
        QueueWriter::create(root, QueueName::Maildrop, envelope).map_err(DropError::Create)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                writer.abort();
                return Err(DropError::Read(e));
            }
        };
        if limit != 0 && writer.content_len() + n as u64 > limit {
            writer.abort();
            return Err(DropError::TooBig);
        }
        if let Err(e) = writer.write_content(&buf[..n]) {
            writer.abort();
            return Err(DropError::Write(e));
        }
    }
    if interrupted() {
        writer.abort();
        return Err(DropError::Interrupted);
    }
    writer.commit().map_err(DropError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_carries_uid_and_context() {
        let e = build_envelope("joe", &["a@x".into(), "b".into()], 1000, 5);
        assert_eq!(e.sender, "joe");
        assert_eq!(e.arrival_us, 5);
        assert_eq!(e.attr("uid"), Some("1000"));
        assert_eq!(e.attr("rewrite_context"), Some("local"));
        assert_eq!(e.recipients.len(), 2);
        assert_eq!(e.recipients[1].address, "b");
        assert_eq!(e.recipients[1].orig_address, "b");
        assert!(!e.recipients[0].done);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(DropError::TooBig.exit_code(), 65);
        assert_eq!(DropError::Interrupted.exit_code(), 75);
        let io = || QueueError::Io {
            path: "x".into(),
            source: io::Error::other("x"),
        };
        assert_eq!(DropError::Create(io()).exit_code(), 73);
        assert_eq!(DropError::Write(io()).exit_code(), 75);
    }
}
