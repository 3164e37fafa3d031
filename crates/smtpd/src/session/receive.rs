//! Receiving one message's content into a queue file, shared by DATA and BDAT (a child
//! module of session/mod.rs, so it sees the session's state): [`Intake`] creates the queue
//! file with our Received: header, takes stored content (LF line endings) in pieces,
//! counts its size against message_size_limit and its headers against
//! header_size_limit and hopcount_limit, and [`Session::close_intake`] turns the result
//! into the final reply: commit and "250 2.0.0 Ok: queued as ID", or the reason why not.
//!
//! The content goes through content inspection (crates/inspect: header_checks,
//! body_checks, ...) on its way to the queue file, our Received: header included as
//! Postfix's cleanup sees it; the inspection's verdict is applied at the end: REJECT
//! and DEFER answer the DATA command (the `reject:` line was logged when the table
//! matched), DISCARD answers 250 without queueing (Postfix's cleanup removes a
//! discarded message too: nothing is left to keep durable), HOLD commits into hold/,
//! REDIRECT, FILTER and BCC commit with the changed envelope.
//!
//! Past a limit or a write error the content is still accepted from the client (and
//! dropped) until the end, so the session stays in sync; the reply comes at the end.

use super::milter::MessageVerdict;
use super::{Session, Transaction};
use crate::headers::HeaderScanner;
use crate::limits::HeaderSizeGuard;
use crate::received::{now_unix, received_header, ReceivedInfo};
use crate::reply::Reply;
use crate::sink::{QueueSink, QueuedMessage, SinkError};
use crate::tls::TlsInfo;
use rostfix_inspect::{Inspector, LogContext, Verdict};
use rostfix_queue::Envelope;

/// A message being received.
pub(super) struct Intake<M: QueuedMessage> {
    /// The transaction it belongs to (BDAT spans commands; RSET may intervene).
    pub(super) serial: u64,
    msg: M,
    id: String,
    /// The envelope the file was created with (REDIRECT, FILTER, BCC change a copy).
    envelope: Envelope,
    inspector: Inspector,
    /// Inspected content on its way to the queue file.
    staged: Vec<u8>,
    scanner: HeaderScanner,
    header_guard: HeaderSizeGuard,
    /// With smtpd_milters, DKIM signing or verification the content is kept here, not written,
    /// until the milters have seen (and maybe edited) it and the signature over the
    /// final content is made; bounded by message_size_limit since `push` stops
    /// passing content on once the message is too big.
    held: Option<Vec<u8>>,
    size: u64,
    limit: u64,
    too_big: bool,
    failed: Option<SinkError>,
}

impl<M: QueuedMessage> Intake<M> {
    /// Takes stored content; size and header checks, then the queue file.
    pub(super) fn push(&mut self, content: &[u8]) {
        if content.is_empty() {
            return;
        }
        self.scanner.feed(content);
        self.header_guard.feed(content);
        self.size = self.size.saturating_add(content.len() as u64);
        self.too_big |= self.limit > 0 && self.size > self.limit;
        if !self.too_big && self.failed.is_none() && !self.header_guard.exceeded() {
            self.write_inspected(content);
        }
    }

    /// Writes content through the inspection.
    fn write_inspected(&mut self, content: &[u8]) {
        self.staged.clear();
        self.inspector.feed(content, &mut self.staged);
        if self.staged.is_empty() {
            return;
        }
        match &mut self.held {
            Some(held) => held.extend_from_slice(&self.staged),
            None => self.failed = self.msg.write(&self.staged).err(),
        }
    }

    /// Already over message_size_limit.
    pub(super) fn too_big(&self) -> bool {
        self.too_big
    }

    pub(super) fn queue_id(&self) -> &str {
        &self.id
    }

    /// Throws the message away.
    pub(super) fn abort(self) {
        self.msg.abort();
    }
}

/// The reply when the queue file cannot be written: 452 4.3.1 when the file system
/// is full, as Postfix answers, else a generic 451 4.3.0.
pub(super) fn write_error(e: &SinkError) -> Reply {
    if crate::storage::is_out_of_space(e) {
        crate::storage::insufficient_storage()
    } else {
        generic_write_error()
    }
}

/// The reply for a queue file that cannot be written, the cause unknown.
pub(super) fn generic_write_error() -> Reply {
    Reply::new(451, "4.3.0", "Error: queue file write error")
}

