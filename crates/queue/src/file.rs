//! Reading queue files and marking recipients done.

use crate::content::{At, MessageContent};
use crate::parse::{self, Depth, ParseError};
use crate::record::{REC_DONE, REC_RCPT};
use crate::{is_valid_queue_id, queue_path, QueueError, QueueName};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The envelope of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// Envelope sender, "" for `<>`.
    pub sender: String,
    /// Arrival time, microseconds since the epoch.
    pub arrival_us: i64,
    /// Free-form attributes (`client_name`, `client_address`, `helo`, `protocol`,
    /// `uid` for local submissions, `sasl_username`, `rewrite_context`, ...).
    pub attrs: Vec<(String, String)>,
    pub recipients: Vec<Recipient>,
}

impl Envelope {
    /// The first attribute with this name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipient {
    pub address: String,
    /// As originally received (RFC 3461 ORCPT or the address before rewriting).
    pub orig_address: String,
    /// DSN NOTIFY value as received, "" if none.
    pub notify: String,
    /// Already delivered or bounced (marked in place).
    pub done: bool,
    /// Byte offset of the recipient record in the file; set when read, ignored on write.
    pub offset: u64,
}

/// A parsed queue file.
#[derive(Debug, Clone)]
pub struct QueueFile {
    pub id: String,
    pub queue: QueueName,
    pub path: PathBuf,
    pub envelope: Envelope,
    /// Size of the message content in bytes.
    pub content_len: u64,
}

impl QueueFile {
    /// Opens and parses `root/queue/id`. Content is not read. Returns
    /// [`QueueError::Corrupt`] for anything that does not parse (the caller moves the file
    /// to corrupt/), [`QueueError::NotFound`] if it is gone.
    pub fn open(root: &Path, queue: QueueName, id: &str) -> Result<QueueFile, QueueError> {
        if !is_valid_queue_id(id) {
            return Err(QueueError::Invalid {
                what: "queue id",
                value: id.to_string(),
            });
        }
        let mut qf = QueueFile::open_path(&queue_path(root, queue, id), queue)?;
        qf.id = id.to_string();
        Ok(qf)
    }

    /// [`QueueFile::open`] with only the recipients whose record offset `keep`
    /// accepts in `envelope.recipients`; the others are skipped unread (and so not
    /// checked: qmgr parsed them all when it activated the file). For a delivery
    /// agent asked about a few recipients of a message with 100 000: each smtp
    /// process held all of them, about 20 MB, for every request.
    pub fn open_keeping(
        root: &Path,
        queue: QueueName,
        id: &str,
        keep: &dyn Fn(u64) -> bool,
    ) -> Result<QueueFile, QueueError> {
        if !is_valid_queue_id(id) {
            return Err(QueueError::Invalid {
                what: "queue id",
                value: id.to_string(),
            });
        }
        let mut qf =
            QueueFile::parse_path(&queue_path(root, queue, id), queue, &|off, _| keep(off))?;
        qf.id = id.to_string();
        Ok(qf)
    }

    /// The next slice of a message's pending recipients for qmgr, which holds a
    /// bounded number of a large message's recipients in memory at a time: at most
    /// `max` recipients not yet done whose records start at or after `from`, read
    /// from the envelope (content is not looked at: `content_len` is 0). Also
    /// returns where the next slice starts: the offset of the first pending
    /// recipient left out, or None when this slice holds the last of them.
    pub fn open_slice(
        root: &Path,
        queue: QueueName,
        id: &str,
        from: u64,
        max: usize,
    ) -> Result<(QueueFile, Option<u64>), QueueError> {
        QueueFile::slice(root, queue, id, from, max, None)
    }

    /// The first slice of [`QueueFile::open_slice`] for qmgr's activation, with the
    /// content's length (the content records are walked, not read), and every
    /// recipient left out of the slice, done ones too, parsed and shown to `visit`:
    /// the whole envelope is checked and looked at once, and never held.
    pub fn open_first_slice(
        root: &Path,
        queue: QueueName,
        id: &str,
        max: usize,
        visit: &mut dyn FnMut(&Recipient),
    ) -> Result<(QueueFile, Option<u64>), QueueError> {
        QueueFile::slice(root, queue, id, 0, max, Some(visit))
    }

