//! What the checks decided about a message, and what the log lines name it by.

use rostfix_queue::{Envelope, Recipient};

/// The message's identity for the action log lines (`ID: reject: header ... from
/// ORIGIN; from=<S> to=<R> proto=P helo=<H>: TEXT`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogContext {
    pub queue_id: String,
    /// `name[addr]` for SMTP, `local` for pickup.
    pub origin: String,
    pub sender: String,
    /// The first recipient, when there is one.
    pub recipient: Option<String>,
    pub proto: Option<String>,
    pub helo: Option<String>,
}

/// Everything the actions asked for, gathered over the whole message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// REJECT or DEFER (or a failed lookup): the reason, with its DSN code first.
    pub reject: Option<String>,
    pub discard: bool,
    pub hold: bool,
    /// The last REDIRECT's address.
    pub redirect: Option<String>,
    /// The last FILTER's `transport:destination`.
    pub filter: Option<String>,
    pub bcc: Vec<String>,
}

/// What the writer does with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Do not queue; answer with this SMTP code and `dsn text`.
    Reject {
        code: u16,
        dsn: String,
        text: String,
    },
    /// Do not queue, but answer as if queued (the message is discarded).
    Discard,
    /// Queue it, into hold/ when `hold`.
    Queue { hold: bool },
}

/// The queue attribute naming the after-queue content filter qmgr routes through
/// (one definition, shared with content_filter: crates/queue/src/filter.rs).
pub use rostfix_queue::FILTER_ATTR;

impl Outcome {
    /// The writer's decision: a refusal wins over a discard, which wins over hold.
    pub fn verdict(&self) -> Verdict {
        if let Some(reason) = &self.reject {
            let (dsn, text) = reason.split_once(' ').unwrap_or((reason.as_str(), ""));
            // Postfix's cleanup status details: 451 for temporary, 550 for permanent.
            let code = if dsn.starts_with('4') { 451 } else { 550 };
            return Verdict::Reject {
                code,
                dsn: dsn.to_string(),
                text: text.to_string(),
            };
        }
        if self.discard {
            return Verdict::Discard;
        }
        Verdict::Queue { hold: self.hold }
    }

    /// The envelope to queue, when REDIRECT, FILTER or BCC change it.
    pub fn rewrite_envelope(&self, original: &Envelope) -> Option<Envelope> {
        if self.redirect.is_none() && self.filter.is_none() && self.bcc.is_empty() {
            return None;
        }
        let mut env = original.clone();
        if let Some(to) = &self.redirect {
            // Every recipient is replaced by the one address, delivered once; the first
            // original recipient stays as its original address for DSN.
            let orig = env
                .recipients
                .first()
                .map(|r| r.orig_address.clone())
                .unwrap_or_else(|| to.clone());
            env.recipients = vec![Recipient {
                address: to.clone(),
                orig_address: orig,
                ..Recipient::default()
            }];
        }
        if let Some(filter) = &self.filter {
            env.attrs.retain(|(name, _)| name != FILTER_ATTR);
            env.attrs.push((FILTER_ATTR.to_string(), filter.clone()));
        }
        for bcc in &self.bcc {
            if !env.recipients.iter().any(|r| &r.address == bcc) {
                env.recipients.push(Recipient {
                    address: bcc.clone(),
                    orig_address: bcc.clone(),
                    ..Recipient::default()
                });
            }
        }
        Some(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Envelope {
        Envelope {
            sender: "s@example".into(),
            arrival_us: 1,
            attrs: vec![("filter".into(), "old:x".into())],
            recipients: vec![
                Recipient {
                    address: "a@example".into(),
                    orig_address: "A@example".into(),
                    ..Recipient::default()
                },
                Recipient {
                    address: "b@example".into(),
                    orig_address: "b@example".into(),
                    ..Recipient::default()
                },
            ],
        }
    }

    #[test]
    fn verdicts_in_order_of_precedence() {
        let mut o = Outcome {
            hold: true,
            discard: true,
            ..Outcome::default()
        };
        assert_eq!(o.verdict(), Verdict::Discard);
        o.reject = Some("4.7.1 later".into());
        assert_eq!(
            o.verdict(),
            Verdict::Reject {
                code: 451,
                dsn: "4.7.1".into(),
                text: "later".into()
            }
        );
        o.reject = Some("5.7.1 no".into());
        assert!(matches!(o.verdict(), Verdict::Reject { code: 550, .. }));
        assert_eq!(Outcome::default().verdict(), Verdict::Queue { hold: false });
    }

    #[test]
    fn redirect_filter_and_bcc_rewrite_the_envelope() {
        assert_eq!(Outcome::default().rewrite_envelope(&env()), None);
        let o = Outcome {
            redirect: Some("r@example".into()),
            filter: Some("smtp:[127.0.0.1]:10025".into()),
            bcc: vec!["c@example".into()],
            ..Outcome::default()
        };
        let new = o.rewrite_envelope(&env()).unwrap_or_default();
        let addrs: Vec<_> = new.recipients.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(addrs, ["r@example", "c@example"]);
        assert_eq!(new.recipients[0].orig_address, "A@example");
        assert_eq!(new.attr("filter"), Some("smtp:[127.0.0.1]:10025"));
        assert_eq!(new.attrs.len(), 1);
    }
}
