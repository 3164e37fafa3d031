//! Reading a queue file one record at a time, for a reader that must not trust the
//! file's writer (pickup reading the maildrop/ files local users write). Only the
//! current record is in memory; an envelope record larger than the caller's bound is
//! never read whole (an attribute is reported with its first bytes and skipped, a
//! sender or recipient makes the file corrupt); the record order of
//! docs/queue-format.md is enforced as the whole-file parser enforces it.

use crate::file::{io_err, map_parse, Recipient};
use crate::parse::{describe, parse_recipient, parse_time, utf8, ParseError, RecordReader};
use crate::record::*;
use crate::QueueError;
use std::fs::File;
use std::path::{Path, PathBuf};

/// How many leading bytes of an oversized attribute are read, to name it in a log.
const OVERSIZED_HEAD: u64 = 64;
/// The arrival time is at most 20 characters (`-` and 19 digits).
const MAX_TIME_RECORD: u64 = 20;

/// One record of a queue file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRecord {
    /// `T`: arrival time, microseconds since the epoch.
    Time(i64),
    /// `S`: the envelope sender, "" for `<>`.
    Sender(String),
    /// `A`: one attribute.
    Attr { name: String, value: String },
    /// `A` whose payload exceeds the bound: skipped unread but for its first bytes.
    OversizedAttr {
        /// The first bytes of `name=value`, lossily decoded.
        head: String,
        /// The payload length.
        len: u64,
    },
    /// `R` or `D`: one recipient (`offset` set).
    Recipient(Recipient),
    /// `N`: one content record (at most 64 KiB).
    Content(Vec<u8>),
    /// `E`: the file is complete, and nothing follows it.
    End,
}

/// Where in the record order the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Time,
    Sender,
    Attrs,
    Recipients,
    Content,
    Done,
}

/// A queue file read record by record (see the module documentation).
pub struct RecordStream {
    reader: RecordReader<File>,
    path: PathBuf,
    stage: Stage,
    max_envelope_record: u64,
}

fn corrupt<T>(reason: String) -> Result<T, ParseError> {
    Err(ParseError::Corrupt(reason))
}

impl RecordStream {
    /// Starts reading `file` (already opened by the caller, who may have checked it
    /// with fstat) from its beginning and checks the version record. `path` only names
    /// the file in errors. Sender, attribute and recipient records longer than
    /// `max_envelope_record` bytes are refused or skipped, see [`StreamRecord`].
    pub fn new(file: File, path: &Path, max_envelope_record: u64) -> Result<Self, QueueError> {
        let len = file.metadata().map_err(|e| io_err(path, e))?.len();
        let reader = RecordReader::new(file, len, 0).map_err(|e| io_err(path, e))?;
        let mut stream = RecordStream {
            reader,
            path: path.to_path_buf(),
            stage: Stage::Time,
            max_envelope_record,
        };
        stream.version().map_err(|e| map_parse(path, e))?;
        Ok(stream)
    }

    fn version(&mut self) -> Result<(), ParseError> {
        let Some((off, t, n)) = self.reader.header()? else {
            return corrupt("empty file".into());
        };
        if t != REC_VERSION {
            return corrupt(format!(
                "offset {off}: first record is {}, not 'V'",
                describe(t)
            ));
        }
        if n != MAGIC.len() as u64 || self.reader.payload(n)? != MAGIC {
            return corrupt(format!("offset {off}: bad magic or unsupported version"));
        }
        Ok(())
    }

    /// The next record. After [`StreamRecord::End`] it keeps returning `End`.
    pub fn next_record(&mut self) -> Result<StreamRecord, QueueError> {
        let path = self.path.clone();
        self.step().map_err(|e| map_parse(&path, e))
    }

