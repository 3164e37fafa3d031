//! The content a transaction sends after DATA, streamed: the headers prepended for this
//! delivery (master.cf `flags=`, header_flags.rs), then the message from the queue file,
//! read through a buffer each time it is needed instead of held whole. A 10 MB message
//! costs the agent a few buffers of 64 KiB (issue 18).
//!
//! It is read twice per delivery at least. [`Content::scan`] reads it once before any
//! connection: its size on the wire (for MAIL's SIZE= and the server's limit) and what
//! the per-message checks need (8-bit data, UTF-8 in the headers, a
//! `TLS-Required: No` header). [`Content::send`] reads it again for each transaction
//! (each server tried), converting it to the wire form as it goes: [`WireEncoder`]
//! carries the line state from one chunk to the next, so a line end, a CR or a dot
//! split between two reads is handled as in one buffer.
//!
//! The 8BITMIME downgrade (session.rs) is the exception: it reads the message into
//! memory, see [`Content::read_all`].

use rostfix_queue::MessageContent;
use std::io::{self, Read};

/// Bytes read from the content per call.
const CHUNK: usize = 64 * 1024;
/// Wire bytes gathered before a write: a small message (and the end of any message)
/// goes out with its end marker in one write, see [`Content::send`].
const FLUSH_AT: usize = 64 * 1024;
/// How much of the header section is kept for the `TLS-Required` check: more than
/// smtpd's header_size_limit default (102 400) takes in; a header past it is not seen.
const HEAD_LIMIT: usize = 128 * 1024;
/// The end of the data (RFC 5321 4.1.1.4), after the last line's CR LF.
const END_OF_DATA: &[u8] = b".\r\n";

/// Where the stored message is.
#[derive(Clone, Copy)]
enum Body<'a> {
    /// In memory (tests, and the downgraded message).
    Bytes(&'a [u8]),
    /// In the open queue file.
    Queue(&'a MessageContent),
}

impl<'a> Body<'a> {
    fn reader(self) -> io::Result<Box<dyn Read + 'a>> {
        match self {
            Body::Bytes(b) => Ok(Box::new(b)),
            Body::Queue(c) => Ok(Box::new(c.reader().map_err(io::Error::other)?)),
        }
    }
}

/// What [`Content::scan`] found in the stored message (not in the prepended headers,
/// which this agent writes itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// A byte above 127 anywhere.
    pub eight_bit: bool,
    /// A byte above 127 in the header section (up to the first empty line).
    pub headers_8bit: bool,
    /// The header section has `TLS-Required: No` (RFC 8689 5).
    pub tls_required_no: bool,
}

/// The content of one delivery (see the module documentation).
pub struct Content<'a> {
    head: Vec<u8>,
    body: Body<'a>,
    /// Size after [`WireEncoder`] of `head` and `body`, without the end marker.
    wire_size: u64,
}

impl std::fmt::Debug for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content")
            .field("head", &String::from_utf8_lossy(&self.head))
            .field("wire_size", &self.wire_size)
            .finish_non_exhaustive()
    }
}

/// Why [`Content::send`] stopped.
#[derive(Debug)]
pub enum SendError<E> {
    /// The content could not be read: the data sent so far must not be ended.
    Read(io::Error),
    /// `write` failed.
    Write(E),
}

impl<'a> Content<'a> {
    /// A message in memory, nothing prepended.
    pub fn from_bytes(bytes: &'a [u8]) -> Content<'a> {
        Content {
            head: Vec::new(),
            body: Body::Bytes(bytes),
            wire_size: wire_size(bytes),
        }
    }

    /// The queued message `body` with `head` (whole LF-terminated header lines, or
    /// empty) before it, read once for its size and the checks.
    pub fn scan(head: Vec<u8>, body: &'a MessageContent) -> io::Result<(Content<'a>, Scan)> {
        let body = Body::Queue(body);
        let mut encoder = WireEncoder::default();
        let mut count = WireCount::default();
        encoder.encode(&head, &mut count);
        let mut scanner = Scanner::default();
        let mut reader = body.reader()?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = read_some(&mut reader, &mut buf)?;
            if n == 0 {
                break;
            }
            scanner.feed(&buf[..n]);
            encoder.encode(&buf[..n], &mut count);
        }
        encoder.finish(&mut count);
        let content = Content {
            head,
            body,
            wire_size: count.0,
        };
        Ok((content, scanner.finish()))
    }