impl<S: QueueSink> Session<'_, S> {
    /// Creates the queue file for `txn` and writes our Received: header.
    pub(super) fn open_intake(&mut self, txn: &Transaction) -> Result<Intake<S::Message>, Reply> {
        // The milters' DATA event, before the client may send content.
        if let Some(reply) = self.milter_data("DATA", &txn.sender) {
            return Err(reply);
        }
        // cleanup's address rewriting and automatic BCC (session/rewrite.rs).
        // Decided before the queue file exists: a failed table lookup here is 451.
        let header_rewrite = self.header_rewrite()?;
        let envelope = self.rewrite_envelope(self.envelope(txn))?;
        let msg = match self.sink.create(&envelope) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("queue file create failed: {e}");
                return Err(write_error(&e));
            }
        };
        let id = msg.queue_id().to_string();
        log::info!(
            "{id}: client={}{}{}",
            self.client.log_name(),
            self.auth.log_suffix(),
            self.forwarded_log()
        );
        let header = self.header_block(txn, &id);
        let inspector = Inspector::new(
            self.cfg.content_checks.clone(),
            LogContext {
                queue_id: id.clone(),
                origin: self.client.log_name(),
                sender: txn.sender.clone(),
                recipient: txn.recipients.first().cloned(),
                proto: Some(self.protocol().to_string()),
                helo: self.helo.clone(),
            },
        );
        let inspector = match header_rewrite {
            Some(rewrite) => inspector.with_header_rewrite(rewrite),
            None => inspector,
        };
        let size = header.len() as u64;
        let limit = self.cfg.message_size_limit;
        let mut intake = Intake {
            serial: txn.serial,
            msg,
            id,
            envelope,
            inspector,
            staged: Vec::new(),
            scanner: HeaderScanner::new(),
            header_guard: HeaderSizeGuard::new(self.cfg.proto.header_size_limit),
            held: (self.milters_active()
                || self.dkim_signs()
                || self.arc_seals()
                || self.cfg.auth_verify.is_some())
            .then(Vec::new),
            size,
            limit,
            too_big: limit > 0 && size > limit,
            failed: None,
        };
        intake.write_inspected(header.as_bytes());
        Ok(intake)
    }

    /// What goes before the client's content: the restrictions' PREPEND headers and
    /// our Received: header (`id` empty: none, as for a before-queue filter).
    pub(super) fn header_block(&mut self, txn: &Transaction, id: &str) -> String {
        let client_literal = self.client.received_literal();
        let single = match txn.recipients.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        };
        // smtpd_tls_received_header: the cipher only when asked for (Postfix's default
        // keeps it out of headers that travel with the message).
        let tls_note = self
            .tls
            .as_ref()
            .filter(|_| self.cfg.session.tls_received_header)
            .map(TlsInfo::summary);
        let cert_note = tls_note.as_ref().map(|_| {
            crate::received::client_cert_note(self.ccert.as_ref(), self.cfg.tls.ask_ccert)
        });
        let header = received_header(&ReceivedInfo {
            helo: self.helo.as_deref().unwrap_or(&self.client.name),
            client_name: &self.client.name,
            client_literal: &client_literal,
            myhostname: &self.cfg.myhostname,
            protocol: self.protocol(),
            queue_id: id,
            tls: tls_note.as_deref(),
            client_cert: cert_note.as_deref(),
            single_recipient: single,
            unix_time: now_unix(),
        });
        // smtpd_sasl_authenticated_header: the AUTH identity, only when asked for.
        let header = crate::auth::received_with_user(
            header,
            self.auth
                .username
                .as_deref()
                .filter(|_| self.cfg.auth.authenticated_header),
        );
        // PREPEND results of the restrictions go above our Received:, as in Postfix.
        let mut top = String::new();
        for h in self.prepend.take() {
            top.push_str(&h);
            top.push('\n');
        }
        top + &header
    }

    /// Ends the message: the first failed check (write error, size, header size,
    /// hops) decides the reply; otherwise the queue file is committed and qmgr woken.
    pub(super) fn close_intake(
        &mut self,
        intake: Intake<S::Message>,
        txn: &Transaction,
        stage: &str,
    ) -> Reply {
        let Intake {
            mut msg,
            id,
            envelope,
            inspector,
            mut staged,
            scanner,
            header_guard,
            mut held,
            too_big,
            failed,
            size,
            ..
        } = intake;
        let rcpt = txn.recipients.first().map(String::as_str).unwrap_or("");
        staged.clear();
        let mut outcome = inspector.finish(&mut staged);
        // The access-table and policy actions of the transaction (queue_actions.rs).
        self.actions.borrow().merge_into(&mut outcome);
        let failed = match (failed, held.as_mut()) {
            (None, Some(held)) => {
                held.extend_from_slice(&staged);
                None
            }
            (None, None) if !staged.is_empty() => msg.write(&staged).err(),
            (other, _) => other,
        };
        if let Some(e) = failed {
            log::warn!("{id}: queue file write error: {e}");
            msg.abort();
            return write_error(&e);
        }
        let refusal = if too_big {
            let reply = Reply::new(552, "5.3.4", "Error: message file too big");
            Some((reply, "message_size_limit"))
        } else if header_guard.exceeded() {
            let reply = Reply::new(552, "5.6.0", "Error: message header too long");
            Some((reply, "header_size_limit"))
        } else if scanner.received_count() >= self.cfg.hopcount_limit {
            // Our own Received: header makes one more hop.
            Some((
                Reply::new(554, "5.4.0", "Error: too many hops"),
                "hopcount_limit",
            ))
        } else {
            // smtpd_end_of_data_restrictions (checks.rs); logged just below.
            self.restriction_check(super::CheckPoint::EndOfData, Some(&txn.sender), None)
                .map(|r| (r, super::END_OF_DATA))
        };
        if let Some((reply, class)) = refusal {
            msg.abort();
            self.log_reject(&id, (stage, class), &reply, &txn.sender, rcpt);
            return reply;
        }
        let hold = match outcome.verdict() {
            Verdict::Reject { code, dsn, text } => {
                // Logged as `ID: reject: header ...` when the table matched.
                crate::metrics::reject(stage, "header_body_checks", code);
                msg.abort();
                // The DSN code is the table's (`REJECT 4.7.0 text` is allowed), so
                // it is part of the text rather than a fixed enhanced code.
                return Reply::plain(code, vec![format!("{dsn} {text}")]);
            }
            Verdict::Discard => {
                // Logged as `ID: discard: ...`; Postfix answers as if queued.
                msg.abort();
                return Reply::new(250, "2.0.0", format!("Ok: queued as {id}"));
            }
            Verdict::Queue { hold } => hold,
        };
        let mut hold = hold;
        let mut new_envelope = outcome.rewrite_envelope(&envelope);
        let mut signed = false;
        if let Some(content) = held {
            // Verification on receipt (authverify.rs): before the milters, so they
            // see our Authentication-Results.
            let content = match self.verify_received(&id, content, txn, stage) {
                Ok((content, quarantine)) => {
                    hold |= quarantine;
                    content
                }
                Err(reply) => {
                    msg.abort();
                    return reply;
                }
            };
            let (content, edits) = if self.milters_active() {
                match self.milter_message(&id, &content, txn) {
                    MessageVerdict::Queue(content, edits) => (content, edits),
                    MessageVerdict::Refuse(reply) => {
                        msg.abort();
                        return reply;
                    }
                    MessageVerdict::Discard => {
                        msg.abort();
                        return Reply::new(250, "2.0.0", format!("Ok: queued as {id}"));
                    }
                }
            } else {
                (content, Default::default())
            };
            // Signed last, over the content as queued (after header_checks and the
            // milters' edits), so nothing we do afterwards breaks the signature.
            let signature = match self.dkim_signature(&id, &content) {
                Ok(sig) => sig,
                Err(reply) => {
                    msg.abort();
                    return reply;
                }
            };
            signed = signature.is_some();
            let sealed = self.arc_resubmitted(&id, &txn.sender, signature.as_deref(), &content);
            let written = [sealed, signature]
                .iter()
                .flatten()
                .try_for_each(|head| msg.write(head.as_bytes()))
                .and_then(|()| msg.write(&content));
            if let Err(e) = written {
                log::warn!("{id}: queue file write error: {e}");
                msg.abort();
                return write_error(&e);
            }
            if edits.quarantine.is_some() {
                hold = true;
                self.log_milter(
                    &id,
                    "milter-hold",
                    "END-OF-MESSAGE",
                    "milter triggers HOLD action",
                    Some(&txn.sender),
                    Some(rcpt),
                );
            }
            if !edits.is_empty() {
                let mut env = new_envelope.unwrap_or_else(|| envelope.clone());
                edits.apply_to(&mut env);
                new_envelope = Some(env);
            }
        }
        let fields = scanner.hygiene_fields();
        if let Some(reply) = self.hygiene_check(&id, &fields, signed, txn, (stage, rcpt)) {
            msg.abort();
            return reply;
        }
        if let Some(mid) = scanner.message_id() {
            rostfix_maillog::cleanup!("{id}: message-id={mid}");
        }
        match msg.commit_as(hold, new_envelope.as_ref()) {
            Ok(queued) => {
                if !hold {
                    self.sink.committed(&queued);
                }
                // As message_size_limit counts it: our Received: header and the content.
                crate::metrics::accepted(size);
                Reply::new(250, "2.0.0", format!("Ok: queued as {queued}"))
            }
            Err(e) => {
                log::warn!("{id}: queue file commit failed: {e}");
                write_error(&e)
            }
        }
    }
}
