//! smtpd's side of anvil (`private/anvil`): one stream per SMTP session, opened at
//! connect time when any `smtpd_client_*_limit` is set and the client is not in
//! `smtpd_client_event_limit_exceptions`.
//!
//! If anvil cannot be reached, or stops answering, the session goes on without these
//! limits and a warning is logged (Postfix does the same): a missing rate limiter must
//! never stop mail. Every call is bounded by [`ANVIL_TIMEOUT`].
//!
//! For the AUTH layer: call [`Anvil::auth_allowed`] before each AUTH command; when it
//! returns false, reply with [`Anvil::auth_rate_reply`] (Postfix's
//! `smtpd_client_auth_rate_limit`) and do not talk to the SASL server.

use crate::limits::ClientLimits;
use crate::reply::Reply;
use rostfix_proto::{read_message, write_message, AnvilClient, AnvilReply, AnvilRequest};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// anvil's socket, relative to queue_directory (the working directory after confine).
pub use rostfix_proto::ANVIL_SOCKET;
/// How long one anvil call may take.
pub const ANVIL_TIMEOUT: Duration = Duration::from_secs(2);
/// An anvil reply is two numbers.
const MAX_REPLY: u64 = 1024;

/// What the connect-time check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectVerdict {
    Allowed,
    /// Over smtpd_client_connection_count_limit (the count seen).
    TooManyConnections(u32),
    /// Over smtpd_client_connection_rate_limit (the rate seen).
    RateExceeded(u32),
}

/// One session's anvil stream and limits.
#[derive(Debug)]
pub struct Anvil {
    stream: Option<UnixStream>,
    client: AnvilClient,
    limits: ClientLimits,
    /// For log lines: `host[addr]`.
    who: String,
}

impl Anvil {
    /// Connects to anvil under `root` and registers the connection. Never fails: with
    /// anvil unreachable the returned handle allows everything.
    pub fn connect(
        root: &Path,
        service: &str,
        address: &str,
        who: &str,
        limits: ClientLimits,
    ) -> (Anvil, ConnectVerdict) {
        let client = AnvilClient {
            service: service.to_string(),
            address: address.to_string(),
        };
        let stream = match rostfix_proto::connect_unix(&root.join(ANVIL_SOCKET), ANVIL_TIMEOUT) {
            Ok(s) => match s
                .set_read_timeout(Some(ANVIL_TIMEOUT))
                .and_then(|()| s.set_write_timeout(Some(ANVIL_TIMEOUT)))
            {
                Ok(()) => Some(s),
                Err(e) => {
                    log::warn!("anvil: cannot set socket timeouts: {e}");
                    None
                }
            },
            Err(e) => {
                log::warn!("connect to {ANVIL_SOCKET} service: {e}; client connection and rate limits are not enforced");
                None
            }
        };
        let mut anvil = Anvil {
            stream,
            client,
            limits,
            who: who.to_string(),
        };
        let verdict = match anvil.call(AnvilRequest::Connect(anvil.client.clone())) {
            Some(r)
                if anvil.limits.connection_count > 0 && r.count > anvil.limits.connection_count =>
            {
                log::warn!(
                    "Connection concurrency limit exceeded: {} from {} for service {}",
                    r.count,
                    anvil.who,
                    anvil.client.service
                );
                ConnectVerdict::TooManyConnections(r.count)
            }
            Some(r)
                if anvil.limits.connection_rate > 0 && r.rate > anvil.limits.connection_rate =>
            {
                log::warn!(
                    "Connection rate limit exceeded: {} from {} for service {}",
                    r.rate,
                    anvil.who,
                    anvil.client.service
                );
                ConnectVerdict::RateExceeded(r.rate)
            }
            _ => ConnectVerdict::Allowed,
        };
        (anvil, verdict)
    }

    /// A handle that never limits (anvil not used for this client).
    pub fn disabled() -> Anvil {
        Anvil {
            stream: None,
            client: AnvilClient {
                service: String::new(),
                address: String::new(),
            },
            limits: ClientLimits::default(),
            who: String::new(),
        }
    }

    /// One request and its reply; None (and the stream dropped) on any failure.
    fn call(&mut self, req: AnvilRequest) -> Option<AnvilReply> {
        let stream = self.stream.as_mut()?;
        let result = write_message(stream, &req)
            .and_then(|()| read_message::<_, AnvilReply>(&mut stream.take(MAX_REPLY)));
        match result {
            Ok(r) => Some(r),
            Err(e) => {
                log::warn!("{ANVIL_SOCKET} service: {e}; client limits are not enforced for the rest of this session");
                self.stream = None;
                None
            }
        }
    }