    /// The size of the data as sent, without the end marker (MAIL's SIZE=).
    pub fn wire_size(&self) -> u64 {
        self.wire_size
    }

    /// Prepended headers and message in one buffer, as stored (LF line ends). Only the
    /// 8BITMIME downgrade uses it: it rewrites MIME parts anywhere in the message, and
    /// it is rare (8-bit mail to a server without 8BITMIME), so the message is held in
    /// memory for it (docs/performance.md, "Memory with large messages").
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        let mut out = self.head.clone();
        self.body.reader()?.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Streams the data in its wire form, end marker included, into `write`: pieces
    /// of at least 64 KiB but the last, which carries the end marker. The end marker
    /// goes in the same write as the last bytes: alone, a small `.\r\n` would wait for
    /// the peer's delayed ACK of the body (Nagle), 40 ms per message on Linux.
    pub fn send<E>(
        &self,
        write: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), SendError<E>> {
        let mut head: &[u8] = &self.head;
        let mut body = self.body.reader().map_err(SendError::Read)?;
        send_wire(&mut [&mut head, &mut body], write)
    }
}

/// `parts` one after the other as one message in its wire form (see [`Content::send`]).
pub fn send_wire<E>(
    parts: &mut [&mut dyn Read],
    write: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), SendError<E>> {
    let mut encoder = WireEncoder::default();
    let mut buf = vec![0u8; CHUNK];
    // At most FLUSH_AT bytes kept, then one chunk's worst case (twice its size: every
    // byte an LF, or every line a single dot), then the end marker.
    let mut wire = Vec::with_capacity(FLUSH_AT + 2 * CHUNK + 2 + END_OF_DATA.len());
    for part in parts.iter_mut() {
        loop {
            let n = read_some(part, &mut buf).map_err(SendError::Read)?;
            if n == 0 {
                break;
            }
            encoder.encode(&buf[..n], &mut wire);
            if wire.len() >= FLUSH_AT {
                write(&wire).map_err(SendError::Write)?;
                wire.clear();
            }
        }
    }
    encoder.finish(&mut wire);
    wire.extend_from_slice(END_OF_DATA);
    write(&wire).map_err(SendError::Write)
}

/// One read, retried when interrupted by a signal.
fn read_some(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Stored content to its form after DATA, in pieces of any size: every line ends in
/// CR LF, a line starting with `.` gets another `.` (RFC 5321 4.5.2), and the last line
/// is terminated; the final `.\r\n` is not included.
///
/// A line ends at LF (stored content ends lines in LF; a CR right before it is part of
/// the line end). A CR anywhere else becomes a space, as Postfix's smtp client does:
/// RFC 5321 2.3.8 forbids sending a bare CR, and a receiver that takes one for a line
/// end would read `\r.\r` as the end of the data and what follows as commands. Whether
/// a CR is bare is known only from the next byte, which may come with the next piece:
/// the CR waits in `pending_cr` until then.
#[derive(Debug, Clone, Copy)]
pub struct WireEncoder {
    /// Nothing of the current line written yet.
    line_start: bool,
    /// The last byte was a CR, not yet written.
    pending_cr: bool,
}

impl Default for WireEncoder {
    fn default() -> Self {
        WireEncoder {
            line_start: true,
            pending_cr: false,
        }
    }
}

/// Where [`WireEncoder`] puts its output: a buffer, or a [`WireCount`] that only
/// counts (the size pass, which needs no copy of the content).
pub trait WireOut {
    fn put(&mut self, bytes: &[u8]);
}

impl WireOut for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts the bytes of the wire form.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WireCount(pub u64);

impl WireOut for WireCount {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len() as u64;
    }
}

