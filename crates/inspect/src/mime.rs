//! The header/MIME splitter: turns stored message content (LF line endings) into the
//! pieces Postfix's cleanup inspects, each tagged with the table family that applies.
//!
//! - A logical header (first line plus its folded continuation lines, joined by the
//!   LF that separates them) becomes one [`Event::Header`]. Headers of the message
//!   itself are [`HeaderKind::Primary`]; those of a multipart part are
//!   [`HeaderKind::Mime`]; those of an attached `message/rfc822` are
//!   [`HeaderKind::Nested`]. A MIME header (Content-*, MIME-Version) is
//!   [`HeaderKind::Mime`] wherever it appears, as Postfix classifies it.
//! - Every other line (body lines, boundary lines, preamble and epilogue) is an
//!   [`Event::Body`] carrying the count of body bytes of its segment before it, for
//!   body_checks_size_limit. A body line longer than [`LINE_PIECE`] is cut into pieces,
//!   as Postfix cuts lines at line_length_limit, and each piece is inspected alone.
//! - The empty line that ends a header block is an [`Event::Separator`].
//! - Bytes of a header beyond the header cap are [`Event::Raw`]: passed on, not
//!   inspected (smtpd refuses such a message anyway through header_size_limit).
//!
//! Writing each event back out (header + LF, body text + LF when it ended a line,
//! separator LF, raw bytes) gives the input byte for byte: the proptest below holds
//! the splitter to that, whatever the input and however it is cut into pieces.
//!
//! Memory is bounded by the header cap plus [`LINE_PIECE`]; the boundary stack is
//! bounded by [`MAX_NESTING`] (Postfix's mime_nesting_limit default).

/// Longest body line piece inspected at once (Postfix's line_length_limit default).
pub const LINE_PIECE: usize = 2048;

/// Deepest multipart nesting followed; deeper boundaries are plain body text.
pub const MAX_NESTING: usize = 100;

/// Longest boundary taken from a Content-Type (RFC 2046 allows 70).
const MAX_BOUNDARY: usize = 200;

/// Which table family a header goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// The message's own headers: header_checks.
    Primary,
    /// MIME headers, and every header of a multipart part: mime_header_checks.
    Mime,
    /// Headers of an attached message/rfc822: nested_header_checks.
    Nested,
}

/// One inspected piece of the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A logical header, without its final LF (`eol`: it had one).
    Header {
        kind: HeaderKind,
        text: &'a [u8],
        eol: bool,
    },
    /// The empty line ending a header block.
    Separator,
    /// A body line or a piece of one; `eol`: the piece ends the line (an LF follows).
    Body {
        text: &'a [u8],
        eol: bool,
        /// Body bytes of this segment before this piece.
        offset: u64,
    },
    /// Uninspected bytes, passed on as they are.
    Raw(&'a [u8]),
}

/// Where the header block being read belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Primary,
    Part,
    Nested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Headers(Block),
    Body,
}

/// What the Content-Type of the header block being read announced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Announced {
    #[default]
    Other,
    Multipart(Vec<u8>),
    Message,
}

/// The streaming splitter.
#[derive(Debug, Clone)]
pub struct Splitter {
    mime: bool,
    header_cap: usize,
    mode: Mode,
    boundaries: Vec<Vec<u8>>,
    /// The current line, up to its LF (or the piece cap in the body).
    line: Vec<u8>,
    /// The line being read continues a body line already passed on in pieces.
    mid_line: bool,
    /// The rest of the current line goes out raw (a header line too long to keep).
    raw_line: bool,
    /// The logical header being collected (none when empty and `!in_header`).
    header: Vec<u8>,
    in_header: bool,
    /// The header overflowed the cap: its remaining lines go out raw.
    header_overflow: bool,
    announced: Announced,
    body_offset: u64,
}

impl Splitter {
    /// `mime`: follow MIME structure (not when disable_mime_input_processing = yes);
    /// `header_cap`: longest logical header inspected.
    pub fn new(mime: bool, header_cap: usize) -> Splitter {
        Splitter {
            mime,
            header_cap: header_cap.max(1),
            mode: Mode::Headers(Block::Primary),
            boundaries: Vec::new(),
            line: Vec::new(),
            mid_line: false,
            raw_line: false,
            header: Vec::new(),
            in_header: false,
            header_overflow: false,
            announced: Announced::Other,
            body_offset: 0,
        }
    }

