//! Queue file recycling: the file of a finished message is moved into `recycle/`
//! instead of being unlinked, and a writer that runs as mail_owner (smtpd, pickup)
//! takes one from there instead of creating a new file, overwrites it and truncates it
//! to the new length. A file system then allocates and frees no inode per message,
//! which is much of the cost of a queue file on ext4 (the inode allocator searches
//! past every recently freed inode, under the directory lock that all smtpd processes
//! share). PostgreSQL recycles its WAL segments for the same reason.
//!
//! Safety of the contract: a recycled file is only ever a free file. Claiming renames
//! it to the writer's own temporary name in the target queue directory, so two
//! writers can never hold the same file (the second rename finds nothing); from then
//! on it is written, fsync'ed and named exactly like a new file. A crash leaves either
//! a free file in `recycle/` or a writer's temporary file, which the usual clean-ups
//! remove. Nothing in `recycle/` is mail: losing it loses nothing.
//!
//! Only files of mail_owner, with one link and mode 0600 are kept (those over
//! [`RECYCLE_MAX_SIZE`] emptied first) or taken, and the pool is bounded by
//! [`RECYCLE_LIMIT`] (qmgr unlinks beyond it). Commands running as other users
//! (rostdrop) never take from the pool: they could read a previous message's bytes.

use crate::file::io_err;
use crate::layout::queue_path;
use crate::{QueueError, QueueName};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The directory under queue_directory holding free files.
pub const RECYCLE_DIR: &str = "recycle";

/// Files larger than this are emptied (truncated to 0) before they go into the pool,
/// so the pool holds at most [`RECYCLE_LIMIT`] times this many bytes of blocks; what
/// is kept is the inode, the costly part.
pub const RECYCLE_MAX_SIZE: u64 = 8 * 1024;

/// Most free files qmgr keeps: a burst of this many messages (a newsletter run) goes
/// through the queue without freeing an inode. At most 160 MB of blocks (see
/// [`RECYCLE_MAX_SIZE`]), usually far less.
pub const RECYCLE_LIMIT: usize = 20_000;

/// Names a writer process read from a `recycle/` directory and has not tried yet.
/// Listing the directory once per batch keeps the cost of finding a file off the
/// per-message path.
struct Candidates {
    dir: Option<PathBuf>,
    names: Vec<String>,
}

static CANDIDATES: Mutex<Candidates> = Mutex::new(Candidates {
    dir: None,
    names: Vec::new(),
});

/// How many names one listing hands a process; processes start at different places
/// in the listing so that they rarely race for the same file.
const BATCH: usize = 64;

/// Reads up to [`BATCH`] names of `recycle/`, starting at a place that depends on the
/// process id (every process lists the same order).
fn list_batch(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .take(16 * BATCH)
        .collect();
    if names.is_empty() {
        return names;
    }
    let start = (std::process::id() as usize).wrapping_mul(2_654_435_761) % names.len();
    names.rotate_left(start);
    names.truncate(BATCH);
    names
}

/// Whether a file may go into the pool: ours, regular, one link, private.
fn fit_for_reuse(meta: &std::fs::Metadata) -> bool {
    meta.is_file()
        && meta.nlink() == 1
        && meta.uid() == nix::unistd::geteuid().as_raw()
        && meta.mode() & 0o7777 == 0o600
}

/// Whether a file found in the pool may hold a new message: fit, and no larger than
/// qmgr leaves them (anything else was not put there by qmgr).
fn fit_to_claim(meta: &std::fs::Metadata) -> bool {
    fit_for_reuse(meta) && meta.len() <= RECYCLE_MAX_SIZE
}

/// Takes a free file from `root/recycle/` by renaming it to `temp` (a writer's own
/// temporary name) and opens it for writing. None when the pool is empty or missing;
/// the caller then creates a new file.
pub(crate) fn claim(root: &Path, temp: &Path) -> Option<File> {
    let dir = root.join(RECYCLE_DIR);
    let mut cache = CANDIDATES.lock().ok()?;
    if cache.dir.as_deref() != Some(dir.as_path()) {
        cache.dir = Some(dir.clone());
        cache.names.clear();
    }
    let mut listed = false;
    loop {
        let name = match cache.names.pop() {
            Some(name) => name,
            None if !listed => {
                listed = true;
                cache.names = list_batch(&dir);
                continue;
            }
            None => return None,
        };
        match std::fs::rename(dir.join(&name), temp) {
            Ok(()) => {}
            // Another writer took it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                log::debug!("cannot take {name} from {}: {e}", dir.display());
                cache.names.clear();
                return None;
            }
        }
        let opened = OpenOptions::new().write(true).open(temp);
        match opened {
            Ok(file) if file.metadata().is_ok_and(|m| fit_to_claim(&m)) => return Some(file),
            _ => {
                // Not ours to reuse (or gone): it is no mail either, so it goes.
                let _ = std::fs::remove_file(temp);
            }
        }
    }
}

/// qmgr's side: keeps finished messages' files in `recycle/` up to [`RECYCLE_LIMIT`].
#[derive(Debug)]
pub struct Recycler {
    /// None when `recycle/` does not exist (a queue made before it existed): every
    /// finished file is unlinked as before.
    dir: Option<PathBuf>,
    /// Files put there since the last count, plus that count: writers take files out
    /// without telling, so this only overestimates, and is recounted when it reaches
    /// the limit (at most once per [`RECOUNT_INTERVAL`]).
    estimate: usize,
    counted: Option<Instant>,
}

