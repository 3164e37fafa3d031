//! Parsing a queue file (docs/queue-format.md) from any seekable byte source. Every
//! malformed input is a `Corrupt` reason, never a panic, and no allocation exceeds what
//! the file actually holds.

use crate::file::{Envelope, Recipient};
use crate::record::*;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// Why parsing failed.
#[derive(Debug)]
pub(crate) enum ParseError {
    Io(io::Error),
    Corrupt(String),
}

impl From<io::Error> for ParseError {
    fn from(e: io::Error) -> Self {
        ParseError::Io(e)
    }
}

fn corrupt<T>(reason: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Corrupt(reason.into()))
}

/// How much of the file to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Stop after the `M` record (enough to find recipient records).
    Envelope,
    /// Walk every record to the end and check `E` is last.
    Full,
}

/// The result of a parse.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) envelope: Envelope,
    /// Sum of the `N` payload sizes (0 for [`Depth::Envelope`]).
    pub(crate) content_len: u64,
    /// Offset of the first record after `M`.
    pub(crate) content_offset: u64,
}

/// A record type byte as it should appear in a reason: `'R'` or `0x00`.
pub(crate) fn describe(t: u8) -> String {
    if t.is_ascii_graphic() {
        format!("'{}'", t as char)
    } else {
        format!("0x{t:02x}")
    }
}

