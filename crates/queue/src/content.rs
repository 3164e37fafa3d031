//! Reading a message's content as a byte stream, one `N` record at a time, so that a
//! reader of a 10 MB message holds a buffer, not the message (the smtp client sends the
//! content this way; docs/queue-format.md, "Reading the content as a stream").
//!
//! [`MessageContent`] keeps the queue file open: every [`MessageContent::reader`] starts
//! again at the first content byte and reads by position (pread), so a caller can read
//! the content twice (a scan, then the transfer) or once per server it tries, with one
//! open file and no shared file offset between readers.

use crate::file::map_parse;
use crate::parse::{describe, ParseError, RecordReader};
use crate::record::{MAX_CONTENT_RECORD, REC_CONTENT, REC_END};
use crate::QueueError;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The content records of a source, read as bytes: the state every content reader
/// shares (the whole-content read in parse.rs too). Records are checked as the
/// whole-file parser checks them; the end record ends the stream.
pub(crate) struct ContentRecords<R> {
    records: RecordReader<R>,
    /// Payload bytes of the current `N` record not yet returned.
    left: u64,
    /// The `E` record was read.
    ended: bool,
}

impl<R: Read + Seek> ContentRecords<R> {
    /// Starts at `content_offset` (the record after `M`) of a source of `len` bytes.
    pub(crate) fn new(src: R, len: u64, content_offset: u64) -> Result<Self, ParseError> {
        Ok(ContentRecords {
            records: RecordReader::new(src, len, content_offset)?,
            left: 0,
            ended: false,
        })
    }

    /// Fills the start of `buf` with the next content bytes (never more than what is
    /// left of the current record); 0 at the end of the content, or for an empty `buf`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Result<usize, ParseError> {
        while !self.ended && !buf.is_empty() {
            if self.left > 0 {
                let want = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = self.records.read_some(&mut buf[..want])?;
                self.left -= n as u64;
                return Ok(n);
            }
            let (off, t, n) = self.records.need_header()?;
            match t {
                REC_CONTENT if n <= MAX_CONTENT_RECORD as u64 => self.left = n,
                REC_CONTENT => {
                    return Err(ParseError::Corrupt(format!(
                        "offset {off}: content record of {n} bytes exceeds {MAX_CONTENT_RECORD}"
                    )))
                }
                REC_END if n == 0 => self.ended = true,
                REC_END => {
                    return Err(ParseError::Corrupt(format!(
                        "offset {off}: 'E' record with a payload"
                    )))
                }
                other => {
                    return Err(ParseError::Corrupt(format!(
                        "offset {off}: unexpected record {} in content",
                        describe(other)
                    )))
                }
            }
        }
        Ok(0)
    }
}

/// Reads a file by position (pread): readers of one open file do not move each
/// other's offset, and none needs the file mutably.
pub(crate) struct At<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> At<'a> {
    pub(crate) fn new(file: &'a File) -> At<'a> {
        At { file, pos: 0 }
    }
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for At<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "seek out of range");
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(invalid)?,
            SeekFrom::End(d) => self
                .file
                .metadata()?
                .len()
                .checked_add_signed(d)
                .ok_or_else(invalid)?,
        };
        Ok(self.pos)
    }
}

/// A queue file held open for its content (see the module documentation).
#[derive(Debug)]
pub struct MessageContent {
    file: File,
    path: PathBuf,
    /// The file's size when it was parsed: content records never move or grow
    /// (marking a recipient done rewrites one envelope byte), so it stays valid.
    file_len: u64,
    content_offset: u64,
    content_len: u64,
}

impl MessageContent {
    /// `file` was parsed whole (the content records end with `E`); `path` names it in
    /// errors.
    pub(crate) fn new(
        file: File,
        path: &Path,
        file_len: u64,
        content_offset: u64,
        content_len: u64,
    ) -> MessageContent {
        MessageContent {
            file,
            path: path.to_path_buf(),
            file_len,
            content_offset,
            content_len,
        }
    }

    /// Size of the content in bytes (the sum of the `N` payloads).
    pub fn len(&self) -> u64 {
        self.content_len
    }

    /// True for a message without content.
    pub fn is_empty(&self) -> bool {
        self.content_len == 0
    }

