//! One notice request: validate it, keep the recipients whose DSN NOTIFY asks for this
//! kind of notice, read the original message (headers, or all of it for RET=FULL within
//! bounce_size_limit), write the notice into incoming/ through the queue library, wake
//! qmgr, and say what happened.
//!
//! The null sender never gets a notice (a bounce is never bounced). A non-delivery
//! notice whose own sender is null (a bounce that bounced) becomes a double bounce to
//! 2bounce_notice_recipient when notify_classes lists `2bounce`, sent from
//! `$double_bounce_sender@$myhostname`; a failure of that one is discarded with a
//! warning, never sent again: no loop.

use crate::notice::{build, Notice, MAX_RETURNED_HEADERS};
use rostfix_proto::{BounceReply, BounceRequest, BouncedRecipient, NoticeKind};
use rostfix_queue::{
    open_requested, Envelope, QueueName, QueueWriter, Recipient, RequestedMessage,
};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// More recipients than any delivery request carries; a request beyond this is not ours.
const MAX_RECIPIENTS: usize = 10_000;

/// The main.cf values the bounce service uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceConfig {
    pub myhostname: String,
    /// bounce_size_limit: the largest original returned whole.
    pub size_limit: usize,
    /// notify_classes includes `2bounce`.
    pub notify_2bounce: bool,
    /// 2bounce_notice_recipient.
    pub double_bounce_recipient: String,
    /// `$double_bounce_sender@$myhostname`.
    pub double_bounce_sender: String,
}

/// True when a NOTIFY value asks for `kind` (Postfix's defaults when NOTIFY was not
/// given: failures and delays, no success notices).
pub fn wants(notify: &str, kind: NoticeKind) -> bool {
    let words: Vec<String> = notify
        .split(',')
        .map(|w| w.trim().to_ascii_uppercase())
        .filter(|w| !w.is_empty())
        .collect();
    let word = match kind {
        NoticeKind::Failure => "FAILURE",
        NoticeKind::Delay => "DELAY",
        NoticeKind::Success => "SUCCESS",
    };
    if words.is_empty() {
        return kind != NoticeKind::Success;
    }
    words.iter().any(|w| w == word)
}

/// What the request asks for, before any file is touched.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Write a notice about `queue` / queue_id to the sender.
    Notify(QueueName),
    /// The null sender's message failed: a double bounce to the postmaster.
    DoubleBounce(QueueName),
    /// Nothing to do (null sender, no recipients); the text is for the log.
    NotNeeded(&'static str),
    /// A malformed request.
    Refuse(String),
}

/// Decides what to do with a request (pure). Its queue name and id were checked when
/// it was decoded.
pub fn plan(req: &BounceRequest, cfg: &BounceConfig) -> Plan {
    let queue = req.queue_name;
    if req.recipients.len() > MAX_RECIPIENTS {
        return Plan::Refuse(format!("too many recipients: {}", req.recipients.len()));
    }
    if req.recipients.is_empty() {
        return Plan::NotNeeded("no failed recipients; no notice");
    }
    if req.sender.eq_ignore_ascii_case(&cfg.double_bounce_sender) {
        return Plan::NotNeeded("undeliverable postmaster notification discarded");
    }
    if req.sender.is_empty() {
        return match req.kind {
            NoticeKind::Failure if cfg.notify_2bounce => Plan::DoubleBounce(queue),
            NoticeKind::Failure => {
                Plan::NotNeeded("sender is null; no notice (2bounce not in notify_classes)")
            }
            _ => Plan::NotNeeded("sender is null; no notice"),
        };
    }
    if !req.recipients.iter().any(|r| wants(&r.notify, req.kind)) {
        return Plan::NotNeeded("no recipient asked for this notice (DSN NOTIFY)");
    }
    Plan::Notify(queue)
}