    /// Takes the next piece of content, calling `out` for each complete event.
    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(Event<'_>)) {
        for chunk in data.split_inclusive(|&b| b == b'\n') {
            let (text, complete) = match chunk.strip_suffix(b"\n") {
                Some(t) => (t, true),
                None => (chunk, false),
            };
            self.take(text, out);
            if complete && self.raw_line {
                self.raw_line = false;
                out(Event::Raw(b"\n"));
                continue;
            }
            if complete {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, true, out);
                self.line = line;
                self.line.clear();
            }
        }
    }

    /// The end of the content: whatever is pending goes out.
    pub fn finish(&mut self, out: &mut dyn FnMut(Event<'_>)) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, false, out);
        }
        // A header still open here ended with its LF (one without went out at once).
        self.flush_header(true, out);
    }

    /// Appends line bytes; a body line past the piece size goes out in pieces.
    fn take(&mut self, mut text: &[u8], out: &mut dyn FnMut(Event<'_>)) {
        if self.raw_line {
            out(Event::Raw(text));
            return;
        }
        loop {
            let in_body = self.mode == Mode::Body;
            let room = LINE_PIECE.saturating_sub(self.line.len());
            if !in_body || text.len() <= room {
                // Header lines are bounded by the header cap in line_done.
                if !in_body && self.line.len() + text.len() > self.header_cap + LINE_PIECE {
                    // A header line longer than the cap: no inspection can use it.
                    let line = std::mem::take(&mut self.line);
                    self.header_too_long(&line, out);
                    self.line = line;
                    self.line.clear();
                    out(Event::Raw(text));
                    return;
                }
                self.line.extend_from_slice(text);
                return;
            }
            self.line.extend_from_slice(&text[..room]);
            text = &text[room..];
            let piece = std::mem::take(&mut self.line);
            self.body_line(&piece, false, out);
            self.mid_line = true;
            self.line = piece;
            self.line.clear();
        }
    }

    /// A header line too long to keep: the header block ends here uninspected.
    fn header_too_long(&mut self, start: &[u8], out: &mut dyn FnMut(Event<'_>)) {
        self.flush_header(true, out);
        out(Event::Raw(start));
        // Whatever follows is body: the block cannot be parsed further.
        self.mode = Mode::Body;
        self.mid_line = false;
        self.raw_line = true;
        self.announced = Announced::Other;
        self.body_offset = 0;
    }

    fn line_done(&mut self, line: &[u8], eol: bool, out: &mut dyn FnMut(Event<'_>)) {
        match self.mode {
            Mode::Body => self.body_line(line, eol, out),
            Mode::Headers(block) => self.header_line(block, line, eol, out),
        }
    }

    fn header_line(
        &mut self,
        block: Block,
        line: &[u8],
        eol: bool,
        out: &mut dyn FnMut(Event<'_>),
    ) {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if continuation && self.in_header {
            if self.header_overflow || self.header.len() + 1 + line.len() > self.header_cap {
                if !self.header_overflow {
                    self.flush_header(true, out);
                    self.header_overflow = true;
                    // The header stays open so its further lines also go out raw.
                    self.in_header = true;
                }
                out(Event::Raw(line));
                if eol {
                    out(Event::Raw(b"\n"));
                }
                return;
            }
            self.header.push(b'\n');
            self.header.extend_from_slice(line);
            if !eol {
                self.flush_header(false, out);
            }
            return;
        }
        self.flush_header(true, out);
        if block != Block::Primary && self.boundary_at(line).is_some() {
            // A part without headers (or a nested message cut short by its boundary).
            self.end_headers();
            self.body_line(line, eol, out);
            return;
        }
        if line.is_empty() && eol {
            out(Event::Separator);
            self.end_headers();
            return;
        }
        if is_header_start(line) {
            self.in_header = true;
            self.header_overflow = line.len() > self.header_cap;
            if self.header_overflow {
                out(Event::Raw(line));
                if eol {
                    out(Event::Raw(b"\n"));
                }
                return;
            }
            self.header.extend_from_slice(line);
            if !eol {
                self.flush_header(false, out);
            }
            return;
        }
        // Not a header: the body starts without an empty line.
        self.end_headers();
        self.body_line(line, eol, out);
    }

    /// Emits the logical header being collected, if any, and notes its Content-Type.
    fn flush_header(&mut self, eol: bool, out: &mut dyn FnMut(Event<'_>)) {
        if !self.in_header {
            return;
        }
        self.in_header = false;
        if self.header_overflow {
            self.header_overflow = false;
            self.header.clear();
            return;
        }
        let Mode::Headers(block) = self.mode else {
            self.header.clear();
            return;
        };
        let mime_header = is_mime_header(&self.header);
        if self.mime && header_name_is(&self.header, b"content-type") {
            self.announced = parse_content_type(&self.header[b"content-type:".len()..]);
        }
        let kind = match (block, mime_header) {
            (_, true) | (Block::Part, false) => HeaderKind::Mime,
            (Block::Primary, false) => HeaderKind::Primary,
            (Block::Nested, false) => HeaderKind::Nested,
        };
        out(Event::Header {
            kind,
            text: &self.header,
            eol,
        });
        self.header.clear();
    }

    /// The header block ended: what comes next depends on its Content-Type.
    fn end_headers(&mut self) {
        self.body_offset = 0;
        self.mid_line = false;
        let announced = std::mem::take(&mut self.announced);
        if !self.mime {
            self.mode = Mode::Body;
            return;
        }
        self.mode = match announced {
            Announced::Multipart(boundary) => {
                if self.boundaries.len() < MAX_NESTING {
                    self.boundaries.push(boundary);
                }
                Mode::Body
            }
            Announced::Message => Mode::Headers(Block::Nested),
            Announced::Other => Mode::Body,
        };
    }

    /// A body line (or piece); a boundary line also switches parts.
    fn body_line(&mut self, text: &[u8], eol: bool, out: &mut dyn FnMut(Event<'_>)) {
        let at_start = !self.mid_line;
        self.mid_line = !eol;
        if at_start && self.mime {
            if let Some((depth, closing)) = self.boundary_at(text) {
                out(Event::Body {
                    text,
                    eol,
                    offset: self.body_offset,
                });
                self.body_offset = 0;
                if closing {
                    self.boundaries.truncate(depth);
                    self.mode = Mode::Body;
                } else {
                    self.boundaries.truncate(depth + 1);
                    self.mode = Mode::Headers(Block::Part);
                    self.announced = Announced::Other;
                }
                return;
            }
        }
        out(Event::Body {
            text,
            eol,
            offset: self.body_offset,
        });
        self.body_offset = self
            .body_offset
            .saturating_add(text.len() as u64 + u64::from(eol));
    }

    /// `--boundary` or `--boundary--` of an open multipart, innermost first:
    /// (its index, closing).
    fn boundary_at(&self, line: &[u8]) -> Option<(usize, bool)> {
        let rest = line.strip_prefix(b"--")?;
        self.boundaries
            .iter()
            .enumerate()
            .rev()
            .find(|(_, b)| rest.starts_with(b))
            .map(|(i, b)| (i, rest[b.len()..].starts_with(b"--")))
    }
}

/// `Name:` with a name of printable non-space characters.
fn is_header_start(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(colon) => line[..colon].iter().all(|&b| (33..=126).contains(&b)),
    }
}

fn header_name_is(header: &[u8], name: &[u8]) -> bool {
    header.len() > name.len()
        && header[..name.len()].eq_ignore_ascii_case(name)
        && header[name.len()] == b':'
}

/// The headers Postfix marks as MIME headers (its HDR_OPT_MIME).
fn is_mime_header(header: &[u8]) -> bool {
    [
        &b"content-description"[..],
        b"content-disposition",
        b"content-id",
        b"content-transfer-encoding",
        b"content-type",
        b"mime-version",
    ]
    .iter()
    .any(|name| header_name_is(header, name))
}

/// Reads `type/subtype; boundary=...` (folding and comments tolerated loosely).
fn parse_content_type(value: &[u8]) -> Announced {
    let text: Vec<u8> = value
        .iter()
        .map(|&b| {
            if b == b'\n' || b == b'\r' || b == b'\t' {
                b' '
            } else {
                b
            }
        })
        .collect();
    let mut parts = text.split(|&b| b == b';');
    let Some(media) = parts.next() else {
        return Announced::Other;
    };
    let media = media.trim_ascii().to_ascii_lowercase();
    if media == b"message/rfc822" {
        return Announced::Message;
    }
    if !media.starts_with(b"multipart/") {
        return Announced::Other;
    }
    for param in parts {
        let Some(eq) = param.iter().position(|&b| b == b'=') else {
            continue;
        };
        if !param[..eq].trim_ascii().eq_ignore_ascii_case(b"boundary") {
            continue;
        }
        let value = param[eq + 1..].trim_ascii();
        let value = match value.strip_prefix(b"\"") {
            Some(q) => q.split(|&b| b == b'"').next().unwrap_or(q),
            None => value.split(|&b| b == b' ').next().unwrap_or(value),
        };
        if value.is_empty() || value.len() > MAX_BOUNDARY {
            return Announced::Other;
        }
        return Announced::Multipart(value.to_vec());
    }
    Announced::Other
}

#[cfg(test)]
#[path = "mime_tests.rs"]
mod tests;