    fn step(&mut self) -> Result<StreamRecord, ParseError> {
        loop {
            if self.stage == Stage::Done {
                return Ok(StreamRecord::End);
            }
            let (off, t, n) = self.reader.need_header()?;
            match (self.stage, t) {
                (Stage::Time, REC_TIME) => {
                    if n > MAX_TIME_RECORD {
                        return corrupt(format!("offset {off}: arrival time of {n} bytes"));
                    }
                    let text = utf8(off, "arrival time", self.reader.payload(n)?)?;
                    self.stage = Stage::Sender;
                    return Ok(StreamRecord::Time(parse_time(off, &text)?));
                }
                (Stage::Time, _) => {
                    return corrupt(format!(
                        "offset {off}: expected 'T' record, found {}",
                        describe(t)
                    ))
                }
                (Stage::Sender, REC_SENDER) => {
                    self.bounded(off, "sender", n)?;
                    let sender = utf8(off, "sender", self.reader.payload(n)?)?;
                    self.stage = Stage::Attrs;
                    return Ok(StreamRecord::Sender(sender));
                }
                (Stage::Sender, _) => {
                    return corrupt(format!(
                        "offset {off}: expected 'S' record, found {}",
                        describe(t)
                    ))
                }
                (Stage::Attrs, REC_ATTR) => return self.attribute(off, n),
                (Stage::Recipients, REC_ATTR) => {
                    return corrupt(format!("offset {off}: attribute after recipients"))
                }
                (Stage::Attrs | Stage::Recipients, REC_RCPT | REC_DONE) => {
                    self.bounded(off, "recipient", n)?;
                    let payload = self.reader.payload(n)?;
                    self.stage = Stage::Recipients;
                    return Ok(StreamRecord::Recipient(parse_recipient(off, t, payload)?));
                }
                (Stage::Attrs | Stage::Recipients, REC_MESSAGE) => {
                    if n != 0 {
                        return corrupt(format!("offset {off}: 'M' record with a payload"));
                    }
                    self.stage = Stage::Content;
                }
                (Stage::Attrs | Stage::Recipients, REC_END) => {
                    return corrupt(format!("offset {off}: end record before content"))
                }
                (Stage::Attrs | Stage::Recipients, _) => {
                    return corrupt(format!(
                        "offset {off}: unexpected record {} in envelope",
                        describe(t)
                    ))
                }
                (Stage::Content, REC_CONTENT) => {
                    if n > MAX_CONTENT_RECORD as u64 {
                        return corrupt(format!(
                            "offset {off}: content record of {n} bytes exceeds {MAX_CONTENT_RECORD}"
                        ));
                    }
                    return Ok(StreamRecord::Content(self.reader.payload(n)?));
                }
                (Stage::Content, REC_END) => {
                    if n != 0 {
                        return corrupt(format!("offset {off}: 'E' record with a payload"));
                    }
                    if self.reader.remaining() != 0 {
                        return corrupt(format!("offset {off}: trailing bytes after end record"));
                    }
                    self.stage = Stage::Done;
                    return Ok(StreamRecord::End);
                }
                (Stage::Content, REC_RCPT | REC_DONE) => {
                    return corrupt(format!("offset {off}: recipient after content start"))
                }
                (Stage::Content, _) => {
                    return corrupt(format!(
                        "offset {off}: unexpected record {} in content",
                        describe(t)
                    ))
                }
                (Stage::Done, _) => return Ok(StreamRecord::End),
            }
        }
    }

    /// Refuses a sender or recipient record over the bound before reading it.
    fn bounded(&self, off: u64, what: &str, n: u64) -> Result<(), ParseError> {
        if n > self.max_envelope_record {
            return corrupt(format!(
                "offset {off}: {what} record of {n} bytes exceeds {}",
                self.max_envelope_record
            ));
        }
        Ok(())
    }

