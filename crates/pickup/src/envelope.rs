//! The incoming/ envelope made from the records of a maildrop/ file: pure, so it is
//! tested without a queue. The file owner's uid is the only trusted identity (the
//! `uid` attribute was written by the submitter and is believed only when it agrees);
//! of the other attributes only those a local submitter may set are copied (see
//! attrs.rs), and pickup adds `uid` and `rewrite_context=local` itself. Sender and
//! recipients get swap_bangpath / allow_percent_hack ([`IncomingEnvelope::with_forms`])
//! and are qualified with `@$myorigin`; the Received: header Postfix's cleanup
//! adds to local submissions is built here too.

use crate::attrs::{check_attribute_from, valid_notify, AttrRefusal};
use crate::qualify::qualify;
use rostfix_queue::{Envelope, Recipient};

/// Longest sender, attribute or recipient record pickup reads from a maildrop file. A
/// recipient record holds two addresses of at most 320 bytes (rostdrop's limit) and a
/// NOTIFY value; Postfix's pickup bounds records by line_length_limit (2048) likewise.
pub const MAX_ENVELOPE_RECORD: u64 = 4096;
/// Most recipients one maildrop file may name: rostdrop refuses more.
pub const MAX_RECIPIENTS: usize = 10_000;
/// An arrival time further ahead than this is replaced by the pickup time, as Postfix's
/// pickup does with a maildrop file's future mtime.
const MAX_FUTURE_US: i64 = 2 * 3600 * 1_000_000;
/// How much of an ignored attribute's value a warning shows.
const SHOWN_VALUE: usize = 50;
/// Most warnings logged for one file: a file of a million forged attributes must not
/// become a million log lines.
const MAX_WARNINGS: usize = 20;

/// Why a maildrop envelope cannot be queued (the file goes to corrupt/).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("no recipients")]
    NoRecipients,
    #[error("more than {MAX_RECIPIENTS} recipients")]
    TooManyRecipients,
}

/// Collects the records of one maildrop file into the envelope pickup queues, noting
/// a warning for everything it drops.
#[derive(Debug)]
pub struct IncomingEnvelope {
    owner_uid: u32,
    /// The file is mail_owner's (the bus intake's): campaign_id and bus_id are kept.
    from_mail_owner: bool,
    myorigin: String,
    /// swap_bangpath, allow_percent_hack (off unless set).
    forms: rostfix_rewrite::AddressForms,
    env: Envelope,
    warnings: Vec<String>,
    /// Warnings beyond MAX_WARNINGS, only counted.
    suppressed: usize,
}

impl IncomingEnvelope {
    /// Starts an envelope for a file owned by `owner_uid`, with the attributes pickup
    /// vouches for.
    pub fn new(owner_uid: u32, myorigin: &str) -> Self {
        IncomingEnvelope {
            owner_uid,
            from_mail_owner: false,
            myorigin: myorigin.to_string(),
            forms: rostfix_rewrite::AddressForms::default(),
            env: Envelope {
                attrs: vec![
                    ("uid".into(), owner_uid.to_string()),
                    ("rewrite_context".into(), "local".into()),
                ],
                ..Envelope::default()
            },
            warnings: Vec::new(),
            suppressed: 0,
        }
    }

