//! One milter connection: connect with milter_connect_timeout, negotiate (OPTNEG), then
//! one exchange per SMTP event with milter_command_timeout (milter_content_timeout for
//! headers, body and end of message). Blocking I/O with socket timeouts: smtpd runs one
//! session per process, so there is nothing else to wait for.
//!
//! A milter that cannot be reached, times out or breaks the protocol is closed and from
//! then on answers every event with its default_action, as Postfix's milter8 does.

use crate::codec::{self, cmd, proto, read_packet, stage, CodecError, Response};
use crate::config::{DefaultAction, Endpoint, MacroLists, MilterSpec};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Why an exchange with a milter failed.
#[derive(Debug, thiserror::Error)]
pub enum MilterError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("{0} during {1}")]
    Read(CodecError, &'static str),
    #[error("unexpected reply '{0:?}' during {1}")]
    Unexpected(Box<Response>, &'static str),
    #[error("milter sent more than {0} bytes of modifications for one message")]
    TooManyEdits(usize),
    #[error("milter speaks protocol version {0}, we need at least 2")]
    Version(u32),
}

/// The milter's decision for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Continue,
    /// Accept: no more events of this message (or of the session, before MAIL).
    Accept,
    Reject,
    Tempfail,
    /// A full SMTP reply text ("550 5.7.1 text").
    ReplyCode(String),
    Discard,
    /// SKIP: no more body chunks.
    Skip,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_timeout(&self, t: Duration) -> std::io::Result<()> {
        // A zero duration would mean "no timeout" to the OS; never allow that.
        let t = Some(t.max(Duration::from_millis(100)));
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
            Stream::Unix(s) => s.set_read_timeout(t).and_then(|()| s.set_write_timeout(t)),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

fn open(spec: &MilterSpec) -> std::io::Result<Stream> {
    match &spec.endpoint {
        Endpoint::Inet { host, port } => {
            let mut last = None;
            for addr in (host.as_str(), *port).to_socket_addrs()? {
                match TcpStream::connect_timeout(&addr, spec.connect_timeout) {
                    Ok(s) => return Ok(Stream::Tcp(s)),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::other("host has no address")))
        }
        Endpoint::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
    }
}

/// State of one milter in a session.
pub struct Milter {
    pub spec: MilterSpec,
    stream: Option<Stream>,
    /// Negotiated actions and protocol steps.
    pub actions: u32,
    pub steps: u32,
    /// The macro lists the milter asked for (SETSYMLIST); an empty list means the
    /// configured milter_*_macros, as in Postfix.
    pub symlists: MacroLists,
    /// Failed: answers with its default action from now on.
    pub failed: bool,
    /// ACCEPT before MAIL: nothing more for this session.
    pub session_done: bool,
    /// ACCEPT, DISCARD or SKIP-like end of interest for the current message.
    pub message_done: bool,
    /// MAIL was sent and the end of message not answered.
    pub in_message: bool,
}

impl Milter {
    /// Connects and negotiates; on failure the milter is returned failed (logged).
    pub fn connect(spec: MilterSpec) -> Milter {
        let mut m = Milter {
            spec,
            stream: None,
            actions: 0,
            steps: 0,
            symlists: MacroLists::default(),
            failed: false,
            session_done: false,
            message_done: false,
            in_message: false,
        };
        if let Err(e) = m.negotiate() {
            m.fail(&e);
        }
        m
    }

    fn negotiate(&mut self) -> Result<(), MilterError> {
        let s = open(&self.spec).map_err(MilterError::Connect)?;
        s.set_timeout(self.spec.command_timeout)
            .map_err(CodecError::Io)?;
        self.stream = Some(s);
        let mut data = Vec::with_capacity(12);
        data.extend_from_slice(&self.spec.protocol.to_be_bytes());
        data.extend_from_slice(&codec::act::OFFERED.to_be_bytes());
        data.extend_from_slice(&proto::ALL.to_be_bytes());
        self.send(cmd::OPTNEG, &data)?;
        match self.receive("negotiation")? {
            Response::OptNeg {
                version,
                actions,
                protocol,
                symlists,
            } => {
                if version < 2 {
                    return Err(MilterError::Version(version));
                }
                // Bits we did not offer are ignored: we cannot honour them.
                self.actions = actions & codec::act::ALL;
                self.steps = protocol & proto::ALL;
                for (at, names) in symlists {
                    self.set_symlist(at, &names);
                }
                Ok(())
            }
            other => Err(MilterError::Unexpected(Box::new(other), "negotiation")),
        }
    }

    /// Replaces the configured macro list of one stage by the milter's own.
    fn set_symlist(&mut self, at: u32, names: &str) {
        let l = &mut self.symlists;
        let list = match at {
            stage::CONNECT => &mut l.connect,
            stage::HELO => &mut l.helo,
            stage::ENVFROM => &mut l.mail,
            stage::ENVRCPT => &mut l.rcpt,
            stage::DATA => &mut l.data,
            stage::EOM => &mut l.eom,
            stage::EOH => &mut l.eoh,
            other => {
                log::warn!(
                    "milter {}: ignoring unknown macro type {other}",
                    self.spec.name
                );
                return;
            }
        };
        *list = rostfix_config::split_list(names);
    }

    /// Logs the failure and closes the connection; default_action applies from now on.
    pub fn fail(&mut self, e: &MilterError) {
        log::warn!("milter {}: {e}", self.spec.name);
        // The label is a milter of the configuration: bounded.
        rostfix_metrics::process::add(
            "rostfix_milter_errors_total",
            &[("milter", &self.spec.name)],
            1.0,
        );
        self.stream = None;
        self.failed = true;
    }

    /// The default action as a decision at an event (quarantine is handled at the
    /// end of the message by the caller).
    pub fn default_decision(&self) -> Decision {
        match self.spec.default_action {
            DefaultAction::Tempfail => Decision::Tempfail,
            DefaultAction::Reject => Decision::Reject,
            DefaultAction::Accept | DefaultAction::Quarantine => Decision::Accept,
        }
    }

    /// Whether events go to this milter now.
    pub fn active(&self) -> bool {
        !self.failed && !self.session_done && !self.message_done
    }

    fn send(&mut self, command: u8, data: &[u8]) -> Result<(), MilterError> {
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| CodecError::Io(std::io::ErrorKind::NotConnected.into()))?;
        s.write_all(&codec::encode(command, data))
            .map_err(CodecError::Io)?;
        Ok(())
    }

    /// The next reply that is not PROGRESS.
    pub fn receive(&mut self, during: &'static str) -> Result<Response, MilterError> {
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| CodecError::Io(std::io::ErrorKind::NotConnected.into()))?;
        loop {
            let (code, data) = read_packet(s).map_err(|e| MilterError::Read(e, during))?;
            match Response::decode(code, &data)? {
                Response::Progress => continue,
                Response::Shutdown => {
                    return Err(MilterError::Unexpected(
                        Box::new(Response::Shutdown),
                        during,
                    ))
                }
                r => return Ok(r),
            }
        }
    }

    fn set_timeout(&mut self, t: Duration) -> Result<(), MilterError> {
        if let Some(s) = &self.stream {
            s.set_timeout(t).map_err(CodecError::Io)?;
        }
        Ok(())
    }

    /// Sends the macros for the command `for_cmd` (only those with a value).
    pub fn macros(&mut self, for_cmd: u8, pairs: &[(String, String)]) -> Result<(), MilterError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut data = vec![for_cmd];
        for (name, value) in pairs {
            codec::put_str(&mut data, name);
            codec::put_str(&mut data, value);
        }
        self.send(cmd::MACRO, &data)
    }

    /// One event: the packet, then (unless the milter said it will not reply to this
    /// kind of event) its decision. `content` selects milter_content_timeout.
    pub fn event(
        &mut self,
        command: u8,
        data: &[u8],
        no_reply: bool,
        content: bool,
        during: &'static str,
    ) -> Result<Decision, MilterError> {
        let t = if content {
            self.spec.content_timeout
        } else {
            self.spec.command_timeout
        };
        self.set_timeout(t)?;
        self.send(command, data)?;
        if no_reply {
            return Ok(Decision::Continue);
        }
        let r = self.receive(during)?;
        decision(r, during)
    }

    /// The current message is over (RSET, a new MAIL, end of message): ABORT when the
    /// milter saw MAIL but not the end of the message, as Postfix's milter8 does.
    pub fn abort(&mut self) {
        self.message_done = false;
        if !std::mem::take(&mut self.in_message) || self.failed {
            return;
        }
        if let Err(e) = self.send(cmd::ABORT, &[]) {
            self.fail(&e);
        }
    }

    /// QUIT: the session is over.
    pub fn quit(&mut self) {
        if self.stream.is_some() {
            // The milter may already be gone; nothing to do about it at QUIT.
            let _ = self.send(cmd::QUIT, &[]);
        }
        self.stream = None;
    }
}

/// A reply to a non-EOM event as a decision.
pub fn decision(r: Response, during: &'static str) -> Result<Decision, MilterError> {
    Ok(match r {
        Response::Continue => Decision::Continue,
        Response::Accept => Decision::Accept,
        Response::Reject => Decision::Reject,
        Response::Tempfail => Decision::Tempfail,
        Response::Discard => Decision::Discard,
        Response::Skip => Decision::Skip,
        Response::ReplyCode(text) => Decision::ReplyCode(text),
        other => return Err(MilterError::Unexpected(Box::new(other), during)),
    })
}