/// Reads records while tracking the offset, checking every length against the bytes
/// that remain so a lying length can neither allocate nor seek past the end.
pub(crate) struct RecordReader<R> {
    inner: BufReader<R>,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> RecordReader<R> {
    /// `len` is the total size of the source; reading starts at `pos`.
    pub(crate) fn new(mut inner: R, len: u64, pos: u64) -> io::Result<Self> {
        inner.seek(SeekFrom::Start(pos))?;
        Ok(RecordReader {
            inner: BufReader::new(inner),
            pos,
            len,
        })
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn byte(&mut self) -> Result<u8, ParseError> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), ParseError> {
        if (buf.len() as u64) > self.remaining() {
            return corrupt(format!("offset {}: truncated record", self.pos));
        }
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            // The file shrank under us: that is truncation too.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                corrupt(format!("offset {}: truncated record", self.pos))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a record header: (offset of the type byte, type, payload length).
    /// `None` at a clean end of the source.
    pub(crate) fn header(&mut self) -> Result<Option<(u64, u8, u64)>, ParseError> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        let offset = self.pos;
        let rtype = self.byte()?;
        let mut dec = VarintDecoder::default();
        loop {
            let b = self.byte()?;
            match dec.push(b) {
                Ok(VarintStep::More) => {}
                Ok(VarintStep::Done(n)) => {
                    if n > self.remaining() {
                        return corrupt(format!("offset {offset}: truncated record"));
                    }
                    return Ok(Some((offset, rtype, n)));
                }
                Err(reason) => return corrupt(format!("offset {offset}: {reason}")),
            }
        }
    }

    /// Reads a payload whose length [`Self::header`] validated.
    pub(crate) fn payload(&mut self, n: u64) -> Result<Vec<u8>, ParseError> {
        let mut buf = vec![0u8; n.min(self.remaining()) as usize];
        self.fill(&mut buf)?;
        Ok(buf)
    }

    /// Reads up to `buf.len()` payload bytes (at least one for a non-empty `buf`): a
    /// streaming reader's part of a payload whose length [`Self::header`] validated.
    pub(crate) fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, ParseError> {
        if buf.is_empty() {
            return Ok(0);
        }
        if (buf.len() as u64) > self.remaining() {
            return corrupt(format!("offset {}: truncated record", self.pos));
        }
        loop {
            match self.inner.read(buf) {
                // The file shrank under us: that is truncation too.
                Ok(0) => return corrupt(format!("offset {}: truncated record", self.pos)),
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Skips a payload whose length [`Self::header`] validated.
    pub(crate) fn skip(&mut self, n: u64) -> Result<(), ParseError> {
        if n > self.remaining() {
            return corrupt(format!("offset {}: truncated record", self.pos));
        }
        let delta = i64::try_from(n).map_err(|_| ParseError::Corrupt("record too long".into()))?;
        self.inner.seek_relative(delta)?;
        self.pos += n;
        Ok(())
    }

    /// The header of a record that must exist; a clean end here is a missing `E`.
    pub(crate) fn need_header(&mut self) -> Result<(u64, u8, u64), ParseError> {
        match self.header()? {
            Some(h) => Ok(h),
            None => corrupt("missing end record"),
        }
    }
}

pub(crate) fn utf8(offset: u64, what: &str, bytes: Vec<u8>) -> Result<String, ParseError> {
    String::from_utf8(bytes).or_else(|_| corrupt(format!("offset {offset}: {what} is not UTF-8")))
}

/// Parses the arrival time: optional `-`, then 1..=19 ASCII digits, no other characters.
pub(crate) fn parse_time(offset: u64, s: &str) -> Result<i64, ParseError> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return corrupt(format!("offset {offset}: bad arrival time {s:?}"));
    }
    s.parse::<i64>()
        .or_else(|_| corrupt(format!("offset {offset}: bad arrival time {s:?}")))
}

pub(crate) fn parse_recipient(
    offset: u64,
    rtype: u8,
    payload: Vec<u8>,
) -> Result<Recipient, ParseError> {
    let text = utf8(offset, "recipient", payload)?;
    let mut fields = text.split('\0');
    let (Some(address), Some(orig), Some(notify), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return corrupt(format!(
            "offset {offset}: recipient record needs exactly 3 fields"
        ));
    };
    Ok(Recipient {
        address: address.to_string(),
        orig_address: orig.to_string(),
        notify: notify.to_string(),
        done: rtype == REC_DONE,
        offset,
    })
}

/// Parses a queue file from `src` (whose total size is `len`).
pub(crate) fn parse<R: Read + Seek>(src: R, len: u64, depth: Depth) -> Result<Parsed, ParseError> {
    parse_keeping(src, len, depth, &|_, _| true)
}

/// [`parse`], keeping only the recipient records whose offset `keep` accepts (the
/// others are skipped unread: a delivery agent asked about 50 recipients of a
/// 100 000-recipient message need not hold them all).
pub(crate) fn parse_keeping<R: Read + Seek>(
    src: R,
    len: u64,
    depth: Depth,
    keep: &dyn Fn(u64, bool) -> bool,
) -> Result<Parsed, ParseError> {
    parse_visiting(src, len, depth, keep, None)
}

/// [`parse_keeping`], with every recipient `keep` leaves out parsed all the same and
/// shown to `visit` (when given) instead of being kept: qmgr looks at each recipient
/// of a large message once at activation (checked, counted, alias expansion
/// considered) while holding only a slice of them.
pub(crate) fn parse_visiting<R: Read + Seek>(
    src: R,
    len: u64,
    depth: Depth,
    keep: &dyn Fn(u64, bool) -> bool,
    mut visit: Option<&mut dyn FnMut(&Recipient)>,
) -> Result<Parsed, ParseError> {
    let mut r = RecordReader::new(src, len, 0)?;
    let mut env = Envelope::default();

    // V: magic and version.
    let Some((off, t, n)) = r.header()? else {
        return corrupt("empty file");
    };
    if t != REC_VERSION {
        return corrupt(format!(
            "offset {off}: first record is {}, not 'V'",
            describe(t)
        ));
    }
    let magic = r.payload(n)?;
    if magic != MAGIC {
        return corrupt(format!(
            "offset {off}: bad magic or unsupported version {:?}",
            String::from_utf8_lossy(&magic)
        ));
    }

    // T: arrival time.
    let (off, t, n) = r.need_header()?;
    if t != REC_TIME {
        return corrupt(format!(
            "offset {off}: expected 'T' record, found {}",
            describe(t)
        ));
    }
    let time = utf8(off, "arrival time", r.payload(n)?)?;
    env.arrival_us = parse_time(off, &time)?;

    // S: sender.
    let (off, t, n) = r.need_header()?;
    if t != REC_SENDER {
        return corrupt(format!(
            "offset {off}: expected 'S' record, found {}",
            describe(t)
        ));
    }
    env.sender = utf8(off, "sender", r.payload(n)?)?;

    // A*, then R/D*, then M.
    let mut seen_recipient = false;
    loop {
        let (off, t, n) = r.need_header()?;
        match t {
            REC_ATTR if !seen_recipient => {
                let text = utf8(off, "attribute", r.payload(n)?)?;
                let Some((name, value)) = text.split_once('=') else {
                    return corrupt(format!("offset {off}: attribute without '='"));
                };
                if name.is_empty() {
                    return corrupt(format!("offset {off}: attribute with empty name"));
                }
                env.attrs.push((name.to_string(), value.to_string()));
            }
            REC_ATTR => return corrupt(format!("offset {off}: attribute after recipients")),
            REC_RCPT | REC_DONE if !keep(off, t == REC_DONE) => {
                seen_recipient = true;
                match visit.as_mut() {
                    Some(v) => v(&parse_recipient(off, t, r.payload(n)?)?),
                    None => r.skip(n)?,
                }
            }
            REC_RCPT | REC_DONE => {
                seen_recipient = true;
                let payload = r.payload(n)?;
                env.recipients.push(parse_recipient(off, t, payload)?);
            }
            REC_MESSAGE => {
                if n != 0 {
                    return corrupt(format!("offset {off}: 'M' record with a payload"));
                }
                break;
            }
            REC_END => return corrupt(format!("offset {off}: end record before content")),
            other => {
                return corrupt(format!(
                    "offset {off}: unexpected record {} in envelope",
                    describe(other)
                ))
            }
        }
    }
    let content_offset = r.pos;
    if depth == Depth::Envelope {
        return Ok(Parsed {
            envelope: env,
            content_len: 0,
            content_offset,
        });
    }

    // N*, then E, then nothing.
    let mut content_len = 0u64;
    loop {
        let (off, t, n) = r.need_header()?;
        match t {
            REC_CONTENT => {
                if n > MAX_CONTENT_RECORD as u64 {
                    return corrupt(format!(
                        "offset {off}: content record of {n} bytes exceeds {MAX_CONTENT_RECORD}"
                    ));
                }
                r.skip(n)?;
                content_len += n;
            }
            REC_END => {
                if n != 0 {
                    return corrupt(format!("offset {off}: 'E' record with a payload"));
                }
                if r.remaining() != 0 {
                    return corrupt(format!("offset {}: trailing bytes after end record", r.pos));
                }
                return Ok(Parsed {
                    envelope: env,
                    content_len,
                    content_offset,
                });
            }
            REC_RCPT | REC_DONE => {
                return corrupt(format!("offset {off}: recipient after content start"))
            }
            other => {
                return corrupt(format!(
                    "offset {off}: unexpected record {} in content",
                    describe(other)
                ))
            }
        }
    }
}

/// Reads the content: the `N` payloads from `content_offset` up to `E` (the streaming
/// reader of content.rs, collected); the format tests read byte buffers with it.
#[cfg(test)]
pub(crate) fn read_content<R: Read + Seek>(
    src: R,
    len: u64,
    content_offset: u64,
) -> Result<Vec<u8>, ParseError> {
    let mut r = crate::content::ContentRecords::new(src, len, content_offset)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; MAX_CONTENT_RECORD];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}
