//! One client connection from qmgr: read exactly one DeliveryRequest frame (bounded in
//! size by the proto framing and in time by a socket timeout), handle it, write one
//! DeliveryReply, close.

use crate::agent::handle_request;
use crate::deliver::{system_user, Settings};
use rostfix_proto::{read_message, write_message, DeliveryRequest, FrameError};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long qmgr may take to send its request, and to read our reply.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one request on `stream` (timeouts already set by the caller).
pub fn serve_stream<S: Read + Write>(settings: &Settings, stream: &mut S, queue_root: &Path) {
    let req: DeliveryRequest = match read_message(stream) {
        Ok(r) => r,
        Err(FrameError::Closed) => return,
        Err(e) => {
            log::warn!("reading delivery request: {e}");
            return;
        }
    };
    let received = SystemTime::now();
    let reply = handle_request(settings, &req, queue_root, system_user, received);
    if let Err(e) = write_message(stream, &reply) {
        // qmgr will not learn the outcome and will retry the recipients it did not
        // hear about; the delivered ones are already marked done in the queue file.
        log::warn!("{}: sending delivery reply: {e}", req.queue_id);
    }
}
