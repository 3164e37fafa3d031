//! The access-table and policy-server actions that decide what becomes of the whole
//! message rather than of one command (access(5): HOLD, DISCARD, FILTER, REDIRECT,
//! BCC), as Postfix's smtpd_check.c delegates them to cleanup: a hit is checked and
//! logged (`NOQUEUE: hold: RCPT from C: <a>: Sender address triggers HOLD action;
//! from=<s> to=<r> proto=P helo=<h>`), remembered for the transaction, and applied
//! when the message is queued (session/receive.rs merges them with the content
//! inspection's outcome). DISCARD is also a permit that ends every later restriction
//! of the transaction.
//!
//! Postfix refuses these actions where no queue file follows: with smtpd_proxy_filter
//! (the before-queue filter's smtpd queues the mail) and outside a mail transaction
//! (client and HELO restrictions under smtpd_delay_reject = no). So do we, with its
//! warnings.

use super::config::RestrictionConfig;
use super::eval::{Facts, Note, Step};
use rostfix_inspect::Outcome;

/// Which of the message-level actions a table asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Hold,
    Discard,
    Filter,
    Redirect,
    Bcc,
}

impl QueueKind {
    /// The table word (upper case, as access(5) writes it).
    pub fn word(self) -> &'static str {
        match self {
            QueueKind::Hold => "HOLD",
            QueueKind::Discard => "DISCARD",
            QueueKind::Filter => "FILTER",
            QueueKind::Redirect => "REDIRECT",
            QueueKind::Bcc => "BCC",
        }
    }

    /// The table word, if `word` is one (any case).
    pub fn from_word(word: &str) -> Option<QueueKind> {
        Some(match word.to_ascii_uppercase().as_str() {
            "HOLD" => QueueKind::Hold,
            "DISCARD" => QueueKind::Discard,
            "FILTER" => QueueKind::Filter,
            "REDIRECT" => QueueKind::Redirect,
            "BCC" => QueueKind::Bcc,
            _ => return None,
        })
    }
}

/// An accepted action with its argument: what the transaction remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueAction {
    Hold,
    Discard,
    /// `transport:destination`.
    Filter(String),
    /// `user@domain`.
    Redirect(String),
    /// `user@domain`.
    Bcc(String),
}

impl QueueAction {
    /// The word of the log line (`NOQUEUE: hold: ...`).
    pub fn log_word(&self) -> &'static str {
        match self {
            QueueAction::Hold => "hold",
            QueueAction::Discard => "discard",
            QueueAction::Filter(_) => "filter",
            QueueAction::Redirect(_) => "redirect",
            QueueAction::Bcc(_) => "bcc",
        }
    }
}

/// A table hit to log and remember: the action and the text of its log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triggered {
    pub action: QueueAction,
    pub text: String,
}

/// What the restrictions of one transaction asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueActions {
    pub hold: bool,
    pub discard: bool,
    pub filter: Option<String>,
    pub redirect: Option<String>,
    pub bcc: Vec<String>,
}

impl QueueActions {
    /// Remembers `action`; false when it changes nothing (a second HOLD), so the
    /// caller logs it once, as Postfix does.
    pub fn record(&mut self, action: &QueueAction) -> bool {
        match action {
            QueueAction::Hold if self.hold => return false,
            QueueAction::Hold => self.hold = true,
            QueueAction::Discard => self.discard = true,
            QueueAction::Filter(t) => self.filter = Some(t.clone()),
            QueueAction::Redirect(a) => self.redirect = Some(a.clone()),
            QueueAction::Bcc(a) => self.bcc.push(a.clone()),
        }
        true
    }

    /// Folds these into the content inspection's outcome. The inspection comes later
    /// in Postfix (cleanup reads smtpd's records before the headers), so its FILTER
    /// and REDIRECT win over ours: the last one seen decides.
    pub fn merge_into(&self, outcome: &mut Outcome) {
        outcome.hold |= self.hold;
        outcome.discard |= self.discard;
        if outcome.filter.is_none() {
            outcome.filter.clone_from(&self.filter);
        }
        if outcome.redirect.is_none() {
            outcome.redirect.clone_from(&self.redirect);
        }
        let mut bcc = self.bcc.clone();
        bcc.append(&mut outcome.bcc);
        outcome.bcc = bcc;
    }
}