    fn slice(
        root: &Path,
        queue: QueueName,
        id: &str,
        from: u64,
        max: usize,
        visit: Option<&mut dyn FnMut(&Recipient)>,
    ) -> Result<(QueueFile, Option<u64>), QueueError> {
        if !is_valid_queue_id(id) {
            return Err(QueueError::Invalid {
                what: "queue id",
                value: id.to_string(),
            });
        }
        let path = queue_path(root, queue, id);
        let taken = std::cell::Cell::new(0usize);
        let next = std::cell::Cell::new(None);
        let keep = |off: u64, done: bool| {
            if done || off < from || next.get().is_some() {
                return false;
            }
            if taken.get() < max {
                taken.set(taken.get() + 1);
                true
            } else {
                next.set(Some(off));
                false
            }
        };
        // The first slice also gives the content length (qmgr's message size).
        let depth = if visit.is_some() {
            Depth::Full
        } else {
            Depth::Envelope
        };
        let (file, len) = open_existing(&path, false)?;
        let parsed = parse::parse_visiting(file, len, depth, &keep, visit)
            .map_err(|e| map_parse(&path, e))?;
        let qf = QueueFile {
            id: id.to_string(),
            queue,
            path,
            envelope: parsed.envelope,
            content_len: parsed.content_len,
        };
        Ok((qf, next.get()))
    }

    /// Parses a file at any path (maildrop files have no queue id names).
    /// `id` is the file name (whatever it is).
    pub fn open_path(path: &Path, queue: QueueName) -> Result<QueueFile, QueueError> {
        QueueFile::parse_path(path, queue, &|_, _| true)
    }

    /// [`QueueFile::open_keeping`], and the content of the file just parsed, held open
    /// to be streamed (see [`MessageContent`]): the smtp client reads a message of any
    /// size through a buffer, as often as it needs to, from the file it parsed.
    pub fn open_with_content(
        root: &Path,
        queue: QueueName,
        id: &str,
        keep: &dyn Fn(u64) -> bool,
    ) -> Result<(QueueFile, MessageContent), QueueError> {
        if !is_valid_queue_id(id) {
            return Err(QueueError::Invalid {
                what: "queue id",
                value: id.to_string(),
            });
        }
        let (mut qf, content) =
            QueueFile::parse_open(&queue_path(root, queue, id), queue, &|off, _| keep(off))?;
        qf.id = id.to_string();
        Ok((qf, content))
    }

    fn parse_path(
        path: &Path,
        queue: QueueName,
        keep: &dyn Fn(u64, bool) -> bool,
    ) -> Result<QueueFile, QueueError> {
        QueueFile::parse_open(path, queue, keep).map(|(qf, _)| qf)
    }

    /// Parses the file at `path` and returns it with its open content.
    fn parse_open(
        path: &Path,
        queue: QueueName,
        keep: &dyn Fn(u64, bool) -> bool,
    ) -> Result<(QueueFile, MessageContent), QueueError> {
        let (file, len) = open_existing(path, false)?;
        let parsed = parse::parse_keeping(At::new(&file), len, Depth::Full, keep)
            .map_err(|e| map_parse(path, e))?;
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let content =
            MessageContent::new(file, path, len, parsed.content_offset, parsed.content_len);
        let qf = QueueFile {
            id,
            queue,
            path: path.to_path_buf(),
            envelope: parsed.envelope,
            content_len: parsed.content_len,
        };
        Ok((qf, content))
    }

    /// The message content, to be streamed: the file at [`QueueFile::path`] opened
    /// again and parsed again, since it may have been replaced since this was read
    /// (qmgr's envelope rewrite renames a new file over it, with other offsets).
    pub fn content(&self) -> Result<MessageContent, QueueError> {
        QueueFile::parse_open(&self.path, self.queue, &|_, _| false).map(|(_, c)| c)
    }

    /// The whole message content (headers and body, CRLF or LF as stored: LF).
    pub fn read_content(&self) -> Result<Vec<u8>, QueueError> {
        self.content()?.read_all()
    }

    /// Marks the recipient whose record starts at `offset` as done and fdatasyncs.
    /// Idempotent.
    /// Refuses offsets that do not point at a recipient record.
    ///
    /// The offset must be one of the recipient records of the envelope (checked by
    /// parsing the envelope, so a content byte that happens to be `R` is never touched),
    /// and the byte there must be `R` or `D`.
    pub fn mark_done(path: &Path, offset: u64) -> Result<(), QueueError> {
        Self::mark(path, offset, true)
    }

