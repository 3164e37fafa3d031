//! BDAT (RFC 3030 CHUNKING), a child module of session/mod.rs.
//!
//! Every BDAT command is followed by exactly `size` octets, whatever the reply will be:
//! the chunk is always read (and dropped when the command fails), so the session never
//! loses its place in the input stream, even for a BDAT out of sequence, before TLS
//! under smtpd_tls_security_level=encrypt, or past message_size_limit. The first chunk
//! of a transaction creates the queue file; each non-last chunk gets
//! `250 2.0.0 Ok: N bytes`; `BDAT n LAST` commits. Any failure ends the transaction
//! (later chunks then get 503), as does RSET, HELO/EHLO or STARTTLS. DATA after BDAT
//! in one transaction gets 503 (RFC 3030 3).

use super::receive::Intake;
use super::{DataOutcome, Session};
use crate::chunk::ChunkDecoder;
use crate::io::{is_timeout, SmtpIo};
use crate::reply::Reply;
use crate::sink::QueueSink;
use crate::tls::Transport;

/// A message under BDAT: its intake and the CR LF decoder across chunks.
pub(super) struct BdatMessage<M: crate::sink::QueuedMessage> {
    pub(super) intake: Intake<M>,
    decoder: ChunkDecoder,
}

/// What reading a chunk ended with.
enum Read {
    Done,
    Timeout,
    Lost,
}

impl<S: QueueSink> Session<'_, S> {
    /// One BDAT command with its chunk.
    pub(super) fn bdat<T: Transport>(
        &mut self,
        size: u64,
        last: bool,
        io: &mut SmtpIo<T>,
    ) -> DataOutcome {
        // A chunk of an earlier (reset) transaction is gone for good.
        let serial = self.txn.as_ref().map(|t| t.serial);
        if self
            .bdat_msg
            .as_ref()
            .is_some_and(|b| Some(b.intake.serial) != serial)
        {
            if let Some(stale) = self.bdat_msg.take() {
                stale.intake.abort();
            }
        }
        let refusal = if self.needs_tls_first(&crate::command::Command::Bdat { size, last }) {
            Some(Reply::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first",
            ))
        } else if self.cfg.proxy_filter.is_some() {
            // CHUNKING is not offered with a before-queue filter (proxy.rs): a BDAT
            // must not reach our queue past the filter.
            Some(Reply::new(502, "5.5.1", "Error: command not implemented"))
        } else {
            match &self.txn {
                None => Some(Reply::new(503, "5.5.1", "Error: need MAIL command")),
                Some(t) if t.recipients.is_empty() => {
                    Some(Reply::new(554, "5.5.1", "Error: no valid recipients"))
                }
                Some(_) => None,
            }
        };
        if let Some(reply) = refusal {
            return match self.read_chunk(size, io, None) {
                Read::Done => DataOutcome::Reply(reply),
                Read::Timeout => DataOutcome::Timeout,
                Read::Lost => DataOutcome::Lost,
            };
        }
        if self.bdat_msg.is_none() {
            let Some(txn) = self.txn.clone() else {
                return DataOutcome::Reply(Reply::new(503, "5.5.1", "Error: need MAIL command"));
            };
            match self.open_intake(&txn) {
                Ok(intake) => {
                    self.bdat_msg = Some(BdatMessage {
                        intake,
                        decoder: ChunkDecoder::new(),
                    })
                }
                Err(reply) => {
                    self.txn = None;
                    return match self.read_chunk(size, io, None) {
                        Read::Done => DataOutcome::Reply(reply),
                        Read::Timeout => DataOutcome::Timeout,
                        Read::Lost => DataOutcome::Lost,
                    };
                }
            }
        }
        let mut msg = self.bdat_msg.take();
        let read = self.read_chunk(size, io, msg.as_mut());
        let Some(mut msg) = msg else {
            return DataOutcome::Reply(super::receive::generic_write_error());
        };
        match read {
            Read::Done => {}
            Read::Timeout => {
                msg.intake.abort();
                self.txn = None;
                return DataOutcome::Timeout;
            }
            Read::Lost => {
                msg.intake.abort();
                self.txn = None;
                return DataOutcome::Lost;
            }
        }
        if !last {
            if msg.intake.too_big() {
                let id = msg.intake.queue_id().to_string();
                msg.intake.abort();
                let reply = Reply::new(552, "5.3.4", "Error: message file too big");
                if let Some(txn) = self.txn.take() {
                    let rcpt = txn.recipients.first().cloned().unwrap_or_default();
                    self.log_reject(
                        &id,
                        ("BDAT", "message_size_limit"),
                        &reply,
                        &txn.sender,
                        &rcpt,
                    );
                }
                return DataOutcome::Reply(reply);
            }
            self.bdat_msg = Some(msg);
            return DataOutcome::Reply(Reply::new(250, "2.0.0", format!("Ok: {size} bytes")));
        }
        let mut tail = Vec::new();
        msg.decoder.finish(&mut tail);
        msg.intake.push(&tail);
        let Some(txn) = self.txn.take() else {
            msg.intake.abort();
            return DataOutcome::Reply(Reply::new(503, "5.5.1", "Error: need MAIL command"));
        };
        DataOutcome::Reply(self.close_intake(msg.intake, &txn, "BDAT"))
    }

    /// Reads exactly `size` octets, into `msg` when given, else dropped.
    fn read_chunk<T: Transport>(
        &mut self,
        size: u64,
        io: &mut SmtpIo<T>,
        mut msg: Option<&mut BdatMessage<S::Message>>,
    ) -> Read {
        let mut left = size;
        let mut out = Vec::new();
        while left > 0 {
            let n = match io.fill() {
                Ok([]) => return Read::Lost,
                Ok(buf) => {
                    let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    if let Some(m) = msg.as_deref_mut() {
                        out.clear();
                        m.decoder.feed(&buf[..n], &mut out);
                        m.intake.push(&out);
                    }
                    n
                }
                Err(e) if is_timeout(&e) => return Read::Timeout,
                Err(e) => {
                    log::debug!("read error in BDAT from {}: {e}", self.client.log_name());
                    return Read::Lost;
                }
            };
            io.consume(n);
            left -= n as u64;
        }
        Read::Done
    }
}
