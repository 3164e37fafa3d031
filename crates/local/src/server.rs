//! One client connection from qmgr: delivery requests served one after another on the
//! kept stream (rostfix_proto::serve_delivery_stream bounds each in size; the socket
//! timeout bounds it in time). Also the per-connection steps the local and virtual
//! binaries share.

use crate::agent::{handle_request, Context};
use crate::deliver::system_user;
use crate::privileges::{rest_as, running_as_root, Identity};
use rostfix_proto::{serve_delivery_stream, StreamEnd};
use rostfix_service::{Service, ServiceError, StartError};
use std::io::{Read, Write};
use std::path::Path;
use std::time::SystemTime;

/// EXIT STATUS in the manual pages of local and virtual.
pub const AGENT_EXIT_STATUS: &str =
    "0 after serving its clients, 64 on bad arguments, 1 when it cannot start.";

/// Serves the requests qmgr sends on `stream` (timeouts already set by the caller),
/// one after another, until qmgr closes it: one connection (and, every max_use
/// connections, a new process) per idle period rather than per delivery.
pub fn serve_stream<S: Read + Write>(cx: &mut Context<'_>, stream: &mut S, queue_root: &Path) {
    let end = serve_delivery_stream(stream, |req| {
        handle_request(cx, req, queue_root, SystemTime::now())
    });
    if !matches!(end, StreamEnd::Done) {
        log::warn!("{end}");
    }
}

/// mail_owner's identity when running as root (None otherwise: then everything already
/// runs as one user), for the queue files of forwarded mail and the resting identity.
pub fn mail_owner(service: &Service) -> Result<Option<Identity>, StartError> {
    if !running_as_root() {
        return Ok(None);
    }
    let name = service.config.get("mail_owner");
    match system_user(&name) {
        Ok(Some(u)) => Ok(Some(Identity {
            uid: u.uid,
            gid: u.gid,
        })),
        _ => Err(ServiceError::UnknownUser(name).into()),
    }
}

/// After confinement: rest with mail_owner's effective ids between deliveries (see
/// crate::privileges). Failing that stops the start, since serving as root would open
/// queue files with root's rights.
pub fn rest(owner: Option<Identity>) -> Result<(), StartError> {
    match owner {
        Some(id) => rest_as(id).map_err(StartError::daemon),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::{Settings, UserInfo};
    use crate::expand::LocalConf;
    use crate::resubmit::CollectingForwarder;
    use crate::testdir::TestDir;
    use rostfix_proto::{
        read_message, write_message, DeliveryRecipient, DeliveryReply, DeliveryRequest,
        DeliveryStatus,
    };
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    fn serve_with<S: Read + Write>(settings: &Settings, stream: &mut S, root: &Path) {
        let conf = LocalConf::defaults(&["h"]);
        let mut fwd = CollectingForwarder::default();
        let none = |_: &str| -> Result<Option<UserInfo>, String> { Ok(None) };
        let mut cx = Context {
            settings,
            conf: &conf,
            users: &none,
            forwarder: &mut fwd,
        };
        serve_stream(&mut cx, stream, root);
    }

    #[test]
    fn each_request_on_a_stream_gets_its_reply() {
        let t = TestDir::new("server");
        let settings = Settings {
            hostname: "h".into(),
            home_mailbox: "Maildir/".into(),
            mail_spool_directory: "/nonexistent".into(),
            recipient_delimiter: String::new(),
            mailbox_size_limit: 0,
            lock_wait: Duration::from_secs(1),
            extension_folders: false,
        };
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        let req = DeliveryRequest {
            queue_name: rostfix_queue::QueueName::Active,
            queue_id: "ABCDEF123".parse().unwrap(),
            sender: String::new(),
            nexthop: "h".into(),
            arrival: 0,
            recipients: vec![DeliveryRecipient {
                offset: 7,
                address: "x".into(),
                orig_address: "x".into(),
            }],
            activated: None,
            probe: false,
            shaping: None,
            group: None,
        };
        // Two requests on one stream, then qmgr closes it: two replies, each saying
        // the stream may carry another.
        write_message(&mut ours, &req).unwrap();
        write_message(&mut ours, &req).unwrap();
        ours.shutdown(std::net::Shutdown::Write).unwrap();
        let root = t.path().to_path_buf();
        serve_with(&settings, &mut theirs, &root);
        for _ in 0..2 {
            let reply: DeliveryReply = read_message(&mut ours).unwrap();
            // No such queue file: deferred, the recipient untouched.
            assert_eq!(reply.results.len(), 1);
            assert_eq!(reply.results[0].offset, 7);
            assert_eq!(reply.results[0].status, DeliveryStatus::Deferred);
            assert_eq!(reply.results[0].dsn, "4.3.0");
            assert!(reply.keep_open);
        }
    }

    #[test]
    fn garbage_and_eof_are_ignored() {
        let settings = Settings {
            hostname: "h".into(),
            home_mailbox: String::new(),
            mail_spool_directory: "/nonexistent".into(),
            recipient_delimiter: String::new(),
            mailbox_size_limit: 0,
            lock_wait: Duration::from_secs(1),
            extension_folders: false,
        };
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        drop(ours);
        serve_with(&settings, &mut theirs, Path::new("."));
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        rostfix_proto::write_frame(&mut ours, b"not json").unwrap();
        serve_with(&settings, &mut theirs, Path::new("."));
        drop(theirs);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut ours, &mut rest).unwrap();
        assert!(rest.is_empty(), "no reply to a malformed request");
    }
}
