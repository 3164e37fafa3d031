//! The local agent's half of a group commit (docs/performance.md, "Group commit of
//! local deliveries"): qmgr sends several messages for one recipient in one request;
//! each Maildir copy is written, fsynced and linked into `new/` as usual, but the
//! `new/` fsync is left for later and the delivery is recorded here ([`Stage`]). Once
//! every message of the request is through, each `new/` directory is synced once
//! ([`Stage::sync_all`]); only then are the messages reported delivered, and only
//! after the reply does qmgr record their done marks. A copy whose directory sync
//! failed is removed again and its recipient deferred.
//!
//! Maildir copies of a group commit carry deterministic names (crate::maildir, Stamp),
//! so a batch cut short by a crash is not delivered twice when qmgr sends it again.
//! Other destinations (mbox, files, commands, forwarded copies, another transport)
//! cannot be found again like that: a recipient that reached one of them is made
//! durable and marked done by the agent at once (crate::agent), as outside a group
//! commit, so a crash repeats at most the message in flight.

use crate::maildir::{sync_new_dir, Stored};
use crate::privileges::{Identity, PrivGuard, RootGuard};
use std::path::PathBuf;

/// Whether a staged copy is durable yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    /// Its `new/` has not been synced since it was linked there.
    Pending,
    Durable,
    /// The sync failed (the text says why); the copy was removed.
    Lost(String),
}

#[derive(Debug)]
struct Staged {
    stored: Stored,
    ident: Identity,
    state: Durability,
}

/// The Maildir copies of one request waiting for their `new/` sync.
#[derive(Debug, Default)]
pub struct Stage {
    files: Vec<Staged>,
    /// Directory syncs made (for the log and the tests).
    syncs: usize,
}

impl Stage {
    /// Records a copy stored by the recipient's identity `ident`; returns its index.
    pub fn add(&mut self, stored: Stored, ident: Identity) -> usize {
        self.files.push(Staged {
            stored,
            ident,
            state: Durability::Pending,
        });
        self.files.len() - 1
    }

    /// How many copies were recorded.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The state of copy `index` (Pending for an unknown index).
    pub fn durability(&self, index: usize) -> Durability {
        self.files
            .get(index)
            .map_or(Durability::Pending, |f| f.state.clone())
    }

    /// Directory syncs made so far.
    pub fn syncs(&self) -> usize {
        self.syncs
    }

    /// Syncs the directories of the copies in `which` that are still pending, each
    /// directory once; every pending copy in a synced directory becomes durable with
    /// it (one fsync covers all the names linked there).
    pub fn sync(&mut self, which: &[usize]) {
        let mut dirs: Vec<(PathBuf, Identity)> = Vec::new();
        for &i in which {
            if let Some(f) = self.files.get(i) {
                let key = (f.stored.new_dir.clone(), f.ident);
                if f.state == Durability::Pending && !dirs.contains(&key) {
                    dirs.push(key);
                }
            }
        }
        for (dir, ident) in dirs {
            self.sync_dir(dir, ident);
        }
    }

    /// Syncs every directory with a pending copy.
    pub fn sync_all(&mut self) {
        let all: Vec<usize> = (0..self.files.len()).collect();
        self.sync(&all);
    }

    fn sync_dir(&mut self, dir: PathBuf, ident: Identity) {
        self.syncs += 1;
        let outcome = as_user(ident, || sync_new_dir(&dir).map_err(|e| e.to_string()));
        for f in &mut self.files {
            if f.stored.new_dir != dir || f.state != Durability::Pending {
                continue;
            }
            f.state = match &outcome {
                Ok(()) => Durability::Durable,
                Err(why) => {
                    // The name may not survive a crash: take it back, so a retry stores
                    // the message again rather than trust it.
                    if f.stored.path.starts_with(&dir) {
                        let path = f.stored.path.clone();
                        let _ = as_user(f.ident, || {
                            std::fs::remove_file(&path).map_err(|e| e.to_string())
                        });
                    }
                    Durability::Lost(why.clone())
                }
            };
        }
    }
}

/// Runs `work` with `ident`'s effective ids (root regained first when the agent
/// rests as mail_owner), as the copy was written.
fn as_user(ident: Identity, work: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let _root = RootGuard::regain().map_err(|e| e.to_string())?;
    let _user = PrivGuard::switch(ident).map_err(|e| e.to_string())?;
    work()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::{deliver_placed, Placement};
    use crate::testdir::TestDir;

    fn staged(md: &std::path::Path, stage: &mut Stage) -> usize {
        let placement = Placement {
            stamp: None,
            sync_dir: false,
        };
        let stored =
            deliver_placed(md, b"x\n", "h", 0, nix::unistd::geteuid(), placement).expect("stored");
        stage.add(stored, Identity::current())
    }

    #[test]
    fn one_sync_per_directory_makes_every_copy_in_it_durable() {
        let t = TestDir::new("stage");
        let (a, b) = (t.path().join("a/Maildir"), t.path().join("b/Maildir"));
        let mut stage = Stage::default();
        let first = [staged(&a, &mut stage), staged(&a, &mut stage)];
        let other = staged(&b, &mut stage);
        assert_eq!(stage.durability(first[0]), Durability::Pending);
        // Syncing for one copy covers the other copy in the same new/.
        stage.sync(&[first[0]]);
        assert_eq!(stage.syncs(), 1);
        assert_eq!(stage.durability(first[1]), Durability::Durable);
        assert_eq!(stage.durability(other), Durability::Pending);
        // A later copy in a synced directory is pending again until the next sync.
        let late = staged(&a, &mut stage);
        stage.sync_all();
        assert_eq!(stage.syncs(), 3, "a/new once more, b/new once");
        assert!([first[0], first[1], other, late]
            .iter()
            .all(|&i| stage.durability(i) == Durability::Durable));
        stage.sync_all();
        assert_eq!(stage.syncs(), 3, "nothing pending: no sync");
        assert_eq!(stage.len(), 4);
    }

    #[test]
    fn a_failed_sync_loses_the_pending_copies_of_that_directory() {
        let t = TestDir::new("stage-fail");
        let md = t.path().join("Maildir");
        let mut stage = Stage::default();
        let i = staged(&md, &mut stage);
        let path = std::fs::read_dir(md.join("new"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        // new/ gone (and with it the copy): the sync fails.
        std::fs::remove_dir_all(md.join("new")).unwrap();
        stage.sync_all();
        assert!(matches!(stage.durability(i), Durability::Lost(_)));
        assert!(!path.exists());
    }
}