/// Handles one request. `root` is queue_directory ("." after confine).
pub fn handle(req: &BounceRequest, cfg: &BounceConfig, root: &Path) -> BounceReply {
    let id = &req.queue_id;
    let postmaster = match plan(req, cfg) {
        Plan::Notify(_) => false,
        Plan::DoubleBounce(_) => true,
        Plan::NotNeeded(why) => {
            log::info!("{id}: {why}");
            return BounceReply::NotNeeded;
        }
        Plan::Refuse(why) => {
            log::warn!("bad bounce request: {why}");
            return BounceReply::Failed(why);
        }
    };
    // A double bounce reports every recipient; a notice to the sender only those that
    // asked for it.
    let recipients: Vec<BouncedRecipient> = req
        .recipients
        .iter()
        .filter(|r| postmaster || wants(&r.notify, req.kind))
        .cloned()
        .collect();
    let (content, full, envid, requiretls) = match open_requested(root, req) {
        Ok(RequestedMessage {
            file: f,
            mut content,
        }) => {
            // RFC 8689 5: a notice about REQUIRETLS mail returns the headers only
            // (as if RET=HDRS, whatever RET said) and travels with REQUIRETLS itself.
            let requiretls = f.envelope.attr("requiretls") == Some("1");
            let ret_full = !requiretls
                && !f
                    .envelope
                    .attr("dsn_ret")
                    .is_some_and(|r| r.eq_ignore_ascii_case("HDRS"));
            let full =
                ret_full && req.kind == NoticeKind::Failure && content.len() <= cfg.size_limit;
            if !full {
                let keep = crate::notice::header_block(&content, MAX_RETURNED_HEADERS).len();
                content.truncate(keep);
            }
            let envid = f.envelope.attr("dsn_envid").map(str::to_string);
            (Some(content), full, envid, requiretls)
        }
        Err(e) => {
            log::warn!("{id}: cannot read the original message for the notice: {e}");
            (None, false, None, false)
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let (to, notice_sender) = if postmaster {
        (
            cfg.double_bounce_recipient.clone(),
            cfg.double_bounce_sender.clone(),
        )
    } else {
        (req.sender.clone(), String::new())
    };
    let mut attrs = vec![("rewrite_context".to_string(), "local".to_string())];
    if requiretls {
        attrs.push(("requiretls".to_string(), "1".to_string()));
    }
    let envelope = Envelope {
        sender: notice_sender,
        arrival_us: now.saturating_mul(1_000_000),
        attrs,
        recipients: vec![Recipient {
            address: to.clone(),
            orig_address: to.clone(),
            ..Recipient::default()
        }],
    };
    let mut writer = match QueueWriter::create(root, QueueName::Incoming, &envelope) {
        Ok(w) => w,
        Err(e) => {
            log::warn!("{id}: cannot create the notice: {e}");
            return BounceReply::Failed(e.to_string());
        }
    };
    let new_id = writer.queue_id().to_string();
    let notice = build(&Notice {
        myhostname: &cfg.myhostname,
        queue_id: &req.queue_id,
        new_id: &new_id,
        sender: &req.sender,
        arrival: req.arrival,
        now,
        recipients: &recipients,
        original_headers: content.as_deref(),
        kind: req.kind,
        to: &to,
        postmaster,
        envid: envid.as_deref(),
        full,
    });
    if let Err(e) = writer.write_content(&notice) {
        log::warn!("{id}: cannot write the notice: {e}");
        writer.abort();
        return BounceReply::Failed(e.to_string());
    }
    let new_id = match writer.commit() {
        Ok(n) => n,
        Err(e) => {
            log::warn!("{id}: cannot commit the notice: {e}");
            return BounceReply::Failed(e.to_string());
        }
    };
    let what = match (req.kind, postmaster) {
        (_, true) => "postmaster non-delivery notification",
        (NoticeKind::Failure, false) => "sender non-delivery notification",
        (NoticeKind::Delay, false) => "sender delay notification",
        (NoticeKind::Success, false) => "sender delivery status notification",
    };
    log::info!("{id}: {what}: {new_id}");
    if let Err(e) = rostfix_proto::wake_qmgr(root) {
        log::warn!("cannot wake qmgr: {e}; the notice waits for its next scan");
    }
    BounceReply::Queued(new_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_proto::BouncedRecipient;
    use rostfix_queue::QueueFile;

    fn req(id: &str, queue: &str, sender: &str, n: usize) -> BounceRequest {
        BounceRequest {
            queue_name: QueueName::parse(queue).expect("queue name"),
            queue_id: id.parse().expect("queue id"),
            sender: sender.into(),
            arrival: 0,
            recipients: (0..n)
                .map(|i| BouncedRecipient {
                    address: format!("u{i}@x"),
                    orig_address: String::new(),
                    dsn: "5.1.1".parse().expect("dsn"),
                    text: "no".into(),
                    relay: "local".into(),
                    notify: String::new(),
                    action: String::new(),
                })
                .collect(),
            kind: NoticeKind::Failure,
        }
    }

    fn cfg() -> BounceConfig {
        BounceConfig {
            myhostname: "mail.example.org".into(),
            size_limit: 50_000,
            notify_2bounce: true,
            double_bounce_recipient: "postmaster".into(),
            double_bounce_sender: "double-bounce@mail.example.org".into(),
        }
    }

    #[test]
    fn null_sender_and_empty_requests_need_no_notice() {
        // A failed bounce: a double bounce, if notify_classes has 2bounce.
        assert_eq!(
            plan(&req("3F2A81C0D4E", "active", "", 2), &cfg()),
            Plan::DoubleBounce(QueueName::Active)
        );
        let mut no2 = cfg();
        no2.notify_2bounce = false;
        assert!(matches!(
            plan(&req("3F2A81C0D4E", "active", "", 2), &no2),
            Plan::NotNeeded(_)
        ));
        // A failed double bounce: never again.
        assert!(matches!(
            plan(
                &req("3F2A81C0D4E", "active", "double-bounce@mail.example.org", 2),
                &cfg()
            ),
            Plan::NotNeeded(_)
        ));
        let mut delay = req("3F2A81C0D4E", "active", "", 2);
        delay.kind = NoticeKind::Delay;
        assert!(matches!(plan(&delay, &cfg()), Plan::NotNeeded(_)));
        assert!(matches!(
            plan(&req("3F2A81C0D4E", "active", "a@b", 0), &cfg()),
            Plan::NotNeeded(_)
        ));
    }

    #[test]
    fn notify_decides_who_is_reported() {
        assert!(wants("", NoticeKind::Failure));
        assert!(wants("", NoticeKind::Delay));
        assert!(!wants("", NoticeKind::Success));
        assert!(!wants("NEVER", NoticeKind::Failure));
        assert!(wants("success,delay", NoticeKind::Success));
        assert!(!wants("SUCCESS", NoticeKind::Failure));
        let mut r = req("3F2A81C0D4E", "active", "a@b", 2);
        for x in &mut r.recipients {
            x.notify = "NEVER".into();
        }
        assert!(matches!(plan(&r, &cfg()), Plan::NotNeeded(_)));
        r.recipients[1].notify = "FAILURE".into();
        assert_eq!(plan(&r, &cfg()), Plan::Notify(QueueName::Active));
    }

    #[test]
    fn huge_requests_are_refused() {
        // A bad queue name or id never gets here: the request does not decode (see
        // main.rs's serve_one test).
        assert!(matches!(
            plan(
                &req("3F2A81C0D4E", "active", "a@b", MAX_RECIPIENTS + 1),
                &cfg()
            ),
            Plan::Refuse(_)
        ));
    }

    /// True when the queue library is implemented (skip loudly otherwise).
    #[test]
    fn notice_is_queued_for_the_sender_and_qmgr_is_woken() {
        let root = std::env::temp_dir().join(format!("bounce-h-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["incoming", "active", "public"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        let qmgr = std::os::unix::net::UnixListener::bind(root.join("public/qmgr")).expect("bind");
        let env = Envelope {
            sender: "alice@example.org".into(),
            arrival_us: 1_700_000_000_000_000,
            attrs: vec![],
            recipients: vec![Recipient {
                address: "u0@x".into(),
                ..Recipient::default()
            }],
        };
        let mut w = QueueWriter::create(&root, QueueName::Incoming, &env).expect("create");
        w.write_content(b"Subject: original\nX-Mine: 1\n\nsecret body\n")
            .expect("write");
        let orig_id = w.commit().expect("commit");
        rostfix_queue::move_file(&root, QueueName::Incoming, QueueName::Active, &orig_id)
            .expect("move");

        let mut r = req(&orig_id, "active", "alice@example.org", 1);
        r.arrival = 1_700_000_000;
        let reply = handle(&r, &cfg(), &root);
        let BounceReply::Queued(new_id) = reply else {
            panic!("not queued: {reply:?}")
        };

        let qf = QueueFile::open(&root, QueueName::Incoming, &new_id).expect("notice file");
        assert_eq!(qf.envelope.sender, "");
        assert_eq!(qf.envelope.attr("rewrite_context"), Some("local"));
        let rcpts: Vec<&str> = qf
            .envelope
            .recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(rcpts, ["alice@example.org"]);
        let content = qf.read_content().expect("content");
        let parsed = mailparse::parse_mail(&content).expect("parses");
        assert_eq!(parsed.subparts.len(), 3);
        let returned =
            String::from_utf8(parsed.subparts[2].get_body_raw().expect("part 3")).expect("utf8");
        assert!(returned.contains("Subject: original"));
        // No RET given: the whole message comes back (Postfix's default), it is small.
        assert_eq!(parsed.subparts[2].ctype.mimetype, "message/rfc822");
        assert!(returned.contains("secret body"));

        let (mut s, _) = qmgr.accept().expect("qmgr was woken");
        let t: rostfix_proto::Trigger = rostfix_proto::read_message(&mut s).expect("trigger");
        assert_eq!(t, rostfix_proto::Trigger::Wakeup);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_requiretls_message_is_returned_headers_only_with_requiretls() {
        let root = std::env::temp_dir().join(format!("bounce-rt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["incoming", "active", "public"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        let _qmgr = std::os::unix::net::UnixListener::bind(root.join("public/qmgr")).expect("bind");
        let env = Envelope {
            sender: "alice@example.org".into(),
            arrival_us: 1_700_000_000_000_000,
            // RET=FULL asked for, REQUIRETLS overrides it.
            attrs: vec![
                ("dsn_ret".into(), "FULL".into()),
                ("requiretls".into(), "1".into()),
            ],
            recipients: vec![Recipient {
                address: "u0@x".into(),
                ..Recipient::default()
            }],
        };
        let mut w = QueueWriter::create(&root, QueueName::Incoming, &env).expect("create");
        w.write_content(b"Subject: private\n\nsecret body\n")
            .expect("write");
        let orig_id = w.commit().expect("commit");
        rostfix_queue::move_file(&root, QueueName::Incoming, QueueName::Active, &orig_id)
            .expect("move");
        let reply = handle(
            &req(&orig_id, "active", "alice@example.org", 1),
            &cfg(),
            &root,
        );
        let BounceReply::Queued(new_id) = reply else {
            panic!("not queued: {reply:?}")
        };
        let qf = QueueFile::open(&root, QueueName::Incoming, &new_id).expect("notice file");
        assert_eq!(qf.envelope.attr("requiretls"), Some("1"));
        let content = qf.read_content().expect("content");
        let text = String::from_utf8_lossy(&content);
        assert!(text.contains("Subject: private"), "{text}");
        assert!(!text.contains("secret body"), "{text}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
