//! One pass over maildrop/: queue every file with a queue id name, and dispose of what
//! cannot be queued so that the next pass does not meet it again: a corrupt file goes
//! to corrupt/, one over message_size_limit is removed, and an entry that is not a
//! regular file (a directory made with the maildrop group's write access, a link, a
//! FIFO) is removed; if even that fails (a non-empty directory of another user), it is
//! logged once and then skipped silently while it stays the same inode.

use crate::process::{pickup_file, PickupError, Queued, Settings};
use rostfix_queue::{list_queue, move_file, queue_path, QueueName};
use std::collections::HashSet;
use std::path::Path;

/// The scanner's memory between passes.
#[derive(Debug)]
pub struct Scanner {
    settings: Settings,
    /// (name, inode) of entries that could not be removed and were logged already.
    ignored: HashSet<(String, u64)>,
}

impl Scanner {
    pub fn new(settings: Settings) -> Self {
        Scanner {
            settings,
            ignored: HashSet::new(),
        }
    }

    /// Scans `root/maildrop` once, calling `queued` after each message put in
    /// incoming/. Returns how many were queued.
    pub fn scan(&mut self, root: &Path, mut queued: impl FnMut(&Queued)) -> usize {
        let names = match list_queue(root, QueueName::Maildrop) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("scan maildrop: {e}");
                return 0;
            }
        };
        // Only entries still present stay remembered, so the set never outgrows the
        // directory.
        let mut still_ignored = HashSet::new();
        let mut count = 0;
        for name in names {
            match pickup_file(root, &name, &self.settings) {
                Ok(q) => {
                    log::info!("{}: uid={} from=<{}>", q.new_id, q.uid, q.sender);
                    count += 1;
                    queued(&q);
                }
                Err(PickupError::Gone) => {}
                Err(PickupError::Corrupt(reason)) => {
                    log::warn!("maildrop/{name}: corrupt queue file: {reason}; moved to corrupt/");
                    if let Err(e) = move_file(root, QueueName::Maildrop, QueueName::Corrupt, &name)
                    {
                        log::warn!("maildrop/{name}: move to corrupt/: {e}");
                    }
                }
                Err(PickupError::Retry(reason)) => {
                    log::warn!("maildrop/{name}: {reason}; will retry");
                }
                Err(PickupError::TooBig { uid, sender, limit }) => {
                    let path = queue_path(root, QueueName::Maildrop, &name);
                    let removed = match std::fs::remove_file(&path) {
                        Ok(()) => "removed".to_string(),
                        Err(e) => format!("cannot remove it: {e}"),
                    };
                    log::warn!(
                        "maildrop/{name}: uid={uid} from=<{sender}>: message file too big \
                         (over message_size_limit {limit} bytes); not queued, {removed}"
                    );
                }
                Err(PickupError::NotRegular { uid, ino, kind }) => {
                    let key = (name.clone(), ino);
                    if self.ignored.contains(&key) {
                        still_ignored.insert(key);
                        continue;
                    }
                    let path = queue_path(root, QueueName::Maildrop, &name);
                    let removal = if kind == "directory" {
                        std::fs::remove_dir(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                    match removal {
                        Ok(()) => log::warn!(
                            "maildrop/{name}: uid={uid}: not a regular file ({kind}); removed"
                        ),
                        Err(e) => {
                            log::warn!(
                                "maildrop/{name}: uid={uid}: not a regular file ({kind}); \
                                 cannot remove it ({e}); ignoring it from now on"
                            );
                            still_ignored.insert(key);
                        }
                    }
                }
            }
        }
        self.ignored = still_ignored;
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_queue::{Envelope, QueueWriter, Recipient};
    use std::path::PathBuf;

    fn queue_root(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("pickup-scan-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["maildrop", "incoming", "corrupt"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        root
    }

    fn scanner(limit: u64) -> Scanner {
        Scanner::new(Settings {
            myhostname: "mail.example.org".into(),
            myorigin: "example.org".into(),
            message_size_limit: limit,
            content_checks: None,
            no_address_mappings: false,
            rewrite: None,
            content_filter: None,
            forms: rostfix_rewrite::AddressForms::default(),
            dkim: None,
            arc: None,
            hygiene: None,
            milters: None,
        })
    }

    fn drop_message(root: &Path, content: &[u8]) -> String {
        let env = Envelope {
            sender: "joe".into(),
            arrival_us: 1,
            attrs: vec![],
            recipients: vec![Recipient {
                address: "amy".into(),
                ..Recipient::default()
            }],
        };
        let mut w = QueueWriter::create(root, QueueName::Maildrop, &env).unwrap();
        w.write_content(content).unwrap();
        w.commit().unwrap()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn empty_directory_is_removed_and_messages_still_flow() {
        let root = queue_root("dir");
        std::fs::create_dir(root.join("maildrop/ABCDEF100")).unwrap();
        drop_message(&root, b"hi\n");
        let mut s = scanner(0);
        let mut seen = 0;
        assert_eq!(s.scan(&root, |_| seen += 1), 1);
        assert_eq!(seen, 1);
        assert!(entries(&root.join("maildrop")).is_empty());
        assert!(entries(&root.join("corrupt")).is_empty());
        assert_eq!(entries(&root.join("incoming")).len(), 1);
        assert!(s.ignored.is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn unremovable_entry_is_remembered_until_it_goes() {
        let root = queue_root("stuck");
        let dir = root.join("maildrop/ABCDEF200");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("inside"), b"x").unwrap();
        let mut s = scanner(0);
        s.scan(&root, |_| {});
        assert_eq!(s.ignored.len(), 1);
        assert!(dir.exists());
        s.scan(&root, |_| {});
        assert_eq!(s.ignored.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
        s.scan(&root, |_| {});
        assert!(s.ignored.is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn too_big_is_removed_and_not_queued() {
        let root = queue_root("big");
        drop_message(&root, &[b'x'; 2000]);
        let mut s = scanner(1000);
        assert_eq!(s.scan(&root, |_| {}), 0);
        assert!(entries(&root.join("maildrop")).is_empty());
        assert!(entries(&root.join("incoming")).is_empty());
        assert!(entries(&root.join("corrupt")).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn corrupt_goes_to_corrupt() {
        let root = queue_root("corrupt");
        std::fs::write(root.join("maildrop/ABCDEF300"), b"junk").unwrap();
        scanner(0).scan(&root, |_| {});
        assert_eq!(entries(&root.join("corrupt")), ["ABCDEF300"]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