/// Evaluates a table's `KIND text` for `<what>` of `class` found in `table`
/// (`datum` is the whole table value, for warnings).
#[allow(clippy::too_many_arguments)]
pub(super) fn step(
    kind: QueueKind,
    text: &str,
    datum: &str,
    what: &str,
    class: &str,
    table: &str,
    f: &Facts<'_>,
    rc: &RestrictionConfig,
    notes: &mut Vec<Note>,
) -> Step {
    let word = kind.word();
    if rc.proxy_filter {
        log::warn!(
            "access table {table}: with smtpd_proxy_filter specified, action {word} is unavailable"
        );
        return Step::Go;
    }
    if f.sender.is_none() {
        log::warn!(
            "access table {table}: with smtpd_delay_reject=no, action {word} is always skipped in client or helo restrictions"
        );
        return Step::Go;
    }
    let or = |default: &str| {
        if text.is_empty() {
            default.to_string()
        } else {
            text.to_string()
        }
    };
    let (action, text) = match kind {
        QueueKind::Hold => (
            QueueAction::Hold,
            format!("<{what}>: {class} {}", or("triggers HOLD action")),
        ),
        QueueKind::Discard => (
            QueueAction::Discard,
            format!("<{what}>: {class} {}", or("triggers DISCARD action")),
        ),
        QueueKind::Filter => {
            if text.is_empty() {
                log::warn!("access table {table} entry \"{datum}\" has FILTER entry without value");
                return Step::Go;
            }
            if !rostfix_inspect::action::is_filter_target(text) {
                log::warn!("access table {table} entry \"{datum}\" requires transport:destination");
                return Step::Go;
            }
            (
                QueueAction::Filter(text.to_string()),
                format!("<{what}>: {class} triggers FILTER {text}"),
            )
        }
        QueueKind::Redirect | QueueKind::Bcc => {
            if !text.contains('@') || text.contains(char::is_whitespace) {
                log::warn!("access table {table} entry \"{datum}\" requires user@domain target");
                return Step::Go;
            }
            let action = if kind == QueueKind::Redirect {
                QueueAction::Redirect(text.to_string())
            } else {
                QueueAction::Bcc(text.to_string())
            };
            (action, format!("<{what}>: {class} triggers {word} {text}"))
        }
    };
    let discard = action == QueueAction::Discard;
    notes.push(Note::Queue(Triggered { action, text }));
    if discard {
        // Postfix: DISCARD is an OK that also skips what is left of the restrictions.
        Step::Permit
    } else {
        Step::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(QueueKind::from_word("hold"), Some(QueueKind::Hold));
        assert_eq!(QueueKind::from_word("Bcc"), Some(QueueKind::Bcc));
        assert_eq!(QueueKind::from_word("reject"), None);
        assert_eq!(QueueKind::Filter.word(), "FILTER");
    }

    #[test]
    fn record_keeps_one_hold_and_the_last_target() {
        let mut q = QueueActions::default();
        assert!(q.record(&QueueAction::Hold));
        assert!(!q.record(&QueueAction::Hold));
        q.record(&QueueAction::Redirect("a@x".into()));
        q.record(&QueueAction::Redirect("b@x".into()));
        q.record(&QueueAction::Filter("scan:[127.0.0.1]:1".into()));
        q.record(&QueueAction::Bcc("c@x".into()));
        assert_eq!(q.redirect.as_deref(), Some("b@x"));
        assert_eq!(q.bcc, ["c@x"]);
        assert!(q.hold && !q.discard);
    }

    #[test]
    fn inspection_results_win_over_the_restrictions() {
        let q = QueueActions {
            hold: true,
            discard: false,
            filter: Some("a:b".into()),
            redirect: Some("r@x".into()),
            bcc: vec!["b1@x".into()],
        };
        let mut o = Outcome {
            filter: Some("c:d".into()),
            bcc: vec!["b2@x".into()],
            ..Outcome::default()
        };
        q.merge_into(&mut o);
        assert!(o.hold);
        assert_eq!(o.filter.as_deref(), Some("c:d"));
        assert_eq!(o.redirect.as_deref(), Some("r@x"));
        assert_eq!(o.bcc, ["b1@x", "b2@x"]);
    }
}
