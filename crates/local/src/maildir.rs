//! Maildir delivery: make DIR, DIR/tmp, DIR/new, DIR/cur (mode 0700) when missing,
//! write the message to `tmp/UNIQUE` (O_EXCL, 0600), fsync, link it to `new/NAME`,
//! remove the tmp name and fsync `new/`: a reader never sees half a message and a
//! crash after the fsync cannot lose it.
//!
//! NAME is a fresh unique name, or, for a delivery from a queue file, one derived from
//! the message and recipient ([`Stamp`]): `ARRIVAL.MMICROSQQUEUEID_OFFSET.HOST`. Such a
//! delivery is idempotent: when an earlier attempt already stored the message (the
//! agent was killed after the rename but before qmgr recorded the done mark) the name
//! is found in `new/` (and, for a retried message, among `cur/`'s read messages) and
//! the delivery counts as done without a second copy. The name keeps the Maildir shape
//! (time, unique part, host; no `/` or `:`), which Dovecot and other readers accept:
//! they only need it unique, and the queue id (which ends in the queue file's inode
//! number) with the arrival time to the microsecond and the record offset is unique
//! to one recipient of one message.
//!
//! The `new/` fsync may be left to the caller ([`Placement::sync_dir`] false), who
//! syncs each directory once for a batch of messages (crate::group_commit).
//!
//! Runs with the recipient's identity (see privileges.rs), so the files belong to the
//! recipient. A Maildir that is a symlink is followed only when the link belongs to the
//! recipient or root; tmp/, new/ and cur/ must be real directories.

use nix::unistd::Uid;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// What went wrong writing into a Maildir.
#[derive(Debug, thiserror::Error)]
pub enum MaildirError {
    #[error("create maildir directory {path}: {source}")]
    MakeDir { path: PathBuf, source: io::Error },
    #[error("maildir {0} is a symbolic link owned by uid {1}")]
    ForeignSymlink(PathBuf, u32),
    #[error("maildir {0} is not a directory")]
    NotDirectory(PathBuf),
    #[error("create maildir file {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("write maildir file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("link to {path}: {source}")]
    Link { path: PathBuf, source: io::Error },
    #[error("sync maildir directory {path}: {source}")]
    Sync { path: PathBuf, source: io::Error },
    #[error("mailbox full: message of {len} bytes exceeds mailbox_size_limit {limit}")]
    Full { len: u64, limit: u64 },
}

impl MaildirError {
    /// The underlying system error, if this is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            MaildirError::MakeDir { source, .. }
            | MaildirError::Create { source, .. }
            | MaildirError::Write { source, .. }
            | MaildirError::Link { source, .. }
            | MaildirError::Sync { source, .. } => Some(source),
            _ => None,
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique file name: `SECONDS.M<micros>P<pid>Q<counter>.HOSTNAME`, with `/` and `:`
/// in the host name written as `\057` and `\072` (the Maildir convention).
pub fn unique_name(now: SystemTime, hostname: &str) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let host = escaped_host(hostname);
    format!(
        "{}.M{}P{}Q{}.{}",
        since.as_secs(),
        since.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        host
    )
}

/// The host part of a Maildir name: `/` and `:` written as `\\057` and `\\072`.
fn escaped_host(hostname: &str) -> String {
    hostname.replace('/', "\\057").replace(':', "\\072")
}

/// Makes `dir` (and missing parents) with mode 0700; an existing directory is fine.
fn make_dir(dir: &Path) -> Result<(), MaildirError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| MaildirError::MakeDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Checks the Maildir top directory: a symlink only if owned by `uid` or root.
fn check_top(dir: &Path, uid: Uid) -> Result<(), MaildirError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|source| MaildirError::MakeDir {
        path: dir.to_path_buf(),
        source,
    })?;
    if meta.file_type().is_symlink() && meta.uid() != uid.as_raw() && meta.uid() != 0 {
        return Err(MaildirError::ForeignSymlink(dir.to_path_buf(), meta.uid()));
    }
    let target = std::fs::metadata(dir).map_err(|source| MaildirError::MakeDir {
        path: dir.to_path_buf(),
        source,
    })?;
    if !target.is_dir() {
        return Err(MaildirError::NotDirectory(dir.to_path_buf()));
    }
    Ok(())
}

