//! Done marks of several queue files made durable with one sync: qmgr's half of a
//! group commit (docs/performance.md, "Group commit of local deliveries"). The local
//! agent stores a batch of messages for one mailbox and syncs the Maildir once; qmgr
//! then marks every delivered recipient of every message of the batch here, with one
//! `syncfs(2)` of the queue's file system instead of one fdatasync per file.
//!
//! Why syncfs: the marks are single bytes in N different files; making each durable
//! alone costs N device cache flushes, which is what bounded local delivery. syncfs
//! writes back everything dirty on the file system and flushes the device once, and
//! it is correct on every file system (unlike tricks with sync_file_range, which do
//! not commit metadata, so a copy-on-write file system could lose the overwrite). Its
//! price is that it also writes out other dirty data of that file system; mail queues
//! hold little of it (every queue file is fsynced when written), and the call runs on
//! a qmgr delivery thread, never on its main loop.

use crate::{QueueError, QueueFile};
use std::fs::File;
use std::path::{Path, PathBuf};

/// What [`mark_done_group`] did.
#[derive(Debug)]
pub struct GroupMarks {
    /// Files whose marks could not be written, by their index in the request, with why.
    pub failed: Vec<(usize, QueueError)>,
    /// The one sync (Ok also when nothing needed it).
    pub sync: Result<(), QueueError>,
    /// Marks were written (so the sync was needed).
    pub wrote: bool,
}

impl GroupMarks {
    /// True when every mark is written and durable.
    pub fn all_durable(&self) -> bool {
        self.failed.is_empty() && self.sync.is_ok()
    }
}

/// Marks the recipients at `offsets` done in each file of `files` (each offset checked
/// as [`QueueFile::mark_done`] checks it) without syncing, then syncs the file system
/// that holds `sync_dir` (a queue directory) once. A file that fails does not stop the
/// others; its error is reported with its index.
pub fn mark_done_group(sync_dir: &Path, files: &[(PathBuf, Vec<u64>)]) -> GroupMarks {
    let mut failed = Vec::new();
    let mut wrote = false;
    for (i, (path, offsets)) in files.iter().enumerate() {
        match QueueFile::mark_all(path, offsets, false) {
            Ok(w) => wrote |= w,
            Err(e) => failed.push((i, e)),
        }
    }
    let sync = if wrote {
        sync_file_system(sync_dir)
    } else {
        Ok(())
    };
    GroupMarks {
        failed,
        sync,
        wrote,
    }
}

/// syncfs(2) of the file system holding `dir`.
fn sync_file_system(dir: &Path) -> Result<(), QueueError> {
    let io = |source| QueueError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let d = File::open(dir).map_err(io)?;
    nix::unistd::syncfs(&d).map_err(|e| io(std::io::Error::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempRoot;
    use crate::{Envelope, QueueName, QueueWriter, Recipient};

    fn queued(root: &Path, rcpts: &[&str]) -> (PathBuf, Vec<u64>) {
        let env = Envelope {
            sender: "a@example.org".into(),
            arrival_us: 1,
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
        w.write_content(b"Subject: x\n\nbody\n").unwrap();
        let id = w.commit().unwrap();
        let qf = QueueFile::open(root, QueueName::Active, &id).unwrap();
        let offsets = qf.envelope.recipients.iter().map(|r| r.offset).collect();
        (qf.path, offsets)
    }

    fn done(path: &Path) -> Vec<bool> {
        QueueFile::open_path(path, QueueName::Active)
            .unwrap()
            .envelope
            .recipients
            .iter()
            .map(|r| r.done)
            .collect()
    }

    #[test]
    fn marks_every_file_then_syncs_once() {
        let t = TempRoot::new();
        let root = t.path();
        let (a, a_off) = queued(root, &["x@h", "y@h"]);
        let (b, b_off) = queued(root, &["z@h"]);
        let files = vec![(a.clone(), vec![a_off[1]]), (b.clone(), b_off.clone())];
        let marks = mark_done_group(&root.join("active"), &files);
        assert!(marks.all_durable(), "{marks:?}");
        assert!(marks.wrote);
        assert_eq!(done(&a), [false, true]);
        assert_eq!(done(&b), [true]);
        // Again: nothing to write, so nothing to sync; still all durable.
        let again = mark_done_group(&root.join("active"), &files);
        assert!(again.all_durable() && !again.wrote);
    }

    #[test]
    fn a_bad_file_is_reported_and_the_others_are_marked() {
        let t = TempRoot::new();
        let root = t.path();
        let (a, a_off) = queued(root, &["x@h"]);
        let files = vec![
            (root.join("active/GONE1234"), vec![40]),
            (a.clone(), vec![a_off[0] + 1]),
            (a.clone(), a_off.clone()),
        ];
        let marks = mark_done_group(&root.join("active"), &files);
        let bad: Vec<usize> = marks.failed.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            bad,
            [0, 1],
            "a missing file and an offset that is no recipient"
        );
        assert!(marks.sync.is_ok());
        assert_eq!(done(&a), [true]);
    }
}