impl WireEncoder {
    /// Appends the wire form of the next piece of content to `out`. The bytes between
    /// two line-end characters go out as one run: only the first byte of a line can
    /// need a dot, and only CR and LF change.
    pub fn encode(&mut self, input: &[u8], out: &mut impl WireOut) {
        let mut rest = input;
        while let Some(&first) = rest.first() {
            if std::mem::take(&mut self.pending_cr) && first != b'\n' {
                // A CR not followed by LF is bare.
                self.run(b" ", out);
            }
            match first {
                b'\n' => {
                    // After a pending CR too: CR LF is the line end.
                    out.put(b"\r\n");
                    self.line_start = true;
                    rest = &rest[1..];
                }
                b'\r' => {
                    self.pending_cr = true;
                    rest = &rest[1..];
                }
                _ => {
                    let len = rest
                        .iter()
                        .position(|&b| b == b'\n' || b == b'\r')
                        .unwrap_or(rest.len());
                    self.run(&rest[..len], out);
                    rest = &rest[len..];
                }
            }
        }
    }

    /// Bytes inside a line (none of them CR or LF; never empty).
    fn run(&mut self, bytes: &[u8], out: &mut impl WireOut) {
        if self.line_start && bytes.first() == Some(&b'.') {
            out.put(b".");
        }
        out.put(bytes);
        self.line_start = false;
    }

    /// The end of the content: a CR still waiting is bare, an open line is ended.
    pub fn finish(&mut self, out: &mut impl WireOut) {
        if std::mem::take(&mut self.pending_cr) {
            self.run(b" ", out);
        }
        if !self.line_start {
            out.put(b"\r\n");
            self.line_start = true;
        }
    }
}

/// The whole content in its wire form (see [`WireEncoder`]).
pub fn to_wire(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 32 + 2);
    let mut encoder = WireEncoder::default();
    encoder.encode(content, &mut out);
    encoder.finish(&mut out);
    out
}

/// The size of [`to_wire`]'s result.
fn wire_size(content: &[u8]) -> u64 {
    let mut count = WireCount::default();
    let mut encoder = WireEncoder::default();
    encoder.encode(content, &mut count);
    encoder.finish(&mut count);
    count.0
}

/// What the current line of the header section holds so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Line {
    /// Nothing: a line end here makes an empty line.
    #[default]
    Empty,
    /// One CR: a line end here makes an empty line too (CR LF).
    Cr,
    /// Anything else.
    Text,
}

/// What the checks need, from content fed in pieces. The header section ends at the
/// first empty line (a line that is empty or a lone CR before its LF), as in
/// downgrade.rs; content without one is all header.
#[derive(Debug, Default)]
struct Scanner {
    scan: Scan,
    /// Past the header section.
    body: bool,
    line: Line,
    /// The header section so far (its empty line included), at most HEAD_LIMIT bytes.
    head: Vec<u8>,
}

impl Scanner {
    fn feed(&mut self, piece: &[u8]) {
        self.scan.eight_bit = self.scan.eight_bit || piece.iter().any(|b| *b > 127);
        if self.body {
            return;
        }
        let header = &piece[..self.header_end(piece)];
        self.scan.headers_8bit = self.scan.headers_8bit || header.iter().any(|b| *b > 127);
        let room = HEAD_LIMIT.saturating_sub(self.head.len());
        self.head
            .extend_from_slice(&header[..header.len().min(room)]);
    }

    /// How much of `piece` belongs to the header section (the empty line that ends it
    /// included); sets `body` when the section ends in it.
    fn header_end(&mut self, piece: &[u8]) -> usize {
        for (i, &b) in piece.iter().enumerate() {
            self.line = match (b, self.line) {
                (b'\n', Line::Empty | Line::Cr) => {
                    self.body = true;
                    return i + 1;
                }
                (b'\n', Line::Text) => Line::Empty,
                (b'\r', Line::Empty) => Line::Cr,
                _ => Line::Text,
            };
        }
        piece.len()
    }

