//! Runs the content tables over a message as it streams to its queue file: each
//! logical header goes to the table family the splitter gave it, each body line (within
//! body_checks_size_limit of its segment) to body_checks. The first table of a list
//! that has an answer decides. Actions are applied as cleanup(8) applies them: IGNORE,
//! PREPEND and REPLACE change what is written; REJECT, DEFER and DISCARD stop the
//! inspection (nothing later can change the fate); the rest are collected in the
//! [`Outcome`]. Every action is logged in Postfix's shape:
//! `ID: reject: header Subject: x from name[addr]; from=<s> to=<r> proto=ESMTP
//! helo=<h>: 5.7.1 text`.
//!
//! A header rewriter ([`HeaderRewrite`], set with [`Inspector::with_header_rewrite`])
//! is applied to each primary header after the header tables, as cleanup rewrites
//! address headers after header_checks (crates/rewrite does the rewriting; this crate
//! only calls it, so neither depends on the other).

use crate::action::{self, Action};
use crate::mime::{Event, HeaderKind, Splitter};
use crate::outcome::{LogContext, Outcome};
use crate::settings::ContentChecks;
use rostfix_maps::Map;
use std::sync::Arc;

/// Bytes of the inspected text quoted in a log line (Postfix's `%.200s`).
const LOGGED_CONTENT: usize = 200;

/// Where a table hit happened, for the log line.
#[derive(Debug, Clone, Copy)]
enum Class {
    Header,
    Body,
}

impl Class {
    fn word(self) -> &'static str {
        match self {
            Class::Header => "header",
            Class::Body => "body",
        }
    }
}

/// What becomes of the current header or line.
enum Edit {
    Keep,
    Drop,
    Replace(String),
    Prepend(String),
}

/// Rewrites one primary header (`Name: value`, folding included): `Ok(None)` keeps
/// it, `Err(reason)` is a table lookup problem (the message is deferred).
pub type HeaderRewrite = Box<dyn FnMut(&str) -> Result<Option<String>, String> + Send>;

/// Header size limit used when only a rewriter needs headers split out.
const REWRITE_HEADER_CAP: usize = 102_400;

/// The decisions part, apart from the splitter so both can be borrowed at once.
struct Judge {
    checks: Option<Arc<ContentChecks>>,
    ctx: LogContext,
    outcome: Outcome,
    /// Still inspecting (no REJECT, DEFER or DISCARD yet).
    active: bool,
    /// Address header rewriting (canonical, masquerading), when enabled.
    rewrite: Option<HeaderRewrite>,
}

/// A message's content inspection.
pub struct Inspector {
    splitter: Splitter,
    judge: Judge,
}

impl Inspector {
    /// `checks` None (or without tables): the content passes untouched.
    pub fn new(checks: Option<Arc<ContentChecks>>, ctx: LogContext) -> Inspector {
        let checks = checks.filter(|c| !c.is_empty());
        let splitter = match &checks {
            Some(c) => Splitter::new(c.mime_processing, c.header_cap),
            None => Splitter::new(false, 1),
        };
        Inspector {
            splitter,
            judge: Judge {
                active: checks.is_some(),
                checks,
                ctx,
                outcome: Outcome::default(),
                rewrite: None,
            },
        }
    }

    /// Adds address header rewriting; without content tables the headers are then
    /// split out for it alone (MIME processing on, as Postfix's default).
    pub fn with_header_rewrite(mut self, rewrite: HeaderRewrite) -> Inspector {
        if self.judge.checks.is_none() {
            self.splitter = Splitter::new(true, REWRITE_HEADER_CAP);
        }
        self.judge.rewrite = Some(rewrite);
        self
    }

    /// Neither tables nor a rewriter: the content passes as it is.
    fn passthrough(&self) -> bool {
        self.judge.checks.is_none() && self.judge.rewrite.is_none()
    }

