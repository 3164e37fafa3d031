//! The anvil protocol (`private/anvil`): smtpd reports client events, anvil answers
//! with the client's current connection count and event rate in the current
//! `anvil_rate_time_unit`, and smtpd compares them with its limits (Postfix's anvil(8)).
//!
//! One anvil connection per SMTP session: smtpd sends `Connect` first and may then
//! send `Message`, `Recipient` and `Auth` events. Closing the connection (or sending
//! `Disconnect`) ends the session's connection: anvil decrements the count itself
//! when the stream closes, so a crashed smtpd can never leave a count behind.
//! Every request gets exactly one [`AnvilReply`]. docs/ipc.md lists the socket.

use serde::{Deserialize, Serialize};

/// Who a request is about: the master.cf service name and the client address, so
/// that limits on different smtpd services are counted separately, as in Postfix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnvilClient {
    pub service: String,
    pub address: String,
}

/// smtpd -> anvil.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnvilRequest {
    /// A new connection: counts +1, connection rate +1.
    Connect(AnvilClient),
    /// MAIL FROM: message rate +1.
    Message(AnvilClient),
    /// RCPT TO: recipient rate +1.
    Recipient(AnvilClient),
    /// AUTH: auth rate +1.
    Auth(AnvilClient),
    /// The connection is over (also implied by closing the stream).
    Disconnect(AnvilClient),
}

/// anvil -> smtpd: the state after the event was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnvilReply {
    /// Simultaneous connections from this client to this service.
    pub count: u32,
    /// Events of the request's kind in the current time unit (for Connect: connections).
    pub rate: u32,
}
