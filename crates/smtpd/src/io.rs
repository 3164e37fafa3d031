//! The session's connection: a buffered reader for commands and data, and a reply
//! buffer that is flushed only when the reader has no more buffered input. That is
//! PIPELINING done right: a client that sends a group of commands gets all their
//! replies in one write, in order, and the server never blocks on a read while replies
//! are still waiting to go out.
//!
//! Command lines are read with a hard length limit: an over-long line is skipped up to
//! its LF without being stored, so a client cannot make us buffer unbounded data.
//!
//! With smtpd_per_record_deadline, smtpd_timeout bounds a whole record (a command
//! line, a line of message content) instead of each read: a client trickling one byte
//! at a time can no longer hold a session for ever.

use crate::reply::Reply;
#[cfg(test)]
use crate::tls::Duplex;
use crate::tls::{TlsInfo, Transport};
use std::io::{self, BufRead, BufReader};
use std::time::{Duration, Instant};

/// Read buffer size; also the most a single read pulls from the socket.
const READ_BUFFER: usize = 16 * 1024;

/// Result of reading one command line.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// The line without its LF and an optional CR before it.
    Line(Vec<u8>),
    /// Longer than the limit; skipped through its LF.
    TooLong,
    /// The client closed the connection (a partial last line is dropped).
    Eof,
}

/// Buffered input plus pending replies, over one transport (writes bypass the buffer).
pub struct SmtpIo<T: Transport> {
    reader: BufReader<T>,
    pending: Vec<u8>,
    /// The last line [`SmtpIo::read_line`] returned ended in LF without CR.
    last_bare_lf: bool,
    /// smtpd_per_record_deadline: the time a whole record may take.
    record_limit: Option<Duration>,
    /// When the record being read began (its first wait for input).
    record_start: Option<Instant>,
}

/// Timeouts show up as WouldBlock (SO_RCVTIMEO on Linux) or TimedOut.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
impl<R: std::io::Read, W: std::io::Write> SmtpIo<Duplex<R, W>> {
    /// Separate input and output, no TLS (tests).
    pub fn new(input: R, output: W) -> Self {
        SmtpIo::over(Duplex { input, output })
    }
}

impl<T: Transport> SmtpIo<T> {
    pub fn over(transport: T) -> Self {
        SmtpIo {
            reader: BufReader::with_capacity(READ_BUFFER, transport),
            pending: Vec::new(),
            last_bare_lf: false,
            record_limit: None,
            record_start: None,
        }
    }

    /// Turns the per-record deadline on: from now on `limit` bounds each record.
    pub fn set_record_deadline(&mut self, limit: Duration) {
        self.record_limit = Some(limit);
    }