    /// MAIL FROM: false when smtpd_client_message_rate_limit is exceeded.
    pub fn message_allowed(&mut self) -> bool {
        let limit = self.limits.message_rate;
        if limit == 0 {
            return true;
        }
        match self.call(AnvilRequest::Message(self.client.clone())) {
            Some(r) if r.rate > limit => {
                log::warn!(
                    "Message delivery request rate limit exceeded: {} from {} for service {}",
                    r.rate,
                    self.who,
                    self.client.service
                );
                false
            }
            _ => true,
        }
    }

    /// RCPT TO: false when smtpd_client_recipient_rate_limit is exceeded.
    pub fn recipient_allowed(&mut self) -> bool {
        let limit = self.limits.recipient_rate;
        if limit == 0 {
            return true;
        }
        match self.call(AnvilRequest::Recipient(self.client.clone())) {
            Some(r) if r.rate > limit => {
                log::warn!(
                    "Recipient address rate limit exceeded: {} from {} for service {}",
                    r.rate,
                    self.who,
                    self.client.service
                );
                false
            }
            _ => true,
        }
    }

    /// AUTH: false when smtpd_client_auth_rate_limit is exceeded.
    pub fn auth_allowed(&mut self) -> bool {
        let limit = self.limits.auth_rate;
        if limit == 0 {
            return true;
        }
        match self.call(AnvilRequest::Auth(self.client.clone())) {
            Some(r) if r.rate > limit => {
                log::warn!(
                    "AUTH command rate limit exceeded: {} from {} for service {}",
                    r.rate,
                    self.who,
                    self.client.service
                );
                false
            }
            _ => true,
        }
    }

    /// Postfix's replies for the three per-command rate limits.
    pub fn message_rate_reply(&self) -> Reply {
        Reply::new(
            450,
            "4.7.1",
            format!("Error: too much mail from {}", self.client.address),
        )
    }

    pub fn recipient_rate_reply(&self) -> Reply {
        Reply::new(
            450,
            "4.7.1",
            format!("Error: too many recipients from {}", self.client.address),
        )
    }

    pub fn auth_rate_reply(&self) -> Reply {
        Reply::new(
            450,
            "4.7.1",
            format!("Error: too many AUTH commands from {}", self.client.address),
        )
    }
}

/// The 421 for a connection over the count or rate limit.
pub fn connection_reply(myhostname: &str, address: &str) -> Reply {
    Reply::new(
        421,
        "4.7.0",
        format!("{myhostname} Error: too many connections from {address}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn unreachable_anvil_allows_everything() {
        let dir = std::env::temp_dir().join(format!("anvil-client-{}", std::process::id()));
        let limits = ClientLimits {
            connection_count: 1,
            message_rate: 1,
            recipient_rate: 1,
            auth_rate: 1,
            ..ClientLimits::default()
        };
        let (mut a, v) = Anvil::connect(&dir, "smtp", "192.0.2.1", "x[192.0.2.1]", limits);
        assert_eq!(v, ConnectVerdict::Allowed);
        assert!(a.message_allowed() && a.recipient_allowed() && a.auth_allowed());
    }

    #[test]
    fn limits_compared_with_anvil_answers() {
        let dir = std::env::temp_dir().join(format!("anvil-client-ok-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("private")).unwrap();
        let path = dir.join(ANVIL_SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        // A fake anvil: connect count 3, then every rate 5.
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut first = true;
            while let Ok(_req) = read_message::<_, AnvilRequest>(&mut s) {
                let reply = if first {
                    AnvilReply { count: 3, rate: 1 }
                } else {
                    AnvilReply { count: 3, rate: 5 }
                };
                first = false;
                write_message(&mut s, &reply).unwrap();
            }
        });
        let limits = ClientLimits {
            connection_count: 2,
            message_rate: 5,
            recipient_rate: 4,
            ..ClientLimits::default()
        };
        let (mut a, v) = Anvil::connect(&dir, "smtp", "192.0.2.1", "x[192.0.2.1]", limits);
        assert_eq!(v, ConnectVerdict::TooManyConnections(3));
        assert!(a.message_allowed(), "5 is not over 5");
        assert!(!a.recipient_allowed(), "5 is over 4");
        assert!(a.auth_allowed(), "no AUTH limit: anvil not asked");
        drop(a);
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