    /// A reader from the first content byte, independent of any other.
    pub fn reader(&self) -> Result<ContentReader<'_>, QueueError> {
        let records = ContentRecords::new(At::new(&self.file), self.file_len, self.content_offset)
            .map_err(|e| map_parse(&self.path, e))?;
        Ok(ContentReader {
            records,
            path: &self.path,
        })
    }

    /// The whole content in memory, for the few readers that need it whole.
    pub fn read_all(&self) -> Result<Vec<u8>, QueueError> {
        let mut r = self.reader()?;
        // content_len was counted by the parse, which never exceeds the file's size.
        let mut out = Vec::with_capacity(usize::try_from(self.content_len).unwrap_or(0));
        let mut buf = vec![0u8; MAX_CONTENT_RECORD];
        loop {
            let n = r.read_chunk(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

/// The content of a [`MessageContent`] as a stream of bytes; [`Read`] too, where the
/// error is an [`io::Error`] carrying the [`QueueError`] (`InvalidData` for a corrupt
/// file).
pub struct ContentReader<'a> {
    records: ContentRecords<At<'a>>,
    path: &'a Path,
}

impl ContentReader<'_> {
    /// Fills the start of `buf` with the next content bytes; 0 at the end.
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize, QueueError> {
        self.records.read(buf).map_err(|e| map_parse(self.path, e))
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_chunk(buf).map_err(|e| {
            let kind = match &e {
                QueueError::Io { source, .. } => source.kind(),
                QueueError::NotFound(_) => io::ErrorKind::NotFound,
                QueueError::Corrupt { .. } | QueueError::Invalid { .. } => {
                    io::ErrorKind::InvalidData
                }
            };
            io::Error::new(kind, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{encode_record, MAGIC, REC_MESSAGE, REC_SENDER, REC_TIME, REC_VERSION};
    use crate::tempdir::TempRoot;
    use crate::{Envelope, QueueFile, QueueName, QueueWriter, Recipient};
    use proptest::prelude::*;

    fn queued(root: &Path, content: &[u8]) -> QueueFile {
        let env = Envelope {
            sender: "a@example.org".into(),
            recipients: vec![Recipient {
                address: "b@example.org".into(),
                ..Recipient::default()
            }],
            ..Envelope::default()
        };
        let mut w = QueueWriter::create(root, QueueName::Active, &env).unwrap();
        w.write_content(content).unwrap();
        let id = w.commit().unwrap();
        QueueFile::open(root, QueueName::Active, &id).unwrap()
    }

    /// Reads everything with buffers of `size` bytes, checking no read overfills.
    fn read_in(content: &MessageContent, size: usize) -> Vec<u8> {
        let mut r = content.reader().unwrap();
        let mut buf = vec![0u8; size];
        let mut out = Vec::new();
        loop {
            let n = r.read_chunk(&mut buf).unwrap();
            assert!(n <= size);
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn reads_across_records_in_any_buffer_size_and_again_from_the_start() {
        let root = TempRoot::new();
        // Three records: 64 KiB, 64 KiB and a short one.
        let body: Vec<u8> = (0..(2 * MAX_CONTENT_RECORD + 1234))
            .map(|i| (i % 251) as u8)
            .collect();
        let qf = queued(root.path(), &body);
        let content = qf.content().unwrap();
        assert_eq!(content.len(), body.len() as u64);
        for size in [
            1,
            7,
            4096,
            MAX_CONTENT_RECORD - 1,
            MAX_CONTENT_RECORD,
            1 << 20,
        ] {
            assert_eq!(read_in(&content, size), body, "buffer of {size}");
        }
        // Two readers at once do not disturb each other (positional reads).
        let mut a = content.reader().unwrap();
        let mut b = content.reader().unwrap();
        let (mut x, mut y) = ([0u8; 10], [0u8; 10]);
        assert_eq!(a.read_chunk(&mut x).unwrap(), 10);
        assert_eq!(b.read_chunk(&mut y).unwrap(), 10);
        assert_eq!(x, y);
        assert_eq!(content.read_all().unwrap(), body);
        let mut via_read = Vec::new();
        content
            .reader()
            .unwrap()
            .read_to_end(&mut via_read)
            .unwrap();
        assert_eq!(via_read, body);
    }

    #[test]
    fn empty_content_ends_at_once() {
        let root = TempRoot::new();
        let qf = queued(root.path(), b"");
        let content = qf.content().unwrap();
        assert!(content.is_empty());
        let mut r = content.reader().unwrap();
        assert_eq!(r.read_chunk(&mut [0u8; 16]).unwrap(), 0);
        assert_eq!(r.read_chunk(&mut [0u8; 16]).unwrap(), 0);
    }

    #[test]
    fn the_file_stays_readable_after_it_is_unlinked() {
        let root = TempRoot::new();
        let qf = queued(root.path(), b"Subject: x\n\nbody\n");
        let content = qf.content().unwrap();
        std::fs::remove_file(&qf.path).unwrap();
        assert_eq!(read_in(&content, 3), b"Subject: x\n\nbody\n");
        assert!(matches!(qf.content(), Err(QueueError::NotFound(_))));
    }

    fn raw_file(content_records: &[(u8, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_record(REC_VERSION, MAGIC, &mut v);
        encode_record(REC_TIME, b"1", &mut v);
        encode_record(REC_SENDER, b"", &mut v);
        encode_record(REC_MESSAGE, b"", &mut v);
        for (t, p) in content_records {
            encode_record(*t, p, &mut v);
        }
        v
    }

    /// Content records read straight from bytes (the parse that would refuse such a
    /// file first is bypassed on purpose).
    fn stream(bytes: &[u8]) -> Result<Vec<u8>, ParseError> {
        let start = raw_file(&[]).len() as u64;
        let mut r = ContentRecords::new(io::Cursor::new(bytes), bytes.len() as u64, start)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 5];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn bad_content_records_are_corrupt_not_a_short_message() {
        let ok = raw_file(&[
            (REC_CONTENT, b"hello "),
            (REC_CONTENT, b"world"),
            (REC_END, b""),
        ]);
        assert_eq!(stream(&ok).unwrap(), b"hello world");
        let big = vec![b'x'; MAX_CONTENT_RECORD + 1];
        let truncated = &ok[..ok.len() - 4];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("missing end", raw_file(&[(REC_CONTENT, b"hello")])),
            ("truncated payload", truncated.to_vec()),
            (
                "oversized record",
                raw_file(&[(REC_CONTENT, &big), (REC_END, b"")]),
            ),
            ("end with payload", raw_file(&[(REC_END, b"x")])),
            (
                "other record",
                raw_file(&[(REC_SENDER, b"x"), (REC_END, b"")]),
            ),
        ];
        for (name, bytes) in cases {
            match stream(&bytes) {
                Err(ParseError::Corrupt(_)) => {}
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn streamed_content_equals_the_written_content(
            content in proptest::collection::vec(any::<u8>(), 0..200_000),
            size in 1usize..100_000,
        ) {
            let root = TempRoot::new();
            let qf = queued(root.path(), &content);
            let streamed = qf.content().unwrap();
            prop_assert_eq!(read_in(&streamed, size), content);
        }
    }
}
