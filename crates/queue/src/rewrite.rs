//! Replacing a queue file's envelope (new recipient list, added attributes) while
//! keeping its content, atomically: qmgr writes the virtual-alias-expanded recipients
//! this way before any delivery (docs/queue-format.md, "Rewriting the envelope").
//!
//! The new file is written under a temporary name in the same directory, fsync'ed,
//! then renamed over the old name and the directory fsync'ed. A crash leaves either the
//! old file (and a `tmp.*` leftover that no reader takes for a queue file) or the new
//! one: recipients are never lost and never present twice.

use crate::file::io_err;
use crate::parse::{self, Depth};
use crate::writer::{create_temp, encode_envelope};
use crate::{layout::fsync_dir, Envelope, QueueError, QueueLock};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Removes the temporary file unless disarmed.
struct TempGuard<'a>(Option<&'a Path>);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Replaces the envelope of the queue file at `path` with `envelope` (its `done` flags
/// are written as given), keeping the content byte for byte and the file's mode.
/// Record offsets change: callers re-open the file afterwards.
pub fn rewrite_envelope(path: &Path, envelope: &Envelope) -> Result<(), QueueError> {
    rewrite(path, envelope, false).map(drop)
}

/// As [`rewrite_envelope`], for a file whose [`QueueLock`] the caller holds: the new
/// file is locked before it takes the name, so it is never seen unlocked, and its lock
/// is returned (the old one now covers an unlinked inode).
pub fn rewrite_envelope_locked(path: &Path, envelope: &Envelope) -> Result<QueueLock, QueueError> {
    rewrite(path, envelope, true)?.ok_or_else(|| QueueError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other("rewritten file was not locked"),
    })
}

fn rewrite(path: &Path, envelope: &Envelope, lock: bool) -> Result<Option<QueueLock>, QueueError> {
    let header = encode_envelope(envelope)?;
    let mut old = File::open(path).map_err(|e| io_err(path, e))?;
    let meta = old.metadata().map_err(|e| io_err(path, e))?;
    let parsed = parse::parse(&old, meta.len(), Depth::Full).map_err(|e| match e {
        parse::ParseError::Io(source) => io_err(path, source),
        parse::ParseError::Corrupt(reason) => QueueError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let (temp, mut out) = create_temp(dir)?;
    let mut guard = TempGuard(Some(&temp));
    let io = |e| io_err(&temp, e);
    out.write_all(&header).map_err(io)?;
    old.seek(SeekFrom::Start(parsed.content_offset))
        .map_err(|e| io_err(path, e))?;
    let rest = meta.len().saturating_sub(parsed.content_offset);
    let copied = std::io::copy(&mut (&mut old).take(rest), &mut out).map_err(io)?;
    if copied != rest {
        return Err(QueueError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank"),
        });
    }
    out.set_permissions(meta.permissions()).map_err(io)?;
    out.sync_all().map_err(io)?;
    let held = if lock {
        let file = File::open(&temp).map_err(io)?;
        Some(QueueLock::lock_new_file(file, &temp)?)
    } else {
        None
    };
    drop(out);
    std::fs::rename(&temp, path).map_err(io)?;
    guard.0 = None;
    fsync_dir(dir)?;
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QueueFile, QueueName, QueueWriter, Recipient};

    fn rcpt(a: &str, done: bool) -> Recipient {
        Recipient {
            address: a.into(),
            orig_address: a.into(),
            notify: "SUCCESS".into(),
            done,
            offset: 0,
        }
    }

    #[test]
    fn envelope_is_replaced_and_content_kept() {
        let t = crate::tempdir::TempRoot::new();
        let env = Envelope {
            sender: "s@x".into(),
            arrival_us: 42,
            attrs: vec![("protocol".into(), "ESMTP".into())],
            recipients: vec![rcpt("list@x", false), rcpt("done@x", true)],
        };
        let mut w = QueueWriter::create(t.path(), QueueName::Active, &env).unwrap();
        let body = vec![b'z'; 200_000];
        w.write_content(b"Subject: s\n\n").unwrap();
        w.write_content(&body).unwrap();
        let id = w.commit().unwrap();
        let path = crate::queue_path(t.path(), QueueName::Active, &id);
        let before = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
        let before_content = before.read_content().unwrap();

        let mut new = before.envelope.clone();
        new.attrs.push(("alias_expanded".into(), "1".into()));
        let mut a = rcpt("a@y", false);
        a.orig_address = "list@x".into();
        let mut b = rcpt("b@y", false);
        b.orig_address = "list@x".into();
        new.recipients = vec![a, b, rcpt("done@x", true)];
        rewrite_envelope(&path, &new).unwrap();

        let after = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
        assert_eq!(after.envelope.attr("alias_expanded"), Some("1"));
        assert_eq!(after.envelope.arrival_us, 42);
        let got: Vec<(&str, &str, bool)> = after
            .envelope
            .recipients
            .iter()
            .map(|r| (r.address.as_str(), r.orig_address.as_str(), r.done))
            .collect();
        assert_eq!(
            got,
            [
                ("a@y", "list@x", false),
                ("b@y", "list@x", false),
                ("done@x", "done@x", true)
            ]
        );
        assert_eq!(after.read_content().unwrap(), before_content);
        // The new offsets are real recipient records.
        QueueFile::mark_done(&path, after.envelope.recipients[1].offset).unwrap();
        let again = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
        assert!(again.envelope.recipients[1].done);
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(t.path().join("active"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [id]);
    }

    #[test]
    fn a_refused_envelope_leaves_the_file_alone() {
        let t = crate::tempdir::TempRoot::new();
        let env = Envelope {
            sender: "s@x".into(),
            arrival_us: 1,
            attrs: vec![],
            recipients: vec![rcpt("a@x", false)],
        };
        let mut w = QueueWriter::create(t.path(), QueueName::Active, &env).unwrap();
        w.write_content(b"x\n").unwrap();
        let id = w.commit().unwrap();
        let path = crate::queue_path(t.path(), QueueName::Active, &id);
        let bytes = std::fs::read(&path).unwrap();
        let mut bad = env.clone();
        bad.recipients[0].address = "evil\n@x".into();
        assert!(rewrite_envelope(&path, &bad).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(
            std::fs::read_dir(t.path().join("active")).unwrap().count(),
            1
        );
    }
}
