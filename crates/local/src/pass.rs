//! Postfix's deliver_pass: local hands one recipient to another delivery agent
//! (`mailbox_transport = lmtp:unix:private/dovecot-lmtp`, mailbox_transport_maps,
//! fallback_transport, fallback_transport_maps), after alias and `.forward`
//! expansion, the way Postfix's local(8) does for a Dovecot LMTP mailbox store.
//!
//! local sends the agent at `private/TRANSPORT` the same delivery request qmgr would,
//! naming this message and one recipient whose offset is 0: no recipient record lives
//! at offset 0 (the version record does), which tells the agent that the requester
//! (local) records the outcome in the queue file, because the queue file's recipient
//! may have expanded into several destinations. The agent logs its own `to=` line
//! (`relay=...[private/dovecot-lmtp]`), as Postfix's lmtp does; local logs nothing
//! for the passed destination and folds the agent's verdict into the recipient's.

use crate::failure::Failure;
use rostfix_proto::{
    connect_unix, read_message, write_message, DeliveryRecipient, DeliveryReply, DeliveryRequest,
    DeliveryStatus,
};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The largest reply accepted from the agent.
const MAX_REPLY: u64 = 1024 * 1024;

/// How long the agent may take to connect and to answer: a delivery to an LMTP server
/// includes the message transfer, so this is the delivery's own time limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1000);

/// The request being delivered, for the requests local passes on.
#[derive(Debug, Clone)]
pub struct PassContext {
    /// A copy of qmgr's request, recipients removed.
    pub request: DeliveryRequest,
    /// queue_directory ("." after confinement): the agent's socket is under it.
    pub root: PathBuf,
}

impl PassContext {
    pub fn new(req: &DeliveryRequest, root: &Path) -> PassContext {
        let mut request = req.clone();
        request.recipients.clear();
        PassContext {
            request,
            root: root.to_path_buf(),
        }
    }
}

/// `transport:nexthop` split at the first colon (`lmtp:unix:private/dovecot-lmtp` ->
/// `lmtp`, `unix:private/dovecot-lmtp`). None for an empty or malformed transport.
pub fn split_transport(spec: &str) -> Option<(&str, &str)> {
    let spec = spec.trim();
    let (transport, nexthop) = spec.split_once(':').unwrap_or((spec, ""));
    let valid = !transport.is_empty()
        && transport
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    valid.then_some((transport, nexthop))
}

/// Hands `address` (orig: `orig_address`) to the transport `spec` names. Ok: the
/// agent delivered it (the text is its status text).
pub fn pass(
    cx: &PassContext,
    spec: &str,
    address: &str,
    orig_address: &str,
) -> Result<String, Failure> {
    let Some((transport, nexthop)) = split_transport(spec) else {
        return Err(Failure::defer(
            "4.3.5",
            format!("mail transport unavailable: bad transport \"{spec}\""),
        ));
    };
    let mut request = cx.request.clone();
    if !nexthop.is_empty() {
        request.nexthop = nexthop.to_string();
    }
    request.recipients = vec![DeliveryRecipient {
        offset: 0,
        address: address.to_string(),
        orig_address: orig_address.to_string(),
    }];
    let path = cx.root.join("private").join(transport);
    let unavailable = |e: String| {
        Failure::defer(
            "4.3.0",
            format!("mail transport unavailable: {}: {e}", path.display()),
        )
    };
    let mut stream =
        connect_unix(&path, CONNECT_TIMEOUT).map_err(|e| unavailable(e.to_string()))?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(ANSWER_TIMEOUT)))
        .map_err(|e| unavailable(e.to_string()))?;
    write_message(&mut stream, &request).map_err(|e| unavailable(e.to_string()))?;
    let reply: DeliveryReply =
        read_message(&mut (&stream).take(MAX_REPLY)).map_err(|e| unavailable(e.to_string()))?;
    let Some(result) = reply.results.into_iter().next() else {
        return Err(unavailable("no result in the reply".into()));
    };
    match result.status {
        DeliveryStatus::Sent => Ok(result.text),
        DeliveryStatus::Deferred => Err(Failure::defer(intern(result.dsn.as_str()), result.text)),
        DeliveryStatus::Bounced => Err(Failure::bounce(intern(result.dsn.as_str()), result.text)),
    }
}

/// The most distinct status codes kept for the life of the process.
const MAX_INTERNED: usize = 256;

/// A `'static` copy of a status code from an agent's reply, for [`Failure`]'s code
/// field. Codes repeat (a server uses a handful), so each distinct one is leaked once;
/// past [`MAX_INTERNED`] distinct codes the class code (`4.0.0`, `5.0.0`) is used, so
/// memory stays bounded whatever the servers say.
fn intern(dsn: &str) -> &'static str {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let class = match dsn.as_bytes().first() {
        Some(b'2') => "2.0.0",
        Some(b'5') => "5.0.0",
        _ => "4.0.0",
    };
    let Ok(mut guard) = SEEN.lock() else {
        return class;
    };
    let seen = guard.get_or_insert_with(HashSet::new);
    if let Some(known) = seen.get(dsn) {
        return known;
    }
    if seen.len() >= MAX_INTERNED {
        return class;
    }
    let leaked: &'static str = Box::leak(dsn.to_string().into_boxed_str());
    seen.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_transport_and_nexthop() {
        assert_eq!(
            split_transport("lmtp:unix:private/dovecot-lmtp"),
            Some(("lmtp", "unix:private/dovecot-lmtp"))
        );
        assert_eq!(split_transport("dovecot"), Some(("dovecot", "")));
        assert_eq!(
            split_transport("lmtp:[127.0.0.1]:24"),
            Some(("lmtp", "[127.0.0.1]:24"))
        );
        assert_eq!(split_transport(""), None);
        assert_eq!(split_transport("../x:y"), None);
        assert_eq!(split_transport(":nexthop"), None);
    }

    #[test]
    fn interned_codes_are_shared_and_bounded() {
        let a = intern("5.1.1");
        let b = intern(&String::from("5.1.1"));
        assert!(std::ptr::eq(a, b));
        for i in 0..(MAX_INTERNED + 10) {
            let code = format!("4.{}.{}", i / 100, i % 100);
            let got = intern(&code);
            assert!(got == code || got == "4.0.0");
        }
        assert_eq!(intern("4.99.99"), "4.0.0");
    }

    #[test]
    fn an_absent_agent_defers() {
        let req = DeliveryRequest {
            queue_name: rostfix_proto::QueueName::Active,
            queue_id: rostfix_proto::QueueId::new("ABCDEF123").unwrap(),
            sender: "a@b".into(),
            nexthop: "localhost".into(),
            arrival: 0,
            recipients: Vec::new(),
            activated: None,
            probe: false,
            shaping: None,
            group: None,
        };
        let dir = std::env::temp_dir().join(format!("rostfix-pass-{}", std::process::id()));
        let cx = PassContext::new(&req, &dir);
        let f = pass(&cx, "lmtp:unix:private/x", "u@example", "u@example").unwrap_err();
        assert!(!f.permanent);
        assert!(
            f.text.starts_with("mail transport unavailable: "),
            "{}",
            f.text
        );
    }
}
