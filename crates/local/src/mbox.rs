//! mbox delivery: the `From ` separator line, mboxrd `>From ` quoting, a blank line
//! after each message, dotlock plus fcntl locking, Postfix's safe_open rules, the
//! mailbox_size_limit, and truncating back to the old size when a write fails.
//!
//! Locking uses open-file-description locks (F_OFD_SETLK) on Linux: they conflict with
//! the classic fcntl locks of other mail programs (mutt, procmail, dovecot) exactly like
//! F_SETLK does, and they also exclude other threads of the same process. Waiting is a
//! bounded retry loop rather than F_SETLKW, so a mail reader that never lets go cannot
//! hang the agent: after the deadline the delivery is deferred.

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use crate::dotlock::{Dotlock, DotlockError};
use crate::privileges::Identity;
use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What went wrong updating an mbox file.
#[derive(Debug, thiserror::Error)]
pub enum MboxError {
    #[error("cannot open file: file is a symbolic link")]
    Symlink,
    #[error("cannot open file: file is not a regular file")]
    NotRegular,
    #[error("cannot open file: file has {0} hard links")]
    HardLinks(u64),
    #[error("cannot open file: file has wrong owner (uid {0})")]
    WrongOwner(u32),
    #[error("cannot open file: file was replaced while opening it")]
    Replaced,
    /// A `/file` destination with an execute bit: appending mail to a program or
    /// script would let whoever writes mail change what it runs.
    #[error("destination file is executable")]
    Executable,
    #[error("cannot open file: {0}")]
    Open(#[source] io::Error),
    #[error("unable to lock for exclusive access: {0}")]
    Lock(#[source] io::Error),
    #[error("unable to lock for exclusive access: {0}")]
    Dotlock(#[from] DotlockError),
    #[error("error writing message: {0}")]
    Write(#[source] io::Error),
    #[error("mailbox full: {size} + {len} bytes would exceed mailbox_size_limit {limit}")]
    Full { size: u64, len: u64, limit: u64 },
}

impl MboxError {
    /// The underlying system error, if this is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            MboxError::Open(e) | MboxError::Lock(e) | MboxError::Write(e) => Some(e),
            MboxError::Dotlock(DotlockError::Io { source, .. }) => Some(source),
            _ => None,
        }
    }
}

/// How to deliver into one mbox file.
#[derive(Debug, Clone)]
pub struct MboxOptions {
    /// 0 = no limit.
    pub size_limit: u64,
    /// How long to wait for the dotlock and for the fcntl lock (each).
    pub lock_wait: Duration,
    /// Take a dotlock too (when false, only the fcntl lock).
    pub dotlock: bool,
    /// When opening as root for someone else (the spool): give a new file to this
    /// identity, and refuse an existing file owned by another uid.
    pub owner: Option<Identity>,
}

/// An open, checked mbox file.
#[derive(Debug)]
pub struct Mailbox {
    file: File,
    path: PathBuf,
}

impl Mailbox {
    /// Opens `path` for appending under safe_open rules: no symlink (O_NOFOLLOW), a
    /// regular file, one hard link, the same inode as the name (no race), owned by
    /// `owner` when given. A missing file is created O_EXCL with mode 0600 and, when
    /// `owner` is given, chowned to it.
    pub fn open(path: &Path, owner: Option<Identity>) -> Result<Mailbox, MboxError> {
        // O_NONBLOCK: a FIFO planted in place of the mailbox must not block the open.
        let flags = libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC;
        for _ in 0..3 {
            match OpenOptions::new()
                .append(true)
                .custom_flags(flags)
                .open(path)
            {
                Ok(file) => return Self::check_existing(file, path, owner),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(open_error(e)),
            }
            let created = OpenOptions::new()
                .append(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(flags)
                .open(path);
            match created {
                Ok(file) => {
                    if let Some(id) = owner {
                        nix::unistd::fchown(&file, Some(id.uid), Some(id.gid))
                            .map_err(|e| MboxError::Open(e.into()))?;
                    }
                    return Ok(Mailbox {
                        file,
                        path: path.to_path_buf(),
                    });
                }
                // Someone created it between our two opens: check theirs.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(open_error(e)),
            }
        }
        Err(MboxError::Replaced)
    }

    fn check_existing(
        file: File,
        path: &Path,
        owner: Option<Identity>,
    ) -> Result<Mailbox, MboxError> {
        let fmeta = file.metadata().map_err(MboxError::Open)?;
        if !fmeta.file_type().is_file() {
            return Err(MboxError::NotRegular);
        }
        if fmeta.nlink() != 1 {
            return Err(MboxError::HardLinks(fmeta.nlink()));
        }
        let lmeta = std::fs::symlink_metadata(path).map_err(MboxError::Open)?;
        if lmeta.dev() != fmeta.dev() || lmeta.ino() != fmeta.ino() {
            return Err(MboxError::Replaced);
        }
        if let Some(id) = owner {
            if fmeta.uid() != id.uid.as_raw() {
                return Err(MboxError::WrongOwner(fmeta.uid()));
            }
        }
        Ok(Mailbox {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The mailbox path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes an exclusive fcntl lock on the whole file, retrying until `wait` passed.
    /// Released when the Mailbox is dropped (the file closed).
    pub fn lock(&self, wait: Duration) -> Result<(), MboxError> {
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            match try_lock(&self.file) {
                Ok(()) => return Ok(()),
                Err(Errno::EAGAIN) | Err(Errno::EACCES) if Instant::now() < deadline => {
                    std::thread::sleep(
                        pause.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(MboxError::Lock(e.into())),
            }
        }
    }

    /// Appends `record` (a complete mbox entry, see [`format_record`]) and fsyncs. The
    /// caller holds the lock. Refuses when the file would grow past `size_limit`
    /// (0 = none); after a failed write or fsync, truncates back to the old size so the
    /// mailbox never holds half a message.
    pub fn append(&mut self, record: &[u8], size_limit: u64) -> Result<(), MboxError> {
        let size = self.file.metadata().map_err(MboxError::Write)?.len();
        let len = record.len() as u64;
        if size_limit > 0 && size.saturating_add(len) > size_limit {
            return Err(MboxError::Full {
                size,
                len,
                limit: size_limit,
            });
        }
        let written = self
            .file
            .write_all(record)
            .and_then(|()| self.file.sync_all());
        if let Err(e) = written {
            if let Err(te) = self.file.set_len(size) {
                log::warn!(
                    "{}: cannot truncate back to {size} bytes: {te}",
                    self.path.display()
                );
            }
            return Err(MboxError::Write(e));
        }
        Ok(())
    }
}

fn open_error(e: io::Error) -> MboxError {
    match e.raw_os_error() {
        Some(libc::ELOOP) => MboxError::Symlink,
        Some(libc::ENXIO) => MboxError::NotRegular,
        _ => MboxError::Open(e),
    }
}

/// One non-blocking attempt at a whole-file write lock.
fn try_lock(file: &File) -> Result<(), Errno> {
    // SAFETY: libc::flock is a plain C struct of integers; all-zero is a valid value
    // (and on some targets it has padding/extra fields we must not leave uninitialised).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0; // to end of file, however far it grows
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let arg = nix::fcntl::FcntlArg::F_OFD_SETLK(&fl);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let arg = nix::fcntl::FcntlArg::F_SETLK(&fl);
    nix::fcntl::fcntl(file, arg).map(|_| ())
}

/// Builds one mbox entry: `From SENDER DATE`, the copy with mboxrd quoting (a `>` added
/// to every line matching `^>*From `), and an empty line. `copy` ends with a newline
/// (see headers::delivered_copy); one is added if not.
pub fn format_record(sender: &str, date: &str, copy: &[u8]) -> Vec<u8> {
    let envelope = if sender.is_empty() {
        "MAILER-DAEMON"
    } else {
        sender
    };
    let mut out = Vec::with_capacity(copy.len() + copy.len() / 50 + 64);
    out.extend_from_slice(format!("From {envelope} {date}\n").as_bytes());
    for line in copy.split_inclusive(|&b| b == b'\n') {
        let unquoted = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
        if line[unquoted..].starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// `Mon Nov 23 09:35:12 2026` (asctime's layout) for `secs` in local time.
pub fn asctime(secs: i64) -> String {
    // SAFETY: an all-zero tm is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t = secs as libc::time_t;
    // SAFETY: both pointers are to live, properly aligned locals; localtime_r is the
    // thread-safe variant and writes only to `tm`.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return "Thu Jan  1 00:00:00 1970".to_string();
    }
    format_tm(&tm)
}

fn format_tm(tm: &libc::tm) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = DAYS.get(tm.tm_wday as usize).copied().unwrap_or("???");
    let mon = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("???");
    format!(
        "{day} {mon} {:2} {:02}:{:02}:{:02} {}",
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

/// The whole mbox delivery as one identity: dotlock (if wanted), open, lock, append.
pub fn deliver(path: &Path, record: &[u8], opts: &MboxOptions) -> Result<(), MboxError> {
    append_to(path, record, opts, false)
}

/// [`deliver`] for a `/file` destination of an alias, .forward or :include: list:
/// like Postfix's local, an existing file with any execute bit is refused (checked on
/// the opened file, so a rename in between cannot slip an executable in).
pub fn deliver_file(path: &Path, record: &[u8], opts: &MboxOptions) -> Result<(), MboxError> {
    append_to(path, record, opts, true)
}

fn append_to(
    path: &Path,
    record: &[u8],
    opts: &MboxOptions,
    refuse_executable: bool,
) -> Result<(), MboxError> {
    let _dotlock = if opts.dotlock {
        Dotlock::acquire(path, opts.lock_wait)?
    } else {
        None
    };
    let mut mailbox = Mailbox::open(path, opts.owner)?;
    if refuse_executable {
        let mode = mailbox.file.metadata().map_err(MboxError::Open)?.mode();
        if mode & 0o111 != 0 {
            return Err(MboxError::Executable);
        }
    }
    mailbox.lock(opts.lock_wait)?;
    mailbox.append(record, opts.size_limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use proptest::prelude::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn file_destination_refuses_executables() {
        let t = TestDir::new("mbox-exec");
        let script = t.path().join("tool.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        for mode in [0o700, 0o610, 0o601] {
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(mode)).unwrap();
            let o = MboxOptions {
                dotlock: false,
                ..opts()
            };
            let e = deliver_file(&script, b"From x\n\n", &o).unwrap_err();
            assert!(matches!(e, MboxError::Executable), "{mode:o}: {e}");
        }
        assert_eq!(std::fs::read(&script).unwrap(), b"#!/bin/sh\n");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o600)).unwrap();
        let o = MboxOptions {
            dotlock: false,
            ..opts()
        };
        deliver_file(&script, b"From x\n\n", &o).unwrap();
        // A new file is created 0600 and accepted.
        deliver_file(&t.path().join("new"), b"From x\n\n", &o).unwrap();
    }

    fn opts() -> MboxOptions {
        MboxOptions {
            size_limit: 0,
            lock_wait: Duration::from_secs(20),
            dotlock: true,
            owner: None,
        }
    }

    /// Splits an mbox into entries and undoes the mboxrd quoting: (From line, body).
    fn parse_mbox(data: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        let mut prev_blank = true;
        for line in data.split_inclusive(|&b| b == b'\n') {
            if prev_blank && line.starts_with(b"From ") {
                if let Some(last) = out.last_mut() {
                    last.1.pop(); // the separating blank line
                }
                out.push((
                    String::from_utf8_lossy(line).trim_end().to_string(),
                    Vec::new(),
                ));
            } else if let Some(last) = out.last_mut() {
                let q = line.iter().position(|&b| b != b'>').unwrap_or(line.len());
                if q > 0 && line[q..].starts_with(b"From ") {
                    last.1.extend_from_slice(&line[1..]);
                } else {
                    last.1.extend_from_slice(line);
                }
            } else {
                panic!("data before the first From line");
            }
            prev_blank = line == b"\n";
        }
        if let Some(last) = out.last_mut() {
            last.1.pop();
        }
        out
    }

    #[test]
    fn record_format_and_quoting() {
        let copy = b"Subject: x\n\nFrom here\n>From there\n>>From afar\nFromage\n From x\n";
        let rec = format_record("", "Mon Nov 23 09:35:12 2026", copy);
        assert_eq!(
            rec,
            b"From MAILER-DAEMON Mon Nov 23 09:35:12 2026\nSubject: x\n\n>From here\n>>From there\n>>>From afar\nFromage\n From x\n\n"
        );
        let rec = format_record("a@b", "D", b"no newline");
        assert_eq!(rec, b"From a@b D\nno newline\n\n");
    }

    #[test]
    fn asctime_layout() {
        // SAFETY: all-zero tm is valid; fields set below.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        tm.tm_wday = 1;
        tm.tm_mon = 10;
        tm.tm_mday = 3;
        tm.tm_hour = 9;
        tm.tm_min = 5;
        tm.tm_sec = 2;
        tm.tm_year = 126;
        assert_eq!(format_tm(&tm), "Mon Nov  3 09:05:02 2026");
        assert_eq!(asctime(0).len(), 24);
    }

    #[test]
    fn deliver_appends_entries() {
        let dir = TestDir::new("mbox-append");
        let path = dir.path().join("alice");
        deliver(
            &path,
            &format_record("a@b", "D", b"Subject: 1\n\nFrom me\n"),
            &opts(),
        )
        .unwrap();
        deliver(
            &path,
            &format_record("", "D", b"Subject: 2\n\nbody\n"),
            &opts(),
        )
        .unwrap();
        let data = std::fs::read(&path).unwrap();
        let msgs = parse_mbox(&data);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            msgs[0],
            ("From a@b D".into(), b"Subject: 1\n\nFrom me\n".to_vec())
        );
        assert_eq!(
            msgs[1],
            (
                "From MAILER-DAEMON D".into(),
                b"Subject: 2\n\nbody\n".to_vec()
            )
        );
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.path().join("alice.lock").exists());
    }

    #[test]
    fn symlink_refused() {
        let dir = TestDir::new("mbox-symlink");
        let target = dir.path().join("target");
        std::fs::write(&target, b"").unwrap();
        let path = dir.path().join("alice");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = deliver(&path, b"From x D\n\n", &opts()).unwrap_err();
        assert!(matches!(err, MboxError::Symlink), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"");
        // A dangling symlink must not be followed to create its target either.
        std::fs::remove_file(&target).unwrap();
        let err = deliver(&path, b"From x D\n\n", &opts()).unwrap_err();
        assert!(matches!(err, MboxError::Symlink), "{err}");
        assert!(!target.exists());
    }

    #[test]
    fn hard_link_and_non_regular_refused() {
        let dir = TestDir::new("mbox-links");
        let path = dir.path().join("alice");
        std::fs::write(&path, b"").unwrap();
        std::fs::hard_link(&path, dir.path().join("other")).unwrap();
        assert!(matches!(
            deliver(&path, b"x\n", &opts()),
            Err(MboxError::HardLinks(2))
        ));
        let d = dir.path().join("bob");
        std::fs::create_dir(&d).unwrap();
        let err = deliver(&d, b"x\n", &opts()).unwrap_err();
        assert!(
            matches!(err, MboxError::Open(_) | MboxError::NotRegular),
            "{err}"
        );
        let fifo = dir.path().join("carol");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            deliver(&fifo, b"x\n", &opts()),
            Err(MboxError::NotRegular)
        ));
    }

    #[test]
    fn wrong_owner_refused() {
        let dir = TestDir::new("mbox-owner");
        let path = dir.path().join("alice");
        std::fs::write(&path, b"").unwrap();
        let me = Identity::current();
        let other = Identity {
            uid: nix::unistd::Uid::from_raw(me.uid.as_raw() + 1),
            gid: me.gid,
        };
        let o = MboxOptions {
            owner: Some(other),
            ..opts()
        };
        assert!(matches!(
            deliver(&path, b"x\n", &o),
            Err(MboxError::WrongOwner(_))
        ));
        let o = MboxOptions {
            owner: Some(me),
            ..opts()
        };
        deliver(&path, b"x\n", &o).unwrap();
    }

    #[test]
    fn size_limit() {
        let dir = TestDir::new("mbox-limit");
        let path = dir.path().join("alice");
        let rec = format_record("a@b", "D", b"Subject: x\n\n0123456789\n");
        let o = MboxOptions {
            size_limit: rec.len() as u64 * 2,
            ..opts()
        };
        deliver(&path, &rec, &o).unwrap();
        deliver(&path, &rec, &o).unwrap();
        let err = deliver(&path, &rec, &o).unwrap_err();
        assert!(matches!(err, MboxError::Full { .. }), "{err}");
        assert!(err.to_string().starts_with("mailbox full"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            rec.len() as u64 * 2
        );
    }

    #[test]
    fn failed_write_truncates_back() {
        // Writing to a file opened without write permission for the data fails; use a
        // Mailbox whose fd is read-only to force the error path.
        let dir = TestDir::new("mbox-trunc");
        let path = dir.path().join("alice");
        std::fs::write(&path, b"From a D\nold\n\n").unwrap();
        let file = File::open(&path).unwrap();
        let mut mb = Mailbox {
            file,
            path: path.clone(),
        };
        let err = mb.append(b"From b D\nnew\n\n", 0).unwrap_err();
        assert!(matches!(err, MboxError::Write(_)));
        assert_eq!(std::fs::read(&path).unwrap(), b"From a D\nold\n\n");
    }

    fn contention(dotlock: bool) {
        let dir = TestDir::new("mbox-contention");
        let path = dir.path().join("shared");
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let o = MboxOptions { dotlock, ..opts() };
                    for i in 0..50 {
                        let mut body = format!("Subject: {t}-{i}\n\n").into_bytes();
                        for l in 0..20 {
                            body.extend_from_slice(
                                format!("From line {l} of {t}-{i}\n").as_bytes(),
                            );
                        }
                        let rec = format_record("s@x", "D", &body);
                        deliver(&path, &rec, &o).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let msgs = parse_mbox(&std::fs::read(&path).unwrap());
        assert_eq!(msgs.len(), 100);
        let mut seen = std::collections::HashSet::new();
        for (from, body) in &msgs {
            assert_eq!(from, "From s@x D");
            let text = String::from_utf8(body.clone()).unwrap();
            let subject = text
                .lines()
                .next()
                .unwrap()
                .strip_prefix("Subject: ")
                .unwrap()
                .to_string();
            assert_eq!(text.lines().count(), 22, "{text}");
            for (l, line) in text.lines().skip(2).enumerate() {
                assert_eq!(line, format!("From line {l} of {subject}"));
            }
            assert!(seen.insert(subject));
        }
    }

    #[test]
    fn lock_contention_with_dotlock() {
        contention(true);
    }

    #[test]
    fn lock_contention_fcntl_only() {
        contention(false);
    }

    proptest! {
        #[test]
        fn quoting_round_trips(lines in proptest::collection::vec("(>{0,3}From |From|>)?[a-z ]{0,10}", 0..20)) {
            let mut copy = Vec::new();
            for l in &lines {
                copy.extend_from_slice(l.as_bytes());
                copy.push(b'\n');
            }
            let rec = format_record("s", "D", &copy);
            let msgs = parse_mbox(&rec);
            prop_assert_eq!(msgs.len(), 1);
            prop_assert_eq!(&msgs[0].1, &copy);
        }
    }
}