    fn attribute(&mut self, off: u64, n: u64) -> Result<StreamRecord, ParseError> {
        if n > self.max_envelope_record {
            let keep = n.min(OVERSIZED_HEAD);
            let head = String::from_utf8_lossy(&self.reader.payload(keep)?).into_owned();
            self.reader.skip(n - keep)?;
            return Ok(StreamRecord::OversizedAttr { head, len: n });
        }
        let text = utf8(off, "attribute", self.reader.payload(n)?)?;
        let Some((name, value)) = text.split_once('=') else {
            return corrupt(format!("offset {off}: attribute without '='"));
        };
        if name.is_empty() {
            return corrupt(format!("offset {off}: attribute with empty name"));
        }
        Ok(StreamRecord::Attr {
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tempdir::TempRoot;
    use crate::{queue_path, Envelope, QueueName, QueueWriter};

    fn write(root: &Path, env: &Envelope, content: &[u8]) -> PathBuf {
        let mut w = QueueWriter::create(root, QueueName::Maildrop, env).unwrap();
        w.write_content(content).unwrap();
        let id = w.commit().unwrap();
        queue_path(root, QueueName::Maildrop, &id)
    }

    fn read_all(path: &Path, bound: u64) -> Result<Vec<StreamRecord>, QueueError> {
        let mut s = RecordStream::new(File::open(path).unwrap(), path, bound)?;
        let mut out = Vec::new();
        loop {
            let r = s.next_record()?;
            let end = r == StreamRecord::End;
            out.push(r);
            if end {
                return Ok(out);
            }
        }
    }

    fn env(attrs: Vec<(String, String)>, rcpt: &str) -> Envelope {
        Envelope {
            sender: "joe".into(),
            arrival_us: 7,
            attrs,
            recipients: vec![Recipient {
                address: rcpt.into(),
                orig_address: rcpt.into(),
                ..Recipient::default()
            }],
        }
    }

    #[test]
    fn records_in_order_and_content_in_chunks() {
        let root = TempRoot::new();
        let content: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let path = write(
            root.path(),
            &env(vec![("a".into(), "b=c".into())], "amy"),
            &content,
        );
        let recs = read_all(&path, 1000).unwrap();
        assert_eq!(recs[0], StreamRecord::Time(7));
        assert_eq!(recs[1], StreamRecord::Sender("joe".into()));
        assert_eq!(
            recs[2],
            StreamRecord::Attr {
                name: "a".into(),
                value: "b=c".into()
            }
        );
        assert!(
            matches!(&recs[3], StreamRecord::Recipient(r) if r.address == "amy" && r.offset > 0)
        );
        let mut got = Vec::new();
        for r in &recs[4..recs.len() - 1] {
            let StreamRecord::Content(c) = r else {
                panic!("{r:?}")
            };
            assert!(c.len() <= MAX_CONTENT_RECORD);
            got.extend_from_slice(c);
        }
        assert_eq!(got, content);
        assert_eq!(recs.last(), Some(&StreamRecord::End));
    }

    #[test]
    fn oversized_attribute_is_skipped_and_named() {
        let root = TempRoot::new();
        let big = "x".repeat(2_000_000);
        let path = write(
            root.path(),
            &env(
                vec![("junk".into(), big), ("dsn_ret".into(), "HDRS".into())],
                "amy",
            ),
            b"hi\n",
        );
        let recs = read_all(&path, 4096).unwrap();
        let StreamRecord::OversizedAttr { head, len } = &recs[2] else {
            panic!("{:?}", recs[2])
        };
        assert!(head.starts_with("junk=xxx") && head.len() == OVERSIZED_HEAD as usize);
        assert_eq!(*len, 2_000_005);
        assert_eq!(
            recs[3],
            StreamRecord::Attr {
                name: "dsn_ret".into(),
                value: "HDRS".into()
            }
        );
        assert_eq!(recs[5], StreamRecord::Content(b"hi\n".to_vec()));
    }

    #[test]
    fn oversized_recipient_or_sender_is_corrupt() {
        let root = TempRoot::new();
        let path = write(root.path(), &env(vec![], &"r".repeat(5000)), b"");
        let err = read_all(&path, 4096).unwrap_err();
        assert!(
            matches!(&err, QueueError::Corrupt { reason, .. } if reason.contains("recipient record of")),
            "{err}"
        );
        let mut e = env(vec![], "amy");
        e.sender = "s".repeat(5000);
        let path = write(root.path(), &e, b"");
        let err = read_all(&path, 4096).unwrap_err();
        assert!(
            matches!(&err, QueueError::Corrupt { reason, .. } if reason.contains("sender record of")),
            "{err}"
        );
    }

    #[test]
    fn malformed_files_are_corrupt() {
        let root = TempRoot::new();
        let good = std::fs::read(write(root.path(), &env(vec![], "amy"), b"body\n")).unwrap();
        let dir = root.path().join("maildrop");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("truncated", good[..good.len() - 3].to_vec()),
            ("trailing", [good.clone(), b"E\0".to_vec()].concat()),
            ("garbage", b"not a queue file".to_vec()),
            ("attr after rcpt", {
                let mut v = Vec::new();
                encode_record(REC_VERSION, MAGIC, &mut v);
                encode_record(REC_TIME, b"1", &mut v);
                encode_record(REC_SENDER, b"", &mut v);
                encode_record(REC_RCPT, b"a\0a\0", &mut v);
                encode_record(REC_ATTR, b"x=y", &mut v);
                v
            }),
            ("big content record", {
                let mut v = Vec::new();
                encode_record(REC_VERSION, MAGIC, &mut v);
                encode_record(REC_TIME, b"1", &mut v);
                encode_record(REC_SENDER, b"", &mut v);
                encode_record(REC_RCPT, b"a\0a\0", &mut v);
                encode_record(REC_MESSAGE, b"", &mut v);
                encode_record(REC_CONTENT, &vec![b'x'; MAX_CONTENT_RECORD + 1], &mut v);
                encode_record(REC_END, b"", &mut v);
                v
            }),
        ];
        for (name, bytes) in cases {
            let path = dir.join(name.replace(' ', "_"));
            std::fs::write(&path, &bytes).unwrap();
            let err = read_all(&path, 4096).unwrap_err();
            assert!(matches!(err, QueueError::Corrupt { .. }), "{name}: {err}");
        }
    }

    #[test]
    fn end_repeats() {
        let root = TempRoot::new();
        let path = write(root.path(), &env(vec![], "amy"), b"");
        let mut s = RecordStream::new(File::open(&path).unwrap(), &path, 100).unwrap();
        while s.next_record().unwrap() != StreamRecord::End {}
        assert_eq!(s.next_record().unwrap(), StreamRecord::End);
    }
}
