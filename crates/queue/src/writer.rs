//! Writing a new queue file durably.

use crate::file::io_err;
use crate::id::make_queue_id;
use crate::layout::fsync_dir;
use crate::record::*;
use crate::{Envelope, QueueError, QueueName};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Makes temporary names unique within this process; the pid makes them unique between
/// processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many temporary names to try before giving up (stale files of a dead process with
/// our pid could occupy a few).
const TEMP_TRIES: u32 = 100;

/// A queue file being written under a temporary name.
#[derive(Debug)]
pub struct QueueWriter {
    /// `root/queue`.
    dir: PathBuf,
    /// `root/queue/tmp.PID.N`.
    temp: PathBuf,
    id: String,
    /// None once committed or aborted.
    out: Option<BufWriter<File>>,
    /// Content not yet written as an `N` record (less than one full record).
    chunk: Vec<u8>,
    content_len: u64,
    /// Mode given to the file before it is named (see [`QueueWriter::set_final_mode`]).
    final_mode: Option<u32>,
    /// The file came from `recycle/`: it may be longer than what is written, and is
    /// truncated at commit.
    recycled: bool,
}

/// Refuses values that would break the format or let a value forge a line in logs.
fn check_text(what: &'static str, value: &str) -> Result<(), QueueError> {
    if value.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n')) || value.len() as u64 > MAX_RECORD / 4
    {
        return Err(QueueError::Invalid {
            what,
            value: value.escape_debug().to_string(),
        });
    }
    Ok(())
}

/// Encodes the envelope records (`V` through `M`), validating every field.
pub(crate) fn encode_envelope(env: &Envelope) -> Result<Vec<u8>, QueueError> {
    let mut out = Vec::new();
    encode_record(REC_VERSION, MAGIC, &mut out);
    encode_record(REC_TIME, env.arrival_us.to_string().as_bytes(), &mut out);
    check_text("sender", &env.sender)?;
    encode_record(REC_SENDER, env.sender.as_bytes(), &mut out);
    for (name, value) in &env.attrs {
        check_text("attribute name", name)?;
        check_text("attribute value", value)?;
        if name.is_empty() || name.contains('=') {
            return Err(QueueError::Invalid {
                what: "attribute name",
                value: name.escape_debug().to_string(),
            });
        }
        encode_record(REC_ATTR, format!("{name}={value}").as_bytes(), &mut out);
    }
    for r in &env.recipients {
        check_text("recipient", &r.address)?;
        check_text("original recipient", &r.orig_address)?;
        check_text("notify", &r.notify)?;
        let payload = format!("{}\0{}\0{}", r.address, r.orig_address, r.notify);
        encode_record(
            if r.done { REC_DONE } else { REC_RCPT },
            payload.as_bytes(),
            &mut out,
        );
    }
    encode_record(REC_MESSAGE, b"", &mut out);
    Ok(out)
}

/// The next `dir/tmp.PID.N` name of this process.
fn temp_name(dir: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("tmp.{}.{n}", std::process::id()))
}