/// tmp/, new/, cur/: made when missing, and never followed as a symlink.
fn check_sub(dir: &Path) -> Result<(), MaildirError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(MaildirError::NotDirectory(dir.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => make_dir(dir),
        Err(source) => Err(MaildirError::MakeDir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// What identifies one recipient's copy of one queued message, for its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp<'a> {
    pub queue_id: &'a str,
    /// The queue file's arrival time, microseconds since the epoch.
    pub arrival_us: i64,
    /// The recipient record's offset in the queue file.
    pub offset: u64,
    /// The message was deferred before: look for an earlier copy in `cur/` too (a
    /// reader may have moved it there since).
    pub retry: bool,
}

/// The file name of a stamped delivery: `ARRIVAL.MMICROSQQUEUEID_OFFSET.HOST`, the
/// host written as in [`unique_name`].
pub fn stamped_name(stamp: &Stamp<'_>, hostname: &str) -> String {
    let host = escaped_host(hostname);
    format!(
        "{}.M{}Q{}_{}.{}",
        stamp.arrival_us.div_euclid(1_000_000),
        stamp.arrival_us.rem_euclid(1_000_000),
        stamp.queue_id,
        stamp.offset,
        host
    )
}

/// How a delivery names its file and when `new/` is synced.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// Some: the deterministic name of [`stamped_name`] (an idempotent delivery);
    /// None: a fresh unique name.
    pub stamp: Option<Stamp<'a>>,
    /// Sync `new/` before returning; false leaves it to the caller, who must sync
    /// [`Stored::new_dir`] before reporting the message delivered.
    pub sync_dir: bool,
}

/// Where a delivered message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The file (in `new/`, or in `cur/` when an earlier copy was found there).
    pub path: PathBuf,
    /// The `new/` directory whose sync makes the delivery durable.
    pub new_dir: PathBuf,
    /// An earlier attempt had stored this message already: nothing was written.
    pub earlier: bool,
}

/// Delivers `copy` (the complete message as stored) into the Maildir `dir` as the
/// current effective identity `uid`, under a fresh unique name, `new/` synced. Returns
/// the final path in `new/`.
pub fn deliver(
    dir: &Path,
    copy: &[u8],
    hostname: &str,
    size_limit: u64,
    uid: Uid,
) -> Result<PathBuf, MaildirError> {
    let placement = Placement {
        stamp: None,
        sync_dir: true,
    };
    deliver_placed(dir, copy, hostname, size_limit, uid, placement).map(|s| s.path)
}

/// As [`deliver`], named and synced as `placement` says.
pub fn deliver_placed(
    dir: &Path,
    copy: &[u8],
    hostname: &str,
    size_limit: u64,
    uid: Uid,
    placement: Placement<'_>,
) -> Result<Stored, MaildirError> {
    if size_limit > 0 && copy.len() as u64 > size_limit {
        return Err(MaildirError::Full {
            len: copy.len() as u64,
            limit: size_limit,
        });
    }
    if std::fs::symlink_metadata(dir).is_err() {
        make_dir(dir)?;
    }
    check_top(dir, uid)?;
    let (tmp_dir, new_dir, cur_dir) = (dir.join("tmp"), dir.join("new"), dir.join("cur"));
    for sub in [&tmp_dir, &new_dir, &cur_dir] {
        check_sub(sub)?;
    }
    let stamped = placement.stamp.map(|s| stamped_name(&s, hostname));
    if let (Some(name), Some(stamp)) = (&stamped, placement.stamp) {
        if let Some(path) = earlier_copy(&new_dir, &cur_dir, name, stamp.retry) {
            return finish(placement, new_dir, path, true);
        }
    }

    let (mut file, tmp_name) = create_unique(&tmp_dir, hostname)?;
    let tmp_path = tmp_dir.join(&tmp_name);
    let new_path = new_dir.join(stamped.as_deref().unwrap_or(&tmp_name));
    let result = write_and_link(&mut file, copy, &tmp_path, &new_path);
    // The tmp name goes in every case: on success the data lives on in new/.
    let _ = std::fs::remove_file(&tmp_path);
    let earlier = match result {
        Ok(()) => false,
        // Another attempt at the same stamped delivery linked it first: one copy.
        Err(MaildirError::Link { ref source, .. })
            if stamped.is_some() && source.kind() == io::ErrorKind::AlreadyExists =>
        {
            true
        }
        Err(e) => return Err(e),
    };
    finish(placement, new_dir, new_path, earlier)
}

/// Syncs `new/` when the placement asks for it (on failure the new name goes, so the
/// retry stores the message again rather than trust an entry that may vanish).
fn finish(
    placement: Placement<'_>,
    new_dir: PathBuf,
    path: PathBuf,
    earlier: bool,
) -> Result<Stored, MaildirError> {
    if placement.sync_dir {
        if let Err(e) = sync_new_dir(&new_dir) {
            if path.starts_with(&new_dir) {
                let _ = std::fs::remove_file(&path);
            }
            return Err(e);
        }
    }
    Ok(Stored {
        path,
        new_dir,
        earlier,
    })
}

/// fsyncs a Maildir's `new/`, making the names linked into it durable.
pub fn sync_new_dir(new_dir: &Path) -> Result<(), MaildirError> {
    File::open(new_dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| MaildirError::Sync {
            path: new_dir.to_path_buf(),
            source,
        })
}

