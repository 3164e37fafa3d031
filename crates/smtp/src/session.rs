//! The SMTP client conversation with one server, over any `Read + Write` transport so it
//! is unit-tested against a scripted server: greeting, EHLO (HELO fallback on 5xx), MAIL
//! FROM (with SIZE= when offered), RCPT TO per recipient (sent in one write when the
//! server offers PIPELINING), DATA with the content converted to CRLF and dot-stuffed,
//! QUIT. Every read is bounded in size (see `reply`) and in time (the Postfix
//! `smtp_*_timeout` of the stage).
//!
//! The result is either one outcome per recipient, or a [`SiteFailure`] that concerns
//! the whole message at this server (connection lost, 4xx greeting/EHLO/MAIL: try the
//! next MX host; 5xx to HELO/MAIL: bounce everything). Partial: no STARTTLS, AUTH,
//! 8BITMIME/SMTPUTF8 handling, DSN parameters or connection reuse yet (issue 4).

use crate::reply::{read_reply, Reply, ReplyError};
use rostfix_proto::DeliveryStatus;
use std::io::{BufReader, Read, Write};
use std::time::Duration;

/// A byte stream whose reads and writes can be given a deadline per stage.
pub trait Transport: Read + Write {
    fn set_timeout(&mut self, timeout: Duration) -> std::io::Result<()>;
}

impl Transport for std::net::TcpStream {
    fn set_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        let t = Some(timeout.max(Duration::from_secs(1)));
        self.set_read_timeout(t)?;
        self.set_write_timeout(t)
    }
}

/// The Postfix stage timeouts (smtp_helo_timeout, smtp_mail_timeout, ...).
#[derive(Debug, Clone)]
pub struct Timeouts {
    pub helo: Duration,
    pub mail: Duration,
    pub rcpt: Duration,
    pub data_init: Duration,
    pub data_xfer: Duration,
    pub data_done: Duration,
    pub quit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            helo: Duration::from_secs(300),
            mail: Duration::from_secs(300),
            rcpt: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_xfer: Duration::from_secs(180),
            data_done: Duration::from_secs(600),
            quit: Duration::from_secs(300),
        }
    }
}

/// What one session delivers.
pub struct Envelope<'a> {
    pub helo_name: &'a str,
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub content: &'a [u8],
}

/// The outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: DeliveryStatus,
    pub dsn: String,
    pub text: String,
}

/// A failure that concerns every recipient of the message at this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFailure {
    pub status: DeliveryStatus,
    pub dsn: String,
    pub text: String,
    /// Whether the next MX host should be tried (temporary, server-specific failures).
    pub try_next: bool,
}

/// Runs one transaction with `peer` (the `host[ip]` label used in texts).
pub fn run<T: Transport>(
    stream: T,
    peer: &str,
    env: &Envelope<'_>,
    timeouts: &Timeouts,
) -> Result<Vec<Outcome>, SiteFailure> {
    let mut s = Session {
        io: BufReader::new(stream),
        peer,
    };
    let result = s.transaction(env, timeouts);
    // QUIT is a courtesy: its failure changes nothing that was decided. After a lost
    // or timed-out connection (4.4.2) it would only wait for another timeout.
    if !matches!(&result, Err(f) if f.dsn == "4.4.2") {
        let _ = s.command("QUIT", timeouts.quit, "sending QUIT");
    }
    result
}

struct Session<'p, T: Transport> {
    io: BufReader<T>,
    peer: &'p str,
}