/// Least time between two listings of `recycle/` when the pool looks full.
const RECOUNT_INTERVAL: Duration = Duration::from_secs(1);

impl Recycler {
    pub fn new(root: &Path) -> Recycler {
        let dir = root.join(RECYCLE_DIR);
        let dir = dir.is_dir().then_some(dir);
        Recycler {
            dir,
            estimate: 0,
            counted: None,
        }
    }

    /// Whether the pool has room, recounting it when the estimate says it is full.
    fn has_room(&mut self, dir: &Path) -> bool {
        if self.estimate < RECYCLE_LIMIT {
            return true;
        }
        if self.counted.is_some_and(|t| t.elapsed() < RECOUNT_INTERVAL) {
            return false;
        }
        self.counted = Some(Instant::now());
        self.estimate = std::fs::read_dir(dir)
            .map(|d| d.count())
            .unwrap_or(usize::MAX);
        self.estimate < RECYCLE_LIMIT
    }

    /// Removes the finished message `queue/id` from the queue: into `recycle/` when the
    /// file is fit and the pool has room, unlinked otherwise. NotFound if it is gone.
    /// Either way the message is no longer in any queue when this returns Ok.
    pub fn remove(&mut self, root: &Path, queue: QueueName, id: &str) -> Result<(), QueueError> {
        let path = queue_path(root, queue, id);
        if let Some(dir) = self.dir.clone() {
            let meta = std::fs::metadata(&path).map_err(|e| io_err(&path, e))?;
            let fit = fit_for_reuse(&meta);
            let emptied = meta.len() <= RECYCLE_MAX_SIZE
                || (fit
                    && OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_len(0))
                        .is_ok());
            if fit && emptied && self.has_room(&dir) {
                match std::fs::rename(&path, dir.join(id)) {
                    Ok(()) => {
                        self.estimate += 1;
                        return Ok(());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.is_dir() => {
                        log::warn!(
                            "{} is gone: queue files are no longer recycled",
                            dir.display()
                        );
                        self.dir = None;
                    }
                    Err(e) => return Err(io_err(&path, e)),
                }
            }
        }
        std::fs::remove_file(&path).map_err(|e| io_err(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempRoot;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn put(root: &Path, queue: &str, name: &str, body: &[u8], mode: u32) {
        let p = root.join(queue).join(name);
        let mut f = File::create(&p).unwrap();
        f.write_all(body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn finished_files_are_kept_then_claimed_once() {
        let q = TempRoot::new();
        let root = q.path();
        std::fs::create_dir(root.join(RECYCLE_DIR)).unwrap();
        put(root, "active", "AAAA1", b"old message", 0o600);
        let mut r = Recycler::new(root);
        r.remove(root, QueueName::Active, "AAAA1").unwrap();
        assert!(!root.join("active/AAAA1").exists());
        assert!(root.join("recycle/AAAA1").exists());
        let temp = root.join("incoming/tmp.1.1");
        assert!(claim(root, &temp).is_some());
        assert!(temp.exists());
        assert!(!root.join("recycle/AAAA1").exists());
        // The pool is empty now: the writer creates a new file.
        assert!(claim(root, &root.join("incoming/tmp.1.2")).is_none());
    }

    #[test]
    fn unfit_files_are_unlinked_and_big_ones_emptied() {
        let q = TempRoot::new();
        let root = q.path();
        std::fs::create_dir(root.join(RECYCLE_DIR)).unwrap();
        put(
            root,
            "active",
            "BIG01",
            &vec![b'x'; RECYCLE_MAX_SIZE as usize + 1],
            0o600,
        );
        put(root, "active", "MODE1", b"x", 0o644);
        let mut r = Recycler::new(root);
        r.remove(root, QueueName::Active, "BIG01").unwrap();
        r.remove(root, QueueName::Active, "MODE1").unwrap();
        assert!(!root.join("active/BIG01").exists());
        assert!(!root.join("active/MODE1").exists());
        // The big one is kept without its blocks; the world-readable one is gone.
        let kept: Vec<_> = std::fs::read_dir(root.join(RECYCLE_DIR))
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].file_name(), "BIG01");
        assert_eq!(kept[0].metadata().unwrap().len(), 0);
        assert!(matches!(
            r.remove(root, QueueName::Active, "GONE1"),
            Err(QueueError::NotFound(_))
        ));
    }

    #[test]
    fn unfit_files_in_the_pool_are_never_handed_out() {
        let q = TempRoot::new();
        let root = q.path();
        std::fs::create_dir(root.join(RECYCLE_DIR)).unwrap();
        put(root, RECYCLE_DIR, "WORLD", b"x", 0o644);
        let temp = root.join("incoming/tmp.1.3");
        assert!(claim(root, &temp).is_none());
        assert!(!temp.exists());
    }

    #[test]
    fn without_the_directory_files_are_unlinked() {
        let q = TempRoot::new();
        let root = q.path();
        put(root, "active", "AAAA2", b"x", 0o600);
        let mut r = Recycler::new(root);
        r.remove(root, QueueName::Active, "AAAA2").unwrap();
        assert!(!root.join("active/AAAA2").exists());
    }
}