    /// As [`QueueFile::mark_done`] without the fdatasync, for a recipient whose
    /// "delivery" has no effect outside this file (the discard transport): the mark
    /// survives any process crash (it is in the page cache), and repeating such a
    /// delivery after a power loss changes nothing anywhere.
    pub fn mark_done_unsynced(path: &Path, offset: u64) -> Result<(), QueueError> {
        Self::mark(path, offset, false)
    }

    fn mark(path: &Path, offset: u64, sync: bool) -> Result<(), QueueError> {
        Self::mark_all(path, &[offset], sync).map(|_| ())
    }

    /// Marks several recipients of one file done with one parse of the envelope and one
    /// fdatasync: an agent that delivered 50 recipients of a 5000-recipient message in
    /// one transaction would otherwise parse the envelope and sync 50 times. Every
    /// offset is checked before any byte is written.
    pub fn mark_done_many(path: &Path, offsets: &[u64]) -> Result<(), QueueError> {
        Self::mark_all(path, offsets, true).map(|_| ())
    }

    /// [`QueueFile::mark_done_many`] without the fdatasync, for the discard transport
    /// (see [`QueueFile::mark_done_unsynced`]): qmgr discarding the recipients of a
    /// large list would otherwise parse the envelope once per recipient.
    pub fn mark_done_many_unsynced(path: &Path, offsets: &[u64]) -> Result<(), QueueError> {
        Self::mark_all(path, offsets, false).map(|_| ())
    }

    /// Writes the marks; true when a byte changed (false: they were all done already).
    /// With `sync`, fdatasyncs the file when a byte changed.
    pub(crate) fn mark_all(path: &Path, offsets: &[u64], sync: bool) -> Result<bool, QueueError> {
        if offsets.is_empty() {
            return Ok(false);
        }
        let (file, len) = open_existing(path, true)?;
        // Only the records being marked are read: marking one recipient of 100 000
        // must not parse the other 99 999 each time.
        let wanted: std::collections::HashSet<u64> = offsets.iter().copied().collect();
        let parsed = parse::parse_keeping(&file, len, Depth::Envelope, &|o, _| wanted.contains(&o))
            .map_err(|e| map_parse(path, e))?;
        let known: std::collections::HashSet<u64> = parsed
            .envelope
            .recipients
            .iter()
            .map(|r| r.offset)
            .collect();
        let invalid = |offset: u64| QueueError::Invalid {
            what: "recipient offset",
            value: offset.to_string(),
        };
        if let Some(&bad) = offsets.iter().find(|o| !known.contains(o)) {
            return Err(invalid(bad));
        }
        let io = |source| QueueError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut wrote = false;
        for &offset in offsets {
            let mut b = [0u8; 1];
            file.read_exact_at(&mut b, offset).map_err(io)?;
            match b[0] {
                REC_DONE => {}
                REC_RCPT => {
                    file.write_all_at(&[REC_DONE], offset).map_err(io)?;
                    wrote = true;
                }
                _ => return Err(invalid(offset)),
            }
        }
        // fdatasync: the bytes are all that must reach the disk; the mtime the writes
        // changed is not worth a second (inode) write.
        if sync && wrote {
            file.sync_data().map_err(io)?;
        }
        Ok(wrote)
    }

    /// Recipients not yet done.
    pub fn pending(&self) -> impl Iterator<Item = &Recipient> {
        self.envelope.recipients.iter().filter(|r| !r.done)
    }
}

/// Opens an existing file (read-only or read-write) and returns it with its size.
/// Never through a symbolic link and only a regular file (O_NONBLOCK so that a FIFO
/// cannot hang the open): the agents that read queue files run with root's real uid,
/// and a link planted in a queue directory must not make them read or mark another
/// file, as Postfix's queue readers refuse too.
pub(crate) fn open_existing(path: &Path, write: bool) -> Result<(File, u64), QueueError> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    let meta = file.metadata().map_err(|e| io_err(path, e))?;
    if !meta.is_file() {
        return Err(QueueError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("not a regular file"),
        });
    }
    Ok((file, meta.len()))
}

/// NotFound for a missing file, Io otherwise.
pub(crate) fn io_err(path: &Path, source: std::io::Error) -> QueueError {
    if source.kind() == std::io::ErrorKind::NotFound {
        QueueError::NotFound(path.to_path_buf())
    } else {
        QueueError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

pub(crate) fn map_parse(path: &Path, e: ParseError) -> QueueError {
    match e {
        ParseError::Io(source) => io_err(path, source),
        ParseError::Corrupt(reason) => QueueError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
    }
}