impl<T: Transport> Session<'_, T> {
    fn transaction(
        &mut self,
        env: &Envelope<'_>,
        t: &Timeouts,
    ) -> Result<Vec<Outcome>, SiteFailure> {
        self.set_timeout(t.helo, "receiving the initial server greeting")?;
        let greeting = self.read("receiving the initial server greeting")?;
        if greeting.class() != 2 {
            // smtp_skip_5xx_greeting: a 5xx greeting is treated as this host being
            // unusable, not as a verdict on the message.
            return Err(SiteFailure {
                status: DeliveryStatus::Deferred,
                dsn: format!("4{}", &greeting.dsn()[1..]),
                text: format!(
                    "host {} refused to talk to me: {}",
                    self.peer,
                    greeting.text()
                ),
                try_next: true,
            });
        }
        let ehlo = self.command(
            &format!("EHLO {}", env.helo_name),
            t.helo,
            "performing the EHLO handshake",
        )?;
        let mut extensions = Vec::new();
        match ehlo.class() {
            2 => {
                extensions = ehlo
                    .lines
                    .iter()
                    .skip(1)
                    .map(|l| l.to_ascii_uppercase())
                    .collect()
            }
            5 => {
                let helo = self.command(
                    &format!("HELO {}", env.helo_name),
                    t.helo,
                    "performing the HELO handshake",
                )?;
                if helo.class() != 2 {
                    return Err(self.said(&helo, "HELO"));
                }
            }
            _ => return Err(self.said(&ehlo, "EHLO")),
        }
        let pipelining = extensions.iter().any(|e| e == "PIPELINING");
        let size_ext = extensions
            .iter()
            .find_map(|e| {
                e.strip_prefix("SIZE")
                    .map(|rest| rest.trim().parse::<u64>().unwrap_or(0))
            })
            .or_else(|| extensions.iter().any(|e| e == "SIZE").then_some(0));

        let wire = to_wire(env.content);
        let mut mail = format!("MAIL FROM:<{}>", env.sender);
        if let Some(limit) = size_ext {
            let size = wire.len() as u64;
            if limit > 0 && size > limit {
                return Err(SiteFailure {
                    status: DeliveryStatus::Bounced,
                    dsn: "5.3.4".into(),
                    text: format!(
                        "message size {size} exceeds size limit {limit} of server {}",
                        self.peer
                    ),
                    try_next: false,
                });
            }
            mail.push_str(&format!(" SIZE={size}"));
        }

        let rcpt_cmds: Vec<String> = env
            .recipients
            .iter()
            .map(|r| format!("RCPT TO:<{r}>"))
            .collect();
        if pipelining {
            // One write for the whole envelope; replies are then read in order.
            let mut batch = format!("{mail}\r\n");
            for c in &rcpt_cmds {
                batch.push_str(c);
                batch.push_str("\r\n");
            }
            self.set_timeout(t.mail, "sending MAIL FROM")?;
            self.write(batch.as_bytes(), "sending MAIL FROM")?;
        } else {
            self.set_timeout(t.mail, "sending MAIL FROM")?;
            self.write(format!("{mail}\r\n").as_bytes(), "sending MAIL FROM")?;
        }
        let mail_reply = self.read("sending MAIL FROM")?;
        if mail_reply.class() != 2 {
            return Err(self.said(&mail_reply, "MAIL FROM"));
        }

        let mut outcomes: Vec<Option<Outcome>> = vec![None; env.recipients.len()];
        let mut accepted = Vec::new();
        for (i, cmd) in rcpt_cmds.iter().enumerate() {
            self.set_timeout(t.rcpt, "sending RCPT TO")?;
            if !pipelining {
                self.write(format!("{cmd}\r\n").as_bytes(), "sending RCPT TO")?;
            }
            let reply = self.read("sending RCPT TO")?;
            if reply.class() == 2 {
                accepted.push(i);
                continue;
            }
            let outcome = self.outcome(&reply, "RCPT TO");
            if reply.code == 421 {
                // The server is closing: nothing more will be accepted in this session.
                for o in outcomes.iter_mut().filter(|o| o.is_none()) {
                    *o = Some(outcome.clone());
                }
                return Ok(finish(outcomes));
            }
            outcomes[i] = Some(outcome);
        }
        if accepted.is_empty() {
            return Ok(finish(outcomes));
        }

        let data = self.command("DATA", t.data_init, "sending DATA")?;
        if data.code != 354 {
            let outcome = self.outcome(&data, "DATA");
            return Ok(fill(outcomes, &accepted, &outcome));
        }
        self.set_timeout(t.data_xfer, "sending message body")?;
        self.write(&wire, "sending message body")?;
        self.write(b".\r\n", "sending message body")?;
        self.set_timeout(
            t.data_done,
            "sending end of data -- message may be sent more than once",
        )?;
        let done = self.read("sending end of data -- message may be sent more than once")?;
        let outcome = if done.class() == 2 {
            Outcome {
                status: DeliveryStatus::Sent,
                dsn: done.dsn(),
                text: done.text(),
            }
        } else {
            self.outcome(&done, "end of DATA")
        };
        Ok(fill(outcomes, &accepted, &outcome))
    }

    /// A non-2xx reply as a per-recipient outcome.
    fn outcome(&self, reply: &Reply, command: &str) -> Outcome {
        Outcome {
            status: status_of(reply),
            dsn: reply.dsn(),
            text: format!(
                "host {} said: {} (in reply to {command} command)",
                self.peer,
                reply.text()
            ),
        }
    }

    /// A non-2xx reply that ends the session for every recipient.
    fn said(&self, reply: &Reply, command: &str) -> SiteFailure {
        let o = self.outcome(reply, command);
        SiteFailure {
            try_next: o.status != DeliveryStatus::Bounced,
            status: o.status,
            dsn: o.dsn,
            text: o.text,
        }
    }

    fn command(&mut self, cmd: &str, timeout: Duration, stage: &str) -> Result<Reply, SiteFailure> {
        self.set_timeout(timeout, stage)?;
        self.write(format!("{cmd}\r\n").as_bytes(), stage)?;
        self.read(stage)
    }

    fn set_timeout(&mut self, timeout: Duration, stage: &str) -> Result<(), SiteFailure> {
        self.io
            .get_mut()
            .set_timeout(timeout)
            .map_err(|e| self.lost(ReplyError::from(e), stage))
    }

    fn write(&mut self, bytes: &[u8], stage: &str) -> Result<(), SiteFailure> {
        let io = self.io.get_mut();
        io.write_all(bytes)
            .and_then(|()| io.flush())
            .map_err(|e| self.lost(ReplyError::from(e), stage))
    }

    fn read(&mut self, stage: &str) -> Result<Reply, SiteFailure> {
        read_reply(&mut self.io).map_err(|e| self.lost(e, stage))
    }

    /// Postfix's texts for a broken conversation; always worth another host.
    fn lost(&self, e: ReplyError, stage: &str) -> SiteFailure {
        let (dsn, text) = match e {
            ReplyError::Timeout => (
                "4.4.2",
                format!("conversation with {} timed out while {stage}", self.peer),
            ),
            ReplyError::Closed => (
                "4.4.2",
                format!("lost connection with {} while {stage}", self.peer),
            ),
            other => (
                "4.4.2",
                format!("error talking to {} while {stage}: {other}", self.peer),
            ),
        };
        SiteFailure {
            status: DeliveryStatus::Deferred,
            dsn: dsn.into(),
            text,
            try_next: true,
        }
    }
}