    /// Takes stored content (LF line endings); appends what to write to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.passthrough() {
            out.extend_from_slice(data);
            return;
        }
        let judge = &mut self.judge;
        self.splitter.feed(data, &mut |e| judge.event(e, out));
    }

    /// The end of the content: the rest to write, and the decisions.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Outcome {
        if !self.passthrough() {
            let judge = &mut self.judge;
            self.splitter.finish(&mut |e| judge.event(e, out));
        }
        self.judge.outcome
    }

    /// The decisions so far (a REJECT may be known before the end).
    pub fn outcome(&self) -> &Outcome {
        &self.judge.outcome
    }
}

impl Judge {
    fn event(&mut self, event: Event<'_>, out: &mut Vec<u8>) {
        match event {
            Event::Header { kind, text, eol } => {
                let edit = self.inspect(Class::Header, kind_tables(kind), text);
                let edit = match kind {
                    HeaderKind::Primary => self.rewrite_header(edit, text),
                    _ => edit,
                };
                emit(edit, text, eol, out);
            }
            Event::Body { text, eol, offset } => {
                let in_limit = self
                    .checks
                    .as_ref()
                    .is_some_and(|c| offset < c.body_size_limit);
                let edit = if in_limit {
                    self.inspect(Class::Body, |c| &c.body, text)
                } else {
                    Edit::Keep
                };
                emit(edit, text, eol, out);
            }
            Event::Separator => out.push(b'\n'),
            Event::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// Applies the header rewriter to what the header tables left of a header.
    fn rewrite_header(&mut self, edit: Edit, text: &[u8]) -> Edit {
        let Some(rewrite) = self.rewrite.as_mut() else {
            return edit;
        };
        let original = String::from_utf8_lossy(text);
        let (subject, rebuild): (&str, fn(String) -> Edit) = match &edit {
            Edit::Keep => (original.as_ref(), Edit::Replace),
            Edit::Replace(new) => (new.as_str(), Edit::Replace),
            Edit::Drop | Edit::Prepend(_) => return edit,
        };
        match rewrite(subject) {
            Ok(Some(new)) => rebuild(new),
            Ok(None) => edit,
            Err(e) => {
                log::warn!(
                    "{}: {e} -- message not accepted, try again later",
                    self.ctx.queue_id
                );
                self.outcome.reject.get_or_insert_with(|| {
                    "4.3.0 Error: address rewriting table lookup problem".into()
                });
                edit
            }
        }
    }

    fn inspect(
        &mut self,
        class: Class,
        tables: fn(&ContentChecks) -> &Vec<Box<dyn Map>>,
        text: &[u8],
    ) -> Edit {
        if !self.active {
            return Edit::Keep;
        }
        let Some(checks) = self.checks.clone() else {
            return Edit::Keep;
        };
        let key = String::from_utf8_lossy(text);
        for map in tables(&checks) {
            match map.lookup(&key) {
                Ok(Some(value)) => return self.act(class, map.spec(), &value, &key),
                Ok(None) => {}
                Err(e) => {
                    log::warn!(
                        "{}: {} map lookup problem -- message not accepted, try again later: {e}",
                        self.ctx.queue_id,
                        map.spec()
                    );
                    self.outcome.reject =
                        Some("4.3.0 Error: content inspection table lookup problem".into());
                    self.active = false;
                    return Edit::Keep;
                }
            }
        }
        Edit::Keep
    }

    fn act(&mut self, class: Class, spec: &str, value: &str, content: &str) -> Edit {
        let id = &self.ctx.queue_id;
        match action::parse(value) {
            Action::Reject(text) => {
                let reason = action::with_dsn("5.7.1", &text, "message content rejected");
                self.stop_with(class, content, reason);
                Edit::Keep
            }
            Action::Defer(text) => {
                let reason = action::with_dsn("4.7.1", &text, "service unavailable");
                self.stop_with(class, content, reason);
                Edit::Keep
            }
            Action::Warn(text) => {
                self.log("warning", class, content, &text);
                Edit::Keep
            }
            Action::Info(text) => {
                self.log("info", class, content, &text);
                Edit::Keep
            }
            Action::Ignore => Edit::Drop,
            Action::Hold(text) => {
                self.log("hold", class, content, &text);
                self.outcome.hold = true;
                Edit::Keep
            }
            Action::Discard(text) => {
                self.log("discard", class, content, &text);
                self.outcome.discard = true;
                self.active = false;
                Edit::Keep
            }
            Action::Redirect(text) => {
                if !text.contains('@') {
                    log::warn!(
                        "{id}: bad REDIRECT target \"{text}\" in {spec} map -- need user@domain"
                    );
                    return Edit::Keep;
                }
                self.log("redirect", class, content, &text);
                self.outcome.redirect = Some(text);
                Edit::Keep
            }
            Action::Filter(text) => {
                if !action::is_filter_target(&text) {
                    log::warn!("{id}: bad FILTER action \"{text}\" in {spec} map -- need transport:destination");
                    return Edit::Keep;
                }
                self.log("filter", class, content, &text);
                self.outcome.filter = Some(text);
                Edit::Keep
            }
            Action::Bcc(text) => {
                if !text.contains('@') {
                    log::warn!(
                        "{id}: bad BCC address \"{text}\" in {spec} map -- need user@domain"
                    );
                } else {
                    self.outcome.bcc.push(text);
                }
                Edit::Keep
            }
            Action::Prepend(text) | Action::Replace(text)
                if matches!(class, Class::Header) && !action::is_header_text(&text) =>
            {
                log::warn!(
                    "{id}: bad header text \"{text}\" in {spec} map -- need \"headername: headervalue\""
                );
                Edit::Keep
            }
            Action::Prepend(text) => {
                self.log("prepend", class, content, &text);
                Edit::Prepend(text)
            }
            Action::Replace(text) => {
                self.log("replace", class, content, &text);
                Edit::Replace(text)
            }
            Action::None => Edit::Keep,
            Action::Unknown(word) => {
                log::warn!("{id}: unknown command in {spec} map: {word}");
                Edit::Keep
            }
        }
    }

    /// REJECT and DEFER: the message will not be queued; nothing more is inspected.
    fn stop_with(&mut self, class: Class, content: &str, reason: String) {
        self.log("reject", class, content, &reason);
        self.outcome.reject = Some(reason);
        self.active = false;
    }

    fn log(&self, action: &str, class: Class, content: &str, text: &str) {
        let c = &self.ctx;
        let mut line = format!(
            "{}: {action}: {} {} from {};",
            c.queue_id,
            class.word(),
            printable(content),
            c.origin
        );
        line.push_str(&format!(" from=<{}>", c.sender));
        if let Some(r) = &c.recipient {
            line.push_str(&format!(" to=<{r}>"));
        }
        if let Some(p) = &c.proto {
            line.push_str(&format!(" proto={p}"));
        }
        if let Some(h) = &c.helo {
            line.push_str(&format!(" helo=<{h}>"));
        }
        if !text.is_empty() {
            line.push_str(&format!(": {text}"));
        }
        // Postfix's cleanup writes these lines: log them in its name.
        rostfix_maillog::cleanup!("{line}");
    }
}

/// The tables of a header family.
fn kind_tables(kind: HeaderKind) -> fn(&ContentChecks) -> &Vec<Box<dyn Map>> {
    match kind {
        HeaderKind::Primary => |c| &c.header,
        HeaderKind::Mime => |c| &c.mime,
        HeaderKind::Nested => |c| &c.nested,
    }
}

/// Writes the header or line as the action left it.
fn emit(edit: Edit, text: &[u8], eol: bool, out: &mut Vec<u8>) {
    let line = |t: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(t);
        if eol {
            out.push(b'\n');
        }
    };
    match edit {
        Edit::Keep => line(text, out),
        Edit::Drop => {}
        Edit::Replace(new) => line(new.as_bytes(), out),
        Edit::Prepend(new) => {
            out.extend_from_slice(new.as_bytes());
            out.push(b'\n');
            line(text, out);
        }
    }
}

/// The first 200 bytes, control characters (folding included) shown as `?` as
/// Postfix's logging shows them.
fn printable(content: &str) -> String {
    let mut end = content.len().min(LOGGED_CONTENT);
    while !content.is_char_boundary(end) {
        end -= 1;
    }
    content[..end]
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
#[path = "inspector_tests.rs"]
mod tests;