/// Creates `dir/tmp.PID.N` exclusively, mode 0600.
pub(crate) fn create_temp(dir: &Path) -> Result<(PathBuf, File), QueueError> {
    let mut last = None;
    for _ in 0..TEMP_TRIES {
        let path = temp_name(dir);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(path),
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    let path = last.unwrap_or_else(|| dir.to_path_buf());
    Err(QueueError::Io {
        path,
        source: std::io::Error::other("no free temporary file name"),
    })
}

/// Gives `temp` the name `target`, failing if `target` exists: one renameat2 with
/// RENAME_NOREPLACE, or link + unlink where the file system lacks it.
fn name_without_replacing(temp: &Path, target: &Path) -> Result<(), QueueError> {
    use nix::errno::Errno;
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    let io = |source: std::io::Error| QueueError::Io {
        path: target.to_path_buf(),
        source,
    };
    match renameat2(
        AT_FDCWD,
        temp,
        AT_FDCWD,
        target,
        RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => return Ok(()),
        Err(Errno::EINVAL | Errno::ENOSYS) => {}
        Err(e) => return Err(io(e.into())),
    }
    std::fs::hard_link(temp, target).map_err(io)?;
    if let Err(e) = std::fs::remove_file(temp) {
        // The message is safe under its id; a leftover temporary name is only clutter.
        log::warn!("cannot remove {}: {e}", temp.display());
    }
    Ok(())
}

impl QueueWriter {
    /// Creates a temporary file (mode 0600, O_EXCL) in `root/queue/` and writes the
    /// envelope records. Addresses and attributes containing NUL, CR or LF are refused
    /// with [`QueueError::Invalid`].
    pub fn create(
        root: &Path,
        queue: QueueName,
        envelope: &Envelope,
    ) -> Result<QueueWriter, QueueError> {
        Self::create_from(root, queue, envelope, false)
    }

    /// As [`QueueWriter::create`], taking a finished message's file from `recycle/`
    /// when there is one (see the recycle module). Only for writers running as
    /// mail_owner: the file holds a previous message's bytes until overwritten.
    pub fn create_recycled(
        root: &Path,
        queue: QueueName,
        envelope: &Envelope,
    ) -> Result<QueueWriter, QueueError> {
        Self::create_from(root, queue, envelope, true)
    }

    fn create_from(
        root: &Path,
        queue: QueueName,
        envelope: &Envelope,
        recycle: bool,
    ) -> Result<QueueWriter, QueueError> {
        let header = encode_envelope(envelope)?;
        let dir = root.join(queue.as_str());
        let claimed = if recycle {
            let temp = temp_name(&dir);
            crate::recycle::claim(root, &temp).map(|file| (temp, file))
        } else {
            None
        };
        let recycled = claimed.is_some();
        let (temp, file) = match claimed {
            Some(pair) => pair,
            None => create_temp(&dir)?,
        };
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        // From here on, dropping `w` removes the temporary file.
        let mut w = QueueWriter {
            id: String::new(),
            dir,
            temp,
            out: None,
            chunk: Vec::new(),
            content_len: 0,
            final_mode: None,
            recycled,
        };
        let inode = file.metadata().map_err(|e| io_err(&w.temp, e))?.ino();
        w.id = make_queue_id(micros, inode);
        let mut out = BufWriter::with_capacity(MAX_CONTENT_RECORD + 16, file);
        out.write_all(&header).map_err(|e| io_err(&w.temp, e))?;
        w.out = Some(out);
        Ok(w)
    }

    /// The queue id this file will have once committed (known at creation: it is
    /// derived from the creation time and the temporary file's inode), so smtpd can put
    /// it in the Received: header and log it before the message is acknowledged.
    pub fn queue_id(&self) -> &str {
        &self.id
    }

    /// Writes one record through the buffer.
    fn record(&mut self, rtype: u8, payload: &[u8]) -> Result<(), QueueError> {
        let Some(out) = self.out.as_mut() else {
            return Err(QueueError::Invalid {
                what: "queue writer state",
                value: "finished".into(),
            });
        };
        let mut head = Vec::with_capacity(1 + MAX_VARINT_BYTES);
        head.push(rtype);
        encode_varint(payload.len() as u64, &mut head);
        out.write_all(&head)
            .and_then(|()| out.write_all(payload))
            .map_err(|e| io_err(&self.temp, e))
    }

    /// Appends message content (any bytes; line endings stored as given: callers store LF).
    /// Content is cut into records of 64 KiB whatever the sizes of the calls.
    pub fn write_content(&mut self, data: &[u8]) -> Result<(), QueueError> {
        self.content_len += data.len() as u64;
        let mut data = data;
        if !self.chunk.is_empty() {
            let take = (MAX_CONTENT_RECORD - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.chunk.len() == MAX_CONTENT_RECORD {
                let chunk = std::mem::take(&mut self.chunk);
                self.record(REC_CONTENT, &chunk)?;
            }
        }
        while data.len() >= MAX_CONTENT_RECORD {
            self.record(REC_CONTENT, &data[..MAX_CONTENT_RECORD])?;
            data = &data[MAX_CONTENT_RECORD..];
        }
        self.chunk.extend_from_slice(data);
        Ok(())
    }

    /// Gives the file this mode (fchmod) before it is named at commit. rostdrop uses
    /// 0444, as Postfix's postdrop does: the submitting user owns a maildrop file and
    /// pickup, running as mail_owner, must be able to read it; the 0730 maildrop
    /// directory keeps other users from listing it.
    pub fn set_final_mode(&mut self, mode: u32) {
        self.final_mode = Some(mode & 0o777);
    }

    /// Content bytes written so far (for message_size_limit checks).
    pub fn content_len(&self) -> u64 {
        self.content_len
    }

    /// Writes the end record, fsyncs the file, names it by its queue id (never
    /// replacing), fsyncs the directory. Only after this returns Ok may mail be
    /// acknowledged.
    ///
    /// A file already holding the id can only be a stale leftover (the inode is ours
    /// while our file lives): that is an error, and the temporary file is removed.
    pub fn commit(self) -> Result<String, QueueError> {
        self.commit_to(None, None)
    }

    /// As [`QueueWriter::commit`], naming the file in queue `into` instead of the one
    /// it was created in (content inspection's HOLD commits straight into `hold/`, so
    /// qmgr never sees it in `incoming/`), and with `envelope` in place of the one
    /// given at creation (REDIRECT, FILTER and BCC change the recipients or attributes
    /// after the content was read). The new envelope is put in before the file is
    /// named, so no reader ever sees the old one.
    pub fn commit_to(
        mut self,
        into: Option<QueueName>,
        envelope: Option<&Envelope>,
    ) -> Result<String, QueueError> {
        if let Some(env) = envelope {
            // Refuse a bad envelope before anything is written.
            encode_envelope(env)?;
        }
        if !self.chunk.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            self.record(REC_CONTENT, &chunk)?;
        }
        self.record(REC_END, b"")?;
        let Some(out) = self.out.take() else {
            return Err(QueueError::Invalid {
                what: "queue writer state",
                value: "finished".into(),
            });
        };
        // Keep `self.out` None only after success; on error Drop removes the temp file
        // regardless of `out`.
        let mut file = out
            .into_inner()
            .map_err(|e| io_err(&self.temp, e.into_error()))?;
        if self.recycled {
            // Cut off what is left of the previous message beyond our end record.
            use std::io::Seek;
            let end = file.stream_position().map_err(|e| io_err(&self.temp, e))?;
            file.set_len(end).map_err(|e| io_err(&self.temp, e))?;
        }
        if let Some(mode) = self.final_mode {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| io_err(&self.temp, e))?;
        }
        file.sync_all().map_err(|e| io_err(&self.temp, e))?;
        if let Some(env) = envelope {
            // Same directory, same temporary name: the rewritten file replaces ours
            // atomically and keeps its mode; the queue id stays the one already logged
            // (made from our inode at a time only we held it, so still unique).
            crate::rewrite::rewrite_envelope(&self.temp, env)?;
        }
        let final_dir = match (into, self.dir.parent()) {
            (Some(queue), Some(root)) => root.join(queue.as_str()),
            _ => self.dir.clone(),
        };
        let final_path = final_dir.join(&self.id);
        name_without_replacing(&self.temp, &final_path)?;
        // Nothing left for Drop to remove.
        self.temp = PathBuf::new();
        if final_dir != self.dir {
            // The temporary name left this directory.
            fsync_dir(&self.dir)?;
            self.dir = final_dir;
        }
        match fsync_dir(&self.dir) {
            Ok(()) => {}
            Err(QueueError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                // rostdrop may write into maildrop/ (mode 0730) but not open it for
                // reading, so it cannot fsync the directory. syncfs through the file
                // it just wrote flushes the file system, directory entry included.
                nix::unistd::syncfs(&file).map_err(|e| io_err(&self.dir, e.into()))?;
            }
            Err(e) => return Err(e),
        }
        drop(file);
        Ok(std::mem::take(&mut self.id))
    }

    /// Removes the temporary file (client went away, size limit, ...).
    pub fn abort(self) {
        // Drop does the work.
    }
}