fn status_of(reply: &Reply) -> DeliveryStatus {
    match reply.class() {
        2 => DeliveryStatus::Sent,
        5 => DeliveryStatus::Bounced,
        _ => DeliveryStatus::Deferred,
    }
}

/// Gives every accepted recipient the same outcome.
fn fill(mut outcomes: Vec<Option<Outcome>>, accepted: &[usize], outcome: &Outcome) -> Vec<Outcome> {
    for &i in accepted {
        outcomes[i] = Some(outcome.clone());
    }
    finish(outcomes)
}

/// Every recipient has an outcome by construction; a gap would be a bug, reported as
/// a deferral rather than a panic.
fn finish(outcomes: Vec<Option<Outcome>>) -> Vec<Outcome> {
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome {
                status: DeliveryStatus::Deferred,
                dsn: "4.3.0".into(),
                text: "internal error: no outcome for recipient".into(),
            })
        })
        .collect()
}

/// Message content as sent after DATA: bare LF becomes CRLF, a line starting with `.`
/// gets another `.` (RFC 5321 4.5.2), and the last line is terminated. The final
/// `.\r\n` is not included.
pub fn to_wire(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 32 + 2);
    let mut line_start = true;
    let mut prev = 0u8;
    for &b in content {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        line_start = b == b'\n';
        prev = b;
    }
    if !content.is_empty() && !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A server that has already "said" everything in `script` and records what the
    /// client writes.
    struct Fake {
        input: std::io::Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }
    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Transport for Fake {
        fn set_timeout(&mut self, _: Duration) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Transport for &mut Fake {
        fn set_timeout(&mut self, _: Duration) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn fake(script: &str) -> Fake {
        Fake {
            input: std::io::Cursor::new(script.replace('\n', "\r\n").into_bytes()),
            written: Vec::new(),
        }
    }

    fn run_with(script: &str, rcpts: &[&str]) -> (Result<Vec<Outcome>, SiteFailure>, String) {
        let mut f = fake(script);
        let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
        let env = Envelope {
            helo_name: "a.test",
            sender: "alice@a.test",
            recipients: &rcpts,
            content: b"Subject: hi\n\n.dot\nbody\n",
        };
        let r = run(&mut f, "b.test[127.0.0.2]", &env, &Timeouts::default());
        (r, String::from_utf8_lossy(&f.written).into_owned())
    }

    #[test]
    fn pipelined_delivery_with_per_recipient_failure() {
        let (r, written) = run_with(
            "220 b.test ESMTP\n250-b.test\n250-PIPELINING\n250 SIZE 100000\n250 2.1.0 Ok\n\
             250 2.1.5 Ok\n550 5.1.1 <x@b.test>: User unknown\n354 go\n250 2.0.0 Ok: queued as Q1\n221 Bye\n",
            &["bob@b.test", "x@b.test"],
        );
        let out = r.unwrap();
        assert_eq!(out[0].status, DeliveryStatus::Sent);
        assert_eq!(out[0].dsn, "2.0.0");
        assert_eq!(out[0].text, "250 2.0.0 Ok: queued as Q1");
        assert_eq!(out[1].status, DeliveryStatus::Bounced);
        assert_eq!(out[1].dsn, "5.1.1");
        assert_eq!(
            out[1].text,
            "host b.test[127.0.0.2] said: 550 5.1.1 <x@b.test>: User unknown (in reply to RCPT TO command)"
        );
        assert!(written.starts_with("EHLO a.test\r\nMAIL FROM:<alice@a.test> SIZE=28\r\nRCPT TO:<bob@b.test>\r\nRCPT TO:<x@b.test>\r\nDATA\r\n"));
        assert!(written.contains("Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n"));
    }

    #[test]
    fn helo_fallback_and_temporary_rcpt() {
        let (r, written) = run_with(
            "220 old\n502 what\n250 old\n250 ok\n451 4.3.0 try later\n250 ok\n354 go\n250 sent\n221 bye\n",
            &["a@b.test", "c@b.test"],
        );
        let out = r.unwrap();
        assert_eq!(out[0].status, DeliveryStatus::Deferred);
        assert_eq!(out[0].dsn, "4.3.0");
        assert_eq!(out[1].status, DeliveryStatus::Sent);
        assert_eq!(out[1].dsn, "2.0.0");
        assert!(written.starts_with(
            "EHLO a.test\r\nHELO a.test\r\nMAIL FROM:<alice@a.test>\r\nRCPT TO:<a@b.test>\r\n"
        ));
    }

    #[test]
    fn server_closing_421_mid_session_defers_the_rest() {
        let (r, written) = run_with(
            "220 x\n250 x\n250 ok\n250 ok\n421 4.7.0 closing\n",
            &["a@b.test", "c@b.test", "d@b.test"],
        );
        let out = r.unwrap();
        assert!(out
            .iter()
            .all(|o| o.status == DeliveryStatus::Deferred && o.dsn == "4.7.0"));
        assert!(!written.contains("DATA"));
    }

    #[test]
    fn greeting_and_mail_failures_are_site_failures() {
        let (r, _) = run_with("421 busy\n", &["a@b.test"]);
        let f = r.unwrap_err();
        assert!(f.try_next);
        assert_eq!(f.status, DeliveryStatus::Deferred);
        let (r, _) = run_with("220 x\n250 x\n553 5.1.8 bad sender\n", &["a@b.test"]);
        let f = r.unwrap_err();
        assert!(!f.try_next);
        assert_eq!(f.status, DeliveryStatus::Bounced);
        assert_eq!(f.dsn, "5.1.8");
        let (r, _) = run_with("220 x\n250 x\n451 later\n", &["a@b.test"]);
        assert!(r.unwrap_err().try_next);
    }

    #[test]
    fn lost_connection_is_a_site_failure() {
        let (r, _) = run_with("220 x\n250 x\n250 ok\n250 ok\n354 go\n", &["a@b.test"]);
        let f = r.unwrap_err();
        assert!(f.try_next);
        assert_eq!(f.dsn, "4.4.2");
        assert!(f
            .text
            .starts_with("lost connection with b.test[127.0.0.2] while sending end of data"));
    }

    #[test]
    fn data_rejection_and_size_limit() {
        let (r, _) = run_with(
            "220 x\n250 x\n250 ok\n250 ok\n554 5.5.0 no\n",
            &["a@b.test"],
        );
        assert_eq!(r.unwrap()[0].status, DeliveryStatus::Bounced);
        let (r, _) = run_with("220 x\n250-x\n250 SIZE 10\n", &["a@b.test"]);
        assert_eq!(r.unwrap_err().dsn, "5.3.4");
    }

    #[test]
    fn wire_conversion() {
        assert_eq!(to_wire(b"a\n.b\n..c\nd"), b"a\r\n..b\r\n...c\r\nd\r\n");
        assert_eq!(to_wire(b".\r\nx\r\n"), b"..\r\nx\r\n");
        assert_eq!(to_wire(b""), b"");
    }

    proptest! {
        #[test]
        fn wire_never_has_bare_lf_or_lone_dot_line(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let w = to_wire(&data);
            for (i, &b) in w.iter().enumerate() {
                if b == b'\n' {
                    prop_assert!(i > 0 && w[i - 1] == b'\r');
                }
            }
            prop_assert!(!w.windows(5).any(|x| x == b"\r\n.\r\n"));
            prop_assert!(!w.starts_with(b".\r\n"));
        }
    }
}