    fn warn(&mut self, text: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(text);
        } else {
            self.suppressed += 1;
        }
    }

    /// The file's arrival time, unless it lies in the future (then `now_us`).
    pub fn arrival(&mut self, claimed_us: i64, now_us: i64) {
        self.env.arrival_us = if claimed_us > now_us.saturating_add(MAX_FUTURE_US) {
            self.warn(format!(
                "uid={}: arrival time {} seconds in the future; using the current time",
                self.owner_uid,
                (claimed_us - now_us) / 1_000_000
            ));
            now_us
        } else {
            claimed_us
        };
    }

    /// Marks the file as mail_owner's own (its owner is pickup's uid): the bus
    /// intake's, whose `campaign_id` and `bus_id` attributes are then copied.
    pub fn owned_by_mail_owner(mut self, yes: bool) -> Self {
        self.from_mail_owner = yes;
        self
    }

    /// Turns `site!user` and `user%site` into `user@site` before qualification, as
    /// trivial-rewrite does in cleanup (otherwise `@$myorigin` would be appended).
    pub fn with_forms(mut self, forms: rostfix_rewrite::AddressForms) -> Self {
        self.forms = forms;
        self
    }

    /// `addr` in `@` form and qualified.
    fn canonical(&self, addr: &str) -> String {
        let swapped = self.forms.apply(addr);
        qualify(swapped.as_deref().unwrap_or(addr), &self.myorigin)
    }

    pub fn sender(&mut self, sender: &str) {
        self.env.sender = self.canonical(sender);
    }

    /// Copies the attribute if a local submitter may set it.
    pub fn attribute(&mut self, name: &str, value: &str) {
        let uid = self.owner_uid;
        let check =
            |name: &str, value: &str| check_attribute_from(name, value, self.from_mail_owner);
        if self.env.attr(name).is_some() && check(name, value).is_ok() {
            // One of each is all rostdrop writes; more would only grow the queue file.
            self.warn(format!(
                "uid={uid}: ignoring attribute record: {}={} (duplicate)",
                shown(name),
                shown(value)
            ));
            return;
        }
        match check(name, value) {
            Ok(()) => self.env.attrs.push((name.to_string(), value.to_string())),
            // What rostdrop itself writes: no news.
            Err(AttrRefusal::Trusted)
                if (name == "uid" && value == uid.to_string())
                    || (name == "rewrite_context" && value == "local") => {}
            Err(AttrRefusal::Trusted) if name == "uid" => self.warn(format!(
                "uid={uid}: uid attribute {} differs from the file owner; using the owner",
                shown(value)
            )),
            Err(why) => self.warn(format!(
                "uid={uid}: ignoring attribute record: {}={} ({why})",
                shown(name),
                shown(value)
            )),
        }
    }

    /// An attribute too long to read: ignored, named by its first bytes.
    pub fn oversized_attribute(&mut self, head: &str, len: u64) {
        self.warn(format!(
            "uid={}: ignoring attribute record of {len} bytes (over {MAX_ENVELOPE_RECORD}): {}...",
            self.owner_uid,
            shown(head)
        ));
    }

    /// Adds a pending recipient (done ones are skipped; an invalid NOTIFY is dropped).
    pub fn recipient(&mut self, r: &Recipient) -> Result<(), EnvelopeError> {
        if r.done {
            return Ok(());
        }
        if self.env.recipients.len() >= MAX_RECIPIENTS {
            return Err(EnvelopeError::TooManyRecipients);
        }
        let orig = if r.orig_address.is_empty() {
            &r.address
        } else {
            &r.orig_address
        };
        let notify = if valid_notify(&r.notify) {
            r.notify.clone()
        } else {
            self.warn(format!(
                "uid={}: ignoring invalid NOTIFY {} of recipient {}",
                self.owner_uid,
                shown(&r.notify),
                shown(&r.address)
            ));
            String::new()
        };
        self.env.recipients.push(Recipient {
            address: self.canonical(&r.address),
            orig_address: self.canonical(orig),
            notify,
            ..Recipient::default()
        });
        Ok(())
    }

    /// The finished envelope and the warnings to log.
    pub fn finish(mut self) -> Result<(Envelope, Vec<String>), EnvelopeError> {
        if self.env.recipients.is_empty() {
            return Err(EnvelopeError::NoRecipients);
        }
        if self.suppressed > 0 {
            self.warnings.push(format!(
                "uid={}: {} more warnings about this file not logged",
                self.owner_uid, self.suppressed
            ));
        }
        Ok((self.env, self.warnings))
    }
}

/// At most SHOWN_VALUE characters of a submitter's text, escaped for one log line.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(SHOWN_VALUE).collect();
    let more = if cut.len() < text.len() { "..." } else { "" };
    format!("{}{more}", cut.escape_default())
}