impl Drop for QueueWriter {
    /// An uncommitted writer never leaves its temporary file behind, whatever path
    /// (error, panic, forgotten abort) dropped it.
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            if let Err(e) = std::fs::remove_file(&self.temp) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    log::warn!("cannot remove {}: {e}", self.temp.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{list_queue, QueueFile, QueueName, QueueWriter, Recipient};

    #[test]
    fn commit_into_another_queue_with_a_new_envelope() {
        let t = crate::tempdir::TempRoot::new();
        let env = crate::Envelope {
            sender: "s@x".into(),
            arrival_us: 7,
            attrs: vec![],
            recipients: vec![Recipient {
                address: "a@x".into(),
                orig_address: "a@x".into(),
                ..Recipient::default()
            }],
        };
        let mut w = QueueWriter::create(t.path(), QueueName::Incoming, &env).unwrap();
        w.write_content(b"Subject: s\n\nbody\n").unwrap();
        let mut new = env.clone();
        new.recipients[0].address = "r@y".into();
        new.attrs
            .push(("filter".into(), "smtp:[127.0.0.1]:10025".into()));
        let id = w.commit_to(Some(QueueName::Hold), Some(&new)).unwrap();
        assert!(list_queue(t.path(), QueueName::Incoming)
            .unwrap()
            .is_empty());
        // No temporary file is left behind in incoming/ either.
        assert_eq!(
            std::fs::read_dir(t.path().join("incoming"))
                .unwrap()
                .count(),
            0
        );
        let qf = QueueFile::open(t.path(), QueueName::Hold, &id).unwrap();
        assert_eq!(qf.envelope.recipients[0].address, "r@y");
        assert_eq!(qf.envelope.attr("filter"), Some("smtp:[127.0.0.1]:10025"));
        assert_eq!(qf.read_content().unwrap(), b"Subject: s\n\nbody\n");
    }

    #[test]
    fn a_bad_new_envelope_commits_nothing() {
        let t = crate::tempdir::TempRoot::new();
        let env = crate::Envelope {
            sender: "s@x".into(),
            ..crate::Envelope::default()
        };
        let w = QueueWriter::create(t.path(), QueueName::Incoming, &env).unwrap();
        let mut bad = env.clone();
        bad.sender = "s\n@x".into();
        assert!(w.commit_to(None, Some(&bad)).is_err());
        assert_eq!(
            std::fs::read_dir(t.path().join("incoming"))
                .unwrap()
                .count(),
            0
        );
    }
}
