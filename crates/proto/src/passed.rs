//! What travels with a client connection that postscreen hands to smtpd over the `pass`
//! service (Postfix's psc_send_socket attributes): the client's and the server's
//! endpoints as postscreen established them. Behind HAProxy those are the ones the
//! PROXY header announced, which smtpd could not learn from the socket (its peer is
//! the proxy) nor from the header (postscreen has already read it).
//! docs/ipc.md ("Passing a connection") has the wire format.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The frame that follows the descriptor on the pass channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassedEndpoints {
    /// The real client (`[addr]:port` in smtpd's log, restrictions, Received).
    pub client: SocketAddr,
    /// The address and port the client connected to.
    pub server: SocketAddr,
}