/// `Received: by HOST (Rostfix, from userid UID)\n\tid ID; DATE\n`, as Postfix writes
/// for mail picked up from maildrop.
pub fn received_header(myhostname: &str, uid: u32, queue_id: &str, date: &str) -> String {
    format!("Received: by {myhostname} (Rostfix, from userid {uid})\n\tid {queue_id}; {date}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt(address: &str, orig: &str, notify: &str) -> Recipient {
        Recipient {
            address: address.into(),
            orig_address: orig.into(),
            notify: notify.into(),
            ..Recipient::default()
        }
    }

    fn build(attrs: &[(&str, &str)]) -> (Envelope, Vec<String>) {
        let mut b = IncomingEnvelope::new(1000, "example.org");
        b.arrival(42, 100);
        b.sender("joe");
        for (n, v) in attrs {
            b.attribute(n, v);
        }
        b.recipient(&rcpt("amy", "amy", "")).unwrap();
        b.finish().unwrap()
    }

    #[test]
    fn campaign_id_only_from_mail_owners_files() {
        let attrs = [("campaign_id", "spring"), ("bus_id", "42")];
        let mut b = IncomingEnvelope::new(7, "example.org").owned_by_mail_owner(true);
        b.sender("news@example.org");
        for (n, v) in attrs {
            b.attribute(n, v);
        }
        b.recipient(&rcpt("amy@x.org", "amy@x.org", "")).unwrap();
        let (e, w) = b.finish().unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(e.attr("campaign_id"), Some("spring"));
        assert_eq!(e.attr("bus_id"), Some("42"));
        // The same file from a local user: ignored with the usual warning.
        let (e, w) = build(&attrs);
        assert_eq!(e.attr("campaign_id"), None);
        assert_eq!(e.attr("bus_id"), None);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("uid=1000: ignoring attribute record: campaign_id=spring"),
            "{w:?}"
        );
    }

    #[test]
    fn qualifies_and_keeps_arrival() {
        let mut b = IncomingEnvelope::new(1000, "example.org");
        b.arrival(42, 100);
        b.sender("joe");
        b.attribute("uid", "1000");
        b.attribute("rewrite_context", "local");
        b.recipient(&rcpt("amy", "amy", "")).unwrap();
        b.recipient(&rcpt("bob@x.org", "", "SUCCESS")).unwrap();
        let mut done = rcpt("old", "old", "");
        done.done = true;
        b.recipient(&done).unwrap();
        let (e, w) = b.finish().unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(e.sender, "joe@example.org");
        assert_eq!(e.arrival_us, 42);
        let addrs: Vec<_> = e
            .recipients
            .iter()
            .map(|r| {
                (
                    r.address.as_str(),
                    r.orig_address.as_str(),
                    r.notify.as_str(),
                )
            })
            .collect();
        assert_eq!(
            addrs,
            vec![
                ("amy@example.org", "amy@example.org", ""),
                ("bob@x.org", "bob@x.org", "SUCCESS")
            ]
        );
        assert_eq!(
            e.attrs,
            vec![
                ("uid".to_string(), "1000".to_string()),
                ("rewrite_context".to_string(), "local".to_string())
            ]
        );
    }

    #[test]
    fn owner_wins_over_claimed_uid() {
        let (e, w) = build(&[("uid", "0")]);
        assert_eq!(e.attr("uid"), Some("1000"));
        assert_eq!(e.attrs.iter().filter(|(n, _)| n == "uid").count(), 1);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("uid attribute 0 differs"), "{w:?}");
    }

    #[test]
    fn forged_attributes_are_dropped_with_a_warning() {
        let forged = [
            ("alias_expanded", "1"),
            ("client_address", "203.0.113.9"),
            ("client_name", "forged.example"),
            ("sasl_username", "admin"),
            ("protocol", "ESMTPA"),
            ("rewrite_context", "remote"),
            ("dsn_ret", "bogus"),
        ];
        let (e, w) = build(&forged);
        assert_eq!(
            e.attrs,
            vec![
                ("uid".to_string(), "1000".to_string()),
                ("rewrite_context".to_string(), "local".to_string())
            ]
        );
        assert_eq!(w.len(), forged.len());
        assert!(w[0].starts_with("uid=1000: ignoring attribute record: alias_expanded=1"));
        assert!(
            w[5].contains("rewrite_context=remote (set by pickup itself)"),
            "{w:?}"
        );
    }

    #[test]
    fn permitted_attributes_are_kept() {
        let (e, w) = build(&[
            ("body_type", "8BITMIME"),
            ("dsn_ret", "HDRS"),
            ("dsn_envid", "x1"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(e.attr("body_type"), Some("8BITMIME"));
        assert_eq!(e.attr("dsn_ret"), Some("HDRS"));
        assert_eq!(e.attr("dsn_envid"), Some("x1"));
    }

    #[test]
    fn warnings_are_short_and_one_line() {
        let mut b = IncomingEnvelope::new(7, "example.org");
        b.attribute("junk", &format!("a\nb{}", "x".repeat(10_000)));
        b.oversized_attribute("junk=xxxx", 8_000_000);
        b.recipient(&rcpt("amy", "amy", "EVERYTHING")).unwrap();
        let (e, w) = b.finish().unwrap();
        assert_eq!(e.recipients[0].notify, "");
        assert_eq!(w.len(), 3);
        for line in &w {
            assert!(!line.contains('\n') && line.len() < 300, "{line}");
        }
        assert!(w[0].contains("junk=a\\nbxxx"), "{}", w[0]);
        assert!(w[1].contains("of 8000000 bytes"), "{}", w[1]);
    }

    #[test]
    fn duplicates_and_floods_are_bounded() {
        let mut b = IncomingEnvelope::new(7, "example.org");
        for _ in 0..1000 {
            b.attribute("dsn_ret", "HDRS");
            b.attribute("client_name", "x");
        }
        b.recipient(&rcpt("amy", "", "")).unwrap();
        let (e, w) = b.finish().unwrap();
        assert_eq!(e.attrs.iter().filter(|(n, _)| n == "dsn_ret").count(), 1);
        assert_eq!(e.attrs.len(), 3);
        assert_eq!(w.len(), MAX_WARNINGS + 1);
        assert_eq!(
            w.last().map(String::as_str),
            Some("uid=7: 1979 more warnings about this file not logged")
        );
    }

    #[test]
    fn future_arrival_is_clamped() {
        let mut b = IncomingEnvelope::new(7, "example.org");
        b.arrival(i64::MAX, 1_000_000);
        b.recipient(&rcpt("amy", "", "")).unwrap();
        let (e, w) = b.finish().unwrap();
        assert_eq!(e.arrival_us, 1_000_000);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn recipient_limits() {
        let b = IncomingEnvelope::new(7, "example.org");
        assert_eq!(b.finish().unwrap_err(), EnvelopeError::NoRecipients);
        let mut b = IncomingEnvelope::new(7, "example.org");
        for _ in 0..MAX_RECIPIENTS {
            b.recipient(&rcpt("a", "", "")).unwrap();
        }
        assert_eq!(
            b.recipient(&rcpt("a", "", "")),
            Err(EnvelopeError::TooManyRecipients)
        );
    }

    #[test]
    fn null_sender_stays_null() {
        let mut b = IncomingEnvelope::new(5, "example.org");
        b.sender("");
        b.recipient(&rcpt("amy", "", "")).unwrap();
        let (e, _) = b.finish().unwrap();
        assert_eq!(e.sender, "");
    }

    #[test]
    fn received_shape() {
        assert_eq!(
            received_header("mail.example.org", 1000, "3F2A81C0D4E", "Thu, 1 Jan 1970 00:00:00 +0000"),
            "Received: by mail.example.org (Rostfix, from userid 1000)\n\tid 3F2A81C0D4E; Thu, 1 Jan 1970 00:00:00 +0000\n"
        );
    }

    #[test]
    fn bang_path_and_percent_forms_before_qualification() {
        let forms = rostfix_rewrite::AddressForms {
            swap_bangpath: true,
            percent_hack: true,
        };
        let mut b = IncomingEnvelope::new(7, "example.org").with_forms(forms);
        b.sender("site.test!joe");
        b.recipient(&rcpt("amy%other.test", "amy%other.test", ""))
            .unwrap();
        let (env, _) = b.finish().unwrap();
        assert_eq!(env.sender, "joe@site.test");
        assert_eq!(env.recipients[0].address, "amy@other.test");
        // Without the flags (swap_bangpath = no ...) they are local parts.
        let mut b = IncomingEnvelope::new(7, "example.org");
        b.sender("site.test!joe");
        b.recipient(&rcpt("amy%other.test", "", "")).unwrap();
        let (env, _) = b.finish().unwrap();
        assert_eq!(env.sender, "site.test!joe@example.org");
        assert_eq!(env.recipients[0].address, "amy%other.test@example.org");
    }
}