    fn finish(mut self) -> Scan {
        self.scan.tls_required_no = crate::envelope::tls_required_no(&self.head);
        self.scan
    }
}

#[cfg(test)]
pub(crate) mod testqueue {
    //! A queue file in a throw-away queue_directory, for tests that stream from one.

    use rostfix_queue::{Envelope, MessageContent, QueueFile, QueueName, QueueWriter};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    static N: AtomicU64 = AtomicU64::new(0);

    /// The directory, removed on drop.
    pub(crate) struct Root(pub(crate) PathBuf);

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Queues `content` and opens it as an agent does; the file's path comes too.
    pub(crate) fn queued(content: &[u8]) -> (Root, MessageContent, PathBuf) {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let root =
            std::env::temp_dir().join(format!("rostfix-smtp-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join(QueueName::Active.as_str())).unwrap();
        let root = Root(root);
        let env = Envelope {
            sender: "a@example.org".into(),
            ..Envelope::default()
        };
        let mut w = QueueWriter::create(&root.0, QueueName::Active, &env).unwrap();
        w.write_content(content).unwrap();
        let id = w.commit().unwrap();
        let (qf, c) =
            QueueFile::open_with_content(&root.0, QueueName::Active, &id, &|_| true).unwrap();
        (root, c, qf.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The whole-buffer conversion the agent used before it streamed, kept as the
    /// reference the streaming encoder must match.
    fn old_to_wire(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len() + content.len() / 32 + 2);
        let mut line_start = true;
        for (i, &b) in content.iter().enumerate() {
            match b {
                b'\r' if content.get(i + 1) == Some(&b'\n') => {}
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    line_start = true;
                }
                _ => {
                    if line_start && b == b'.' {
                        out.push(b'.');
                    }
                    out.push(if b == b'\r' { b' ' } else { b });
                    line_start = false;
                }
            }
        }
        if !line_start {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// The reference checks of the header section, as they were on the whole buffer.
    fn old_headers_have_utf8(content: &[u8]) -> bool {
        let end = content
            .windows(2)
            .position(|w| w == b"\n\n")
            .or_else(|| content.windows(4).position(|w| w == b"\r\n\r\n"))
            .unwrap_or(content.len());
        content[..end].iter().any(|b| *b > 127)
    }

    /// The encoder fed `content` cut at `cuts` (sorted positions).
    fn encode_cut(content: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut e = WireEncoder::default();
        let mut out = Vec::new();
        let mut from = 0;
        for &c in cuts.iter().chain(std::iter::once(&content.len())) {
            e.encode(&content[from..c], &mut out);
            from = c;
        }
        e.finish(&mut out);
        out
    }

    fn scan_cut(content: &[u8], cuts: &[usize]) -> Scan {
        let mut s = Scanner::default();
        let mut from = 0;
        for &c in cuts.iter().chain(std::iter::once(&content.len())) {
            s.feed(&content[from..c]);
            from = c;
        }
        s.finish()
    }

    /// Everything `send` writes, and the sizes of the writes.
    fn sent(content: &Content<'_>) -> (Vec<u8>, Vec<usize>) {
        let mut all = Vec::new();
        let mut writes = Vec::new();
        content
            .send(&mut |w: &[u8]| -> Result<(), ()> {
                all.extend_from_slice(w);
                writes.push(w.len());
                Ok(())
            })
            .unwrap();
        (all, writes)
    }

    #[test]
    fn wire_conversion() {
        assert_eq!(to_wire(b"a\n.b\n..c\nd"), b"a\r\n..b\r\n...c\r\nd\r\n");
        assert_eq!(to_wire(b".\r\nx\r\n"), b"..\r\nx\r\n");
        assert_eq!(to_wire(b""), b"");
        // A lone dot line is stuffed, so it never ends the data early.
        assert_eq!(to_wire(b".\n"), b"..\r\n");
        assert_eq!(to_wire(b"a\n.\nb\n"), b"a\r\n..\r\nb\r\n");
        // A bare LF ends a line as CR LF does.
        assert_eq!(to_wire(b"a\nb"), b"a\r\nb\r\n");
    }

    #[test]
    fn bare_cr_goes_out_as_a_space() {
        // The smuggling sequence stays inside one line instead of ending the data early.
        assert_eq!(
            to_wire(b"a\r.\rMAIL FROM:<e@x>\n"),
            b"a . MAIL FROM:<e@x>\r\n"
        );
        assert_eq!(to_wire(b"\r.\r\n"), b" .\r\n");
        assert_eq!(to_wire(b"x\r"), b"x \r\n");
        assert_eq!(to_wire(b"x\r\r\ny"), b"x \r\ny\r\n");
        // A CR right before LF is the line end; a dot after it is stuffed.
        assert_eq!(to_wire(b"a\r\n.\r\n"), b"a\r\n..\r\n");
    }

    #[test]
    fn every_cut_of_an_end_of_data_sequence_gives_the_same_wire() {
        for content in [
            &b"a\r\n.\r\nb\r\n"[..],
            b"a\n.\nb\n",
            b"\r\n.\r\n",
            b".\r\n",
            b"x\r\r\n.\r.\n",
            b"a\r",
        ] {
            let want = old_to_wire(content);
            for i in 0..=content.len() {
                assert_eq!(encode_cut(content, &[i]), want, "{content:?} cut at {i}");
                for j in i..=content.len() {
                    assert_eq!(
                        encode_cut(content, &[i, j]),
                        want,
                        "{content:?} at {i}, {j}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_line_longer_than_the_buffer() {
        // Three chunks of one line, a dot first, a CR where two chunks meet, and a dot
        // at the start of a chunk that is not the start of a line.
        let mut line = vec![b'x'; 3 * CHUNK];
        line[0] = b'.';
        line[CHUNK - 1] = b'\r';
        line[2 * CHUNK] = b'.';
        line.push(b'\n');
        line.extend_from_slice(b".end");
        let content = Content::from_bytes(&line);
        let (wire, writes) = sent(&content);
        let want = [old_to_wire(&line), END_OF_DATA.to_vec()].concat();
        assert_eq!(wire, want);
        assert_eq!(content.wire_size(), (want.len() - END_OF_DATA.len()) as u64);
        assert!(writes.len() > 1, "{writes:?}");
        assert!(
            writes.iter().all(|w| *w <= FLUSH_AT + 2 * CHUNK + 5),
            "{writes:?}"
        );
    }

    #[test]
    fn empty_content_is_only_the_end_marker() {
        let content = Content::from_bytes(b"");
        assert_eq!(content.wire_size(), 0);
        assert_eq!(sent(&content), (b".\r\n".to_vec(), vec![3]));
        let (_root, queued, _) = testqueue::queued(b"");
        let (content, scan) = Content::scan(Vec::new(), &queued).unwrap();
        assert_eq!(scan, Scan::default());
        assert_eq!(sent(&content).0, b".\r\n");
    }

    #[test]
    fn a_small_message_goes_in_one_write_with_its_end_marker() {
        let content = Content::from_bytes(b"Subject: x\n\nbody\n");
        assert_eq!(
            sent(&content),
            (b"Subject: x\r\n\r\nbody\r\n.\r\n".to_vec(), vec![23])
        );
    }

    #[test]
    fn a_queued_message_with_prepended_headers_streams_as_one() {
        let mut body = b"Subject: big\nTLS-Required: No\n\n".to_vec();
        for i in 0..20_000 {
            body.extend_from_slice(format!(".{i} line\n").as_bytes());
        }
        let (_root, queued, _) = testqueue::queued(&body);
        let head = b"Delivered-To: b@example.org\n".to_vec();
        let (content, scan) = Content::scan(head.clone(), &queued).unwrap();
        assert!(scan.tls_required_no && !scan.eight_bit && !scan.headers_8bit);
        let whole = [head, body].concat();
        let want = old_to_wire(&whole);
        assert_eq!(content.wire_size(), want.len() as u64);
        // Read twice: the reader starts at the first byte each time.
        for _ in 0..2 {
            let (wire, writes) = sent(&content);
            assert_eq!(wire, [want.clone(), END_OF_DATA.to_vec()].concat());
            assert!(writes.len() > 1);
        }
        assert_eq!(content.read_all().unwrap(), whole);
    }

    #[test]
    fn the_scan_finds_8bit_data_and_the_header_section() {
        let cases: [(&[u8], Scan); 5] = [
            (b"Subject: x\n\nbody\n", Scan::default()),
            (
                "Subject: \u{e9}\n\nbody\n".as_bytes(),
                Scan {
                    eight_bit: true,
                    headers_8bit: true,
                    tls_required_no: false,
                },
            ),
            (
                "Subject: e\n\nbod\u{e9}\nTLS-Required: No\n".as_bytes(),
                Scan {
                    eight_bit: true,
                    headers_8bit: false,
                    tls_required_no: false,
                },
            ),
            (
                b"tls-required:\n no\n\n",
                Scan {
                    tls_required_no: true,
                    ..Scan::default()
                },
            ),
            // A CR LF empty line ends the headers too.
            (
                "A: b\r\n\r\n\u{e9}".as_bytes(),
                Scan {
                    eight_bit: true,
                    ..Scan::default()
                },
            ),
        ];
        for (content, want) in cases {
            for i in 0..=content.len() {
                assert_eq!(scan_cut(content, &[i]), want, "{content:?} cut at {i}");
            }
        }
    }

    #[test]
    fn unreadable_content_stops_the_transfer_before_the_end_marker() {
        let body = vec![b'a'; 4 * CHUNK];
        let (_root, queued, path) = testqueue::queued(&body);
        let (content, _) = Content::scan(Vec::new(), &queued).unwrap();
        // The file loses its last records while it is being sent (the agent holds it
        // open; a truncation is what a failing disk can look like).
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - CHUNK as u64)
            .unwrap();
        let mut written = Vec::new();
        let r = content.send(&mut |w: &[u8]| -> Result<(), ()> {
            written.extend_from_slice(w);
            Ok(())
        });
        let Err(SendError::Read(e)) = r else {
            panic!("{r:?}")
        };
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(!written.ends_with(END_OF_DATA), "{}", written.len());
    }

    fn content_bytes() -> impl Strategy<Value = Vec<u8>> {
        // The bytes that matter to the encoder and the scans, often.
        let byte = prop_oneof![
            Just(b'\r'),
            Just(b'\n'),
            Just(b'.'),
            Just(b'a'),
            Just(b':'),
            Just(b' '),
            Just(0xe9u8),
            any::<u8>(),
        ];
        proptest::collection::vec(byte, 0..600)
    }

    proptest! {
        #[test]
        fn streamed_wire_equals_the_whole_buffer_conversion(
            content in content_bytes(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(content.len() + 1)).collect();
            cuts.sort_unstable();
            prop_assert_eq!(encode_cut(&content, &cuts), old_to_wire(&content));
            prop_assert_eq!(wire_size(&content), old_to_wire(&content).len() as u64);
        }

        /// On stored content (LF line ends, no empty first line), the streamed scans
        /// agree with the whole-buffer checks they replace.
        #[test]
        fn streamed_scans_equal_the_whole_buffer_checks(
            content in content_bytes(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let content: Vec<u8> = content.into_iter().filter(|b| *b != b'\r').collect();
            prop_assume!(!content.starts_with(b"\n"));
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(content.len() + 1)).collect();
            cuts.sort_unstable();
            let scan = scan_cut(&content, &cuts);
            prop_assert_eq!(scan.eight_bit, content.iter().any(|b| *b > 127));
            prop_assert_eq!(scan.headers_8bit, old_headers_have_utf8(&content));
            prop_assert_eq!(scan.tls_required_no, crate::envelope::tls_required_no(&content));
        }
    }
}