    /// Before a read from the socket: under a per-record deadline, the time left for
    /// the current record becomes the read timeout; none left is a timeout.
    fn arm_deadline(&mut self) -> io::Result<()> {
        let Some(limit) = self.record_limit else {
            return Ok(());
        };
        let started = *self.record_start.get_or_insert_with(Instant::now);
        match limit.checked_sub(started.elapsed()) {
            Some(left) if !left.is_zero() => self.reader.get_mut().set_read_timeout(left),
            _ => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "per-record deadline exceeded",
            )),
        }
    }

    /// Whether STARTTLS can be offered on this connection.
    pub fn tls_available(&self) -> bool {
        self.reader.get_ref().tls_available()
    }

    /// Drops whatever input the client sent after the current command and is already
    /// buffered; returns how many bytes. Used at STARTTLS: plaintext pipelined after it
    /// must never be read as if it came over TLS (CVE-2011-0411).
    pub fn discard_buffered(&mut self) -> usize {
        let n = self.reader.buffer().len();
        self.reader.consume(n);
        self.record_start = None;
        n
    }

    /// STARTTLS after its 220: flushes the replies, discards buffered plaintext, and
    /// runs the handshake; from then on every read and write goes through TLS.
    pub fn start_tls(
        &mut self,
    ) -> io::Result<((TlsInfo, Option<crate::ccert::ClientCert>), usize)> {
        let discarded = self.discard_buffered();
        self.flush()?;
        if let Some(limit) = self.record_limit {
            // The handshake is a record of its own: a fresh deadline, not what the
            // STARTTLS line left.
            self.reader.get_mut().set_read_timeout(limit)?;
        }
        let info = self.reader.get_mut().start_tls()?;
        Ok((info, discarded))
    }

    /// Queues a reply; it goes out at the next flush.
    pub fn send(&mut self, reply: &Reply) {
        reply.render_into(&mut self.pending);
    }

    /// Writes the pending replies.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let writer = self.reader.get_mut();
            let result = writer
                .write_all(&self.pending)
                .and_then(|()| writer.flush());
            self.pending.clear();
            result?;
        }
        Ok(())
    }

    /// The buffered input, reading more (after flushing replies) when it is empty.
    /// An empty slice means end of input.
    pub fn fill(&mut self) -> io::Result<&[u8]> {
        if self.reader.buffer().is_empty() {
            self.flush()?;
            self.arm_deadline()?;
            loop {
                match self.reader.fill_buf() {
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(self.reader.buffer())
    }

    /// Whether the client sent input we have not used yet: buffered bytes, or bytes the
    /// transport can hand over without waiting (pulled into the buffer here, so they
    /// can be shown in the log). The end of input is not input: a client that sends
    /// QUIT and shuts its side down did nothing wrong.
    pub fn input_pending(&mut self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        if !self.reader.get_mut().input_ready() {
            return false;
        }
        // Ready: this read returns at once.
        matches!(self.fill(), Ok(buf) if !buf.is_empty())
    }

    /// The first `max` bytes of the buffered input, for a log line.
    pub fn buffered_preview(&self, max: usize) -> &[u8] {
        let buf = self.reader.buffer();
        &buf[..buf.len().min(max)]
    }

    /// Throws away up to `limit` bytes of input the client has already sent, without
    /// waiting for more; returns how many. Done before hanging up on a client: closing
    /// a socket with unread input makes the kernel answer with RST, which can destroy
    /// our last reply before the client reads it.
    pub fn discard_sent_input(&mut self, limit: usize) -> usize {
        let mut dropped = 0;
        while dropped < limit && self.input_pending() {
            dropped += self.discard_buffered();
        }
        dropped
    }

    /// Marks `n` bytes of the buffered input as used. A line end among them completes
    /// a record: the next one gets a fresh deadline.
    pub fn consume(&mut self, n: usize) {
        let buffered = self.reader.buffer();
        if buffered[..n.min(buffered.len())].contains(&b'\n') {
            self.record_start = None;
        }
        self.reader.consume(n);
    }

    /// Whether the last line read ended in a bare LF (smtpd_forbid_bare_newline).
    pub fn last_line_bare_lf(&self) -> bool {
        self.last_bare_lf
    }

    /// Reads one line of at most `limit` bytes (not counting CR LF).
    pub fn read_line(&mut self, limit: usize) -> io::Result<LineRead> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let (used, complete) = {
                let buf = self.fill()?;
                if buf.is_empty() {
                    return Ok(LineRead::Eof);
                }
                let (chunk, complete) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (&buf[..i], true),
                    None => (buf, false),
                };
                // One extra byte of room for the CR of CR LF.
                if !too_long && line.len() + chunk.len() <= limit + 1 {
                    line.extend_from_slice(chunk);
                } else {
                    too_long = true;
                    line = Vec::new();
                }
                (chunk.len() + usize::from(complete), complete)
            };
            self.consume(used);
            if complete {
                self.last_bare_lf = line.last() != Some(&b'\r');
                if !self.last_bare_lf {
                    line.pop();
                }
                if too_long || line.len() > limit {
                    return Ok(LineRead::TooLong);
                }
                return Ok(LineRead::Line(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::NetStream;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// A client that sends `data` one byte every `pace`, over a real socket whose
    /// per-read timeout is `timeout`.
    fn trickle(
        data: &'static [u8],
        pace: Duration,
        timeout: Duration,
    ) -> SmtpIo<NetStream<UnixStream>> {
        let (server, mut client) = UnixStream::pair().unwrap();
        server.set_read_timeout(Some(timeout)).unwrap();
        std::thread::spawn(move || {
            for byte in data {
                std::thread::sleep(pace);
                if client.write_all(&[*byte]).is_err() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_secs(2));
        });
        SmtpIo::over(NetStream::new(server, None))
    }

    #[test]
    fn per_read_timeout_lets_a_trickling_client_through() {
        let mut io = trickle(
            b"NOOP\r\n",
            Duration::from_millis(60),
            Duration::from_millis(300),
        );
        assert_eq!(io.read_line(100).unwrap(), LineRead::Line(b"NOOP".to_vec()));
    }

    #[test]
    fn per_record_deadline_stops_a_trickling_client() {
        let mut io = trickle(
            b"NOOP NOOP NOOP\r\n",
            Duration::from_millis(60),
            Duration::from_millis(300),
        );
        io.set_record_deadline(Duration::from_millis(300));
        let start = Instant::now();
        let err = io.read_line(100).unwrap_err();
        assert!(is_timeout(&err), "{err:?}");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_millis(800),
            "{took:?}"
        );
    }

    #[test]
    fn each_complete_line_gets_a_fresh_deadline() {
        // Every line takes ~200 ms of a 300 ms deadline: three lines in a row pass.
        let mut io = trickle(
            b"A1\nB2\nC3\n",
            Duration::from_millis(65),
            Duration::from_millis(300),
        );
        io.set_record_deadline(Duration::from_millis(300));
        for want in [&b"A1"[..], b"B2", b"C3"] {
            assert_eq!(io.read_line(100).unwrap(), LineRead::Line(want.to_vec()));
        }
    }

    #[test]
    fn lines_with_and_without_cr() {
        let mut io = SmtpIo::new(&b"HELO a\r\nNOOP\nQUIT"[..], Vec::new());
        assert_eq!(
            io.read_line(100).unwrap(),
            LineRead::Line(b"HELO a".to_vec())
        );
        assert_eq!(io.read_line(100).unwrap(), LineRead::Line(b"NOOP".to_vec()));
        assert_eq!(io.read_line(100).unwrap(), LineRead::Eof);
    }

    #[test]
    fn too_long_resyncs_at_next_lf() {
        let input = [vec![b'x'; 50_000], b"\r\nNOOP\r\n".to_vec()].concat();
        let mut io = SmtpIo::new(&input[..], Vec::new());
        assert_eq!(io.read_line(100).unwrap(), LineRead::TooLong);
        assert_eq!(io.read_line(100).unwrap(), LineRead::Line(b"NOOP".to_vec()));
    }

    #[test]
    fn limit_is_exclusive_of_crlf() {
        let mut io = SmtpIo::new(&b"12345\r\n123456\r\n"[..], Vec::new());
        assert_eq!(io.read_line(5).unwrap(), LineRead::Line(b"12345".to_vec()));
        assert_eq!(io.read_line(5).unwrap(), LineRead::TooLong);
    }

    #[test]
    fn replies_flushed_before_blocking_read() {
        let mut out = Vec::new();
        {
            let mut io = SmtpIo::new(&b"A\r\nB\r\n"[..], &mut out);
            io.send(&Reply::new(250, "2.0.0", "one"));
            // Buffer empty: flushes before the first read.
            assert_eq!(io.read_line(10).unwrap(), LineRead::Line(b"A".to_vec()));
            io.send(&Reply::new(250, "2.0.0", "two"));
            // "B" is already buffered: no flush yet.
            assert_eq!(io.read_line(10).unwrap(), LineRead::Line(b"B".to_vec()));
        }
        assert_eq!(out, b"250 2.0.0 one\r\n");
    }

    #[test]
    fn discard_drops_only_buffered_input() {
        let mut io = SmtpIo::new(&b"STARTTLS\r\nRSET\r\nMAIL FROM:<a>\r\n"[..], Vec::new());
        assert_eq!(
            io.read_line(100).unwrap(),
            LineRead::Line(b"STARTTLS".to_vec())
        );
        assert_eq!(io.discard_buffered(), 21);
        assert_eq!(io.read_line(100).unwrap(), LineRead::Eof);
    }
}