/// An earlier copy of the stamped delivery `name`: `new/NAME`, or with `look_in_cur`
/// a `cur/NAME` with or without reader flags (`NAME:2,S`, Dovecot's `NAME,S=...`).
/// A `cur/` that cannot be read counts as holding none (the message is then stored
/// again: a duplicate at worst, never a loss).
fn earlier_copy(new_dir: &Path, cur_dir: &Path, name: &str, look_in_cur: bool) -> Option<PathBuf> {
    let in_new = new_dir.join(name);
    if std::fs::symlink_metadata(&in_new).is_ok() {
        return Some(in_new);
    }
    if !look_in_cur {
        return None;
    }
    let entries = std::fs::read_dir(cur_dir).ok()?;
    entries.filter_map(Result::ok).find_map(|e| {
        let file = e.file_name();
        let file = file.to_str()?;
        let rest = file.strip_prefix(name)?;
        (rest.is_empty() || rest.starts_with(':') || rest.starts_with(',')).then(|| e.path())
    })
}

/// Creates `tmp/UNIQUE` with O_EXCL, trying a fresh name if one is taken.
fn create_unique(tmp_dir: &Path, hostname: &str) -> Result<(File, String), MaildirError> {
    let mut last_err = None;
    for _ in 0..5 {
        let name = unique_name(SystemTime::now(), hostname);
        let path = tmp_dir.join(&name);
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path);
        match opened {
            Ok(f) => return Ok((f, name)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some((path, e)),
            Err(source) => return Err(MaildirError::Create { path, source }),
        }
    }
    let (path, source) =
        last_err.unwrap_or_else(|| (tmp_dir.to_path_buf(), io::ErrorKind::AlreadyExists.into()));
    Err(MaildirError::Create { path, source })
}

fn write_and_link(
    file: &mut File,
    copy: &[u8],
    tmp_path: &Path,
    new_path: &Path,
) -> Result<(), MaildirError> {
    file.write_all(copy)
        .and_then(|()| file.sync_all())
        .map_err(|source| MaildirError::Write {
            path: tmp_path.to_path_buf(),
            source,
        })?;
    std::fs::hard_link(tmp_path, new_path).map_err(|source| MaildirError::Link {
        path: new_path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn me() -> Uid {
        nix::unistd::geteuid()
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn delivers_into_new() {
        let t = TestDir::new("maildir");
        let md = t.path().join("home/Maildir");
        let copy = b"Return-Path: <a@b>\nDelivered-To: c@d\nSubject: x\n\nbody\n";
        let path = deliver(&md, copy, "host.example", 0, me()).unwrap();
        assert_eq!(entries(&md.join("new")), vec![path.clone()]);
        assert!(entries(&md.join("tmp")).is_empty());
        assert!(entries(&md.join("cur")).is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), copy);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(meta.nlink(), 1);
        for sub in ["", "tmp", "new", "cur"] {
            assert_eq!(
                std::fs::metadata(md.join(sub)).unwrap().mode() & 0o777,
                0o700
            );
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.ends_with(".host.example"), "{name}");
        // A second delivery gets another name.
        let second = deliver(&md, copy, "host.example", 0, me()).unwrap();
        assert_ne!(second, path);
        assert_eq!(entries(&md.join("new")).len(), 2);
    }

    fn stamp(offset: u64, retry: bool) -> Stamp<'static> {
        Stamp {
            queue_id: "3F2A81C0D4E",
            arrival_us: 1_700_000_000_123_456,
            offset,
            retry,
        }
    }

    #[test]
    fn stamped_name_shape() {
        assert_eq!(
            stamped_name(&stamp(181, false), "mx/a:b"),
            "1700000000.M123456Q3F2A81C0D4E_181.mx\\057a\\072b"
        );
    }

    #[test]
    fn a_stamped_delivery_is_stored_once() {
        let t = TestDir::new("maildir-stamped");
        let md = t.path().join("Maildir");
        let placed = |offset, retry, sync_dir| Placement {
            stamp: Some(stamp(offset, retry)),
            sync_dir,
        };
        let first = deliver_placed(&md, b"one\n", "h", 0, me(), placed(7, false, true)).unwrap();
        assert!(!first.earlier);
        assert_eq!(first.new_dir, md.join("new"));
        assert_eq!(
            first.path,
            md.join("new").join(stamped_name(&stamp(7, false), "h"))
        );
        // The same message and recipient again (a retry after a crash): found in new/,
        // nothing written, and the content is the first attempt's.
        let again = deliver_placed(&md, b"two\n", "h", 0, me(), placed(7, false, false)).unwrap();
        assert!(again.earlier);
        assert_eq!(again.path, first.path);
        assert_eq!(std::fs::read(&first.path).unwrap(), b"one\n");
        assert_eq!(entries(&md.join("new")).len(), 1);
        assert!(entries(&md.join("tmp")).is_empty());
        // Another recipient of the same message is another file.
        let other = deliver_placed(&md, b"one\n", "h", 0, me(), placed(9, false, true)).unwrap();
        assert!(!other.earlier);
        assert_eq!(entries(&md.join("new")).len(), 2);
    }

    #[test]
    fn a_retry_finds_the_copy_a_reader_moved_to_cur() {
        let t = TestDir::new("maildir-cur");
        let md = t.path().join("Maildir");
        let placed = |retry| Placement {
            stamp: Some(stamp(7, retry)),
            sync_dir: true,
        };
        let first = deliver_placed(&md, b"one\n", "h", 0, me(), placed(false)).unwrap();
        // What Dovecot does when a client sees the message: new/NAME -> cur/NAME:2,S.
        let name = first
            .path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let moved = md.join("cur").join(format!("{name}:2,S"));
        std::fs::rename(&first.path, &moved).unwrap();
        let again = deliver_placed(&md, b"one\n", "h", 0, me(), placed(true)).unwrap();
        assert!(again.earlier);
        assert_eq!(again.path, moved);
        assert!(entries(&md.join("new")).is_empty());
        // Without the retry hint cur/ is not read (a first attempt cannot have a copy):
        // a message older than the hint would be stored again.
        let fresh = deliver_placed(&md, b"one\n", "h", 0, me(), placed(false)).unwrap();
        assert!(!fresh.earlier);
    }

    #[test]
    fn a_staged_delivery_leaves_the_directory_sync_to_the_caller() {
        let t = TestDir::new("maildir-staged");
        let md = t.path().join("Maildir");
        let placement = Placement {
            stamp: None,
            sync_dir: false,
        };
        let stored = deliver_placed(&md, b"x\n", "h", 0, me(), placement).unwrap();
        assert!(stored.path.starts_with(md.join("new")));
        sync_new_dir(&stored.new_dir).unwrap();
        assert!(matches!(
            sync_new_dir(&md.join("gone")),
            Err(MaildirError::Sync { .. })
        ));
    }

    #[test]
    fn unique_name_shape() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456);
        let n = unique_name(t, "a/b:c");
        let pid = std::process::id();
        assert!(n.starts_with(&format!("1700000000.M123456P{pid}Q")), "{n}");
        assert!(n.ends_with(".a\\057b\\072c"), "{n}");
    }

    #[test]
    fn size_limit() {
        let t = TestDir::new("maildir-limit");
        let md = t.path().join("Maildir");
        let err = deliver(&md, &[b'x'; 100], "h", 99, me()).unwrap_err();
        assert!(matches!(
            err,
            MaildirError::Full {
                len: 100,
                limit: 99
            }
        ));
        assert!(!md.exists());
        deliver(&md, &[b'x'; 100], "h", 100, me()).unwrap();
    }

    #[test]
    fn symlinked_subdirectory_refused() {
        let t = TestDir::new("maildir-symlink");
        let md = t.path().join("Maildir");
        std::fs::create_dir_all(md.join("tmp")).unwrap();
        std::fs::create_dir_all(t.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), md.join("new")).unwrap();
        let err = deliver(&md, b"x\n", "h", 0, me()).unwrap_err();
        assert!(matches!(err, MaildirError::NotDirectory(_)), "{err}");
        assert!(entries(&t.path().join("elsewhere")).is_empty());
        assert!(entries(&md.join("tmp")).is_empty());
    }

    #[test]
    fn own_symlinked_maildir_followed_foreign_refused() {
        let t = TestDir::new("maildir-toplink");
        let real = t.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = t.path().join("Maildir");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        deliver(&link, b"x\n", "h", 0, me()).unwrap();
        assert_eq!(entries(&real.join("new")).len(), 1);
        // Some uid that is neither the link's owner nor root.
        let other = if me().is_root() {
            Uid::from_raw(4243)
        } else {
            Uid::from_raw(me().as_raw() + 4242)
        };
        if me().is_root() {
            // The link is owned by root, which is trusted; make it someone else's.
            nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                &link,
                Some(Uid::from_raw(4242)),
                None,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .unwrap();
        }
        let err = deliver(&link, b"x\n", "h", 0, other).unwrap_err();
        assert!(matches!(err, MaildirError::ForeignSymlink(..)), "{err}");
    }

    #[test]
    fn file_in_place_of_maildir() {
        let t = TestDir::new("maildir-file");
        let md = t.path().join("Maildir");
        std::fs::write(&md, b"").unwrap();
        assert!(matches!(
            deliver(&md, b"x\n", "h", 0, me()),
            Err(MaildirError::NotDirectory(_))
        ));
    }
}
