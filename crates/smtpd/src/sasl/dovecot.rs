//! The Dovecot auth client: one UNIX-socket connection per SMTP session, opened on the
//! first question (EHLO wants the mechanism list), handshake checked, then one `AUTH`
//! request per SMTP AUTH command with increasing ids.
//!
//! Every read is bounded: lines longer than [`MAX_LINE`] are a protocol error, and the
//! socket has the SMTP session's timeout for reads and writes, so a stuck auth server
//! cannot hold a client forever. Client data never goes into a line unchecked: the
//! mechanism name is validated, responses are strict base64 (checked by the caller and
//! again here).

use super::dovecot_codec::{
    auth_line, cont_line, field_safe, handshake, parse_server_line, valid_mech_name, AuthRequest,
    ServerLine, MAJOR,
};
use super::{ConnInfo, SaslError, SaslServer, Step};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Longest server line we accept (Dovecot's own limit for auth lines is 8 KiB of
/// base64 plus parameters).
pub const MAX_LINE: usize = 16 * 1024;

/// Most lines we read while waiting for one answer (skipping unknown lines).
const MAX_LINES: usize = 200;

struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    mechs: Vec<String>,
}

/// A lazily connected client of one Dovecot auth socket.
pub struct DovecotClient {
    path: String,
    service: String,
    timeout: Duration,
    conn: Option<Conn>,
    next_id: u32,
    /// The id of the exchange in progress.
    current: Option<u32>,
}

impl DovecotClient {
    pub fn new(path: String, service: String, timeout: Duration) -> DovecotClient {
        DovecotClient {
            path,
            service,
            timeout,
            conn: None,
            next_id: 1,
            current: None,
        }
    }

    fn connect(&mut self) -> Result<&mut Conn, SaslError> {
        if self.conn.is_none() {
            let connect_err = |source| SaslError::Connect {
                path: self.path.clone(),
                source,
            };
            let stream = UnixStream::connect(&self.path).map_err(connect_err)?;
            stream.set_read_timeout(Some(self.timeout))?;
            stream.set_write_timeout(Some(self.timeout))?;
            let writer = stream.try_clone()?;
            let mut conn = Conn {
                reader: BufReader::new(stream),
                writer,
                mechs: Vec::new(),
            };
            conn.writer
                .write_all(handshake(std::process::id()).as_bytes())?;
            conn.mechs = read_handshake(&mut conn.reader)?;
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(SaslError::Protocol("no connection".into())),
        }
    }

    /// Sends `line` and waits for the answer to the current id.
    fn exchange(&mut self, line: &str) -> Result<Step, SaslError> {
        let id = self.current.unwrap_or(0);
        let conn = self.connect()?;
        if let Err(e) = conn.writer.write_all(line.as_bytes()) {
            self.conn = None;
            return Err(e.into());
        }
        let result = read_answer(&mut conn.reader, id);
        match &result {
            Ok(Step::Challenge(_)) => {}
            Ok(_) => self.current = None,
            Err(_) => {
                // The stream state is unknown now: start afresh next time.
                self.conn = None;
                self.current = None;
            }
        }
        result
    }
}

impl SaslServer for DovecotClient {
    fn mechanisms(&mut self) -> Result<Vec<String>, SaslError> {
        Ok(self.connect()?.mechs.clone())
    }

    fn start(
        &mut self,
        mech: &str,
        initial: Option<&str>,
        conn: &ConnInfo,
    ) -> Result<Step, SaslError> {
        let mech = mech.to_ascii_uppercase();
        if !valid_mech_name(&mech) || initial.is_some_and(|r| !field_safe(r)) {
            return Ok(Step::Failure {
                reason: "Invalid authentication mechanism".into(),
                temporary: false,
            });
        }
        if !self.mechanisms()?.contains(&mech) {
            return Ok(Step::Failure {
                reason: "Invalid authentication mechanism".into(),
                temporary: false,
            });
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.current = Some(id);
        let line = auth_line(&AuthRequest {
            id,
            mech: &mech,
            service: &self.service,
            local_ip: conn.local_ip,
            remote_ip: conn.remote_ip,
            secured: conn.secured,
            initial,
        });
        self.exchange(&line)
    }

    fn respond(&mut self, response: &str) -> Result<Step, SaslError> {
        let Some(id) = self.current else {
            return Err(SaslError::Protocol("no exchange in progress".into()));
        };
        if !field_safe(response) {
            return Err(SaslError::Protocol("unsafe response".into()));
        }
        self.exchange(&cont_line(id, response))
    }
}

/// Reads one LF-terminated line of at most [`MAX_LINE`] bytes.
fn read_line<R: BufRead>(reader: &mut R) -> Result<String, SaslError> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(SaslError::Protocol(
            "auth server closed the connection".into(),
        ));
    }
    if buf.last() != Some(&b'\n') {
        return Err(SaslError::Protocol("over-long or truncated line".into()));
    }
    buf.pop();
    String::from_utf8(buf).map_err(|_| SaslError::Protocol("line is not UTF-8".into()))
}

/// The server's half of the handshake up to DONE; returns the usable mechanisms.
fn read_handshake<R: BufRead>(reader: &mut R) -> Result<Vec<String>, SaslError> {
    let mut mechs = Vec::new();
    let mut version_ok = false;
    for _ in 0..MAX_LINES {
        let line = read_line(reader)?;
        match parse_server_line(&line).map_err(|e| SaslError::Protocol(e.to_string()))? {
            ServerLine::Version { major, .. } => {
                if major != MAJOR {
                    return Err(SaslError::Protocol(format!(
                        "auth server protocol version {major} is not supported"
                    )));
                }
                version_ok = true;
            }
            // Postfix hides private mechanisms and, with the default
            // smtpd_sasl_security_options = noanonymous, anonymous ones.
            ServerLine::Mech { name, flags }
                if !flags.iter().any(|f| f == "private" || f == "anonymous") =>
            {
                mechs.push(name);
            }
            ServerLine::Spid(_) if mechs.is_empty() => {
                // The master socket answers SPID first: a wrong smtpd_sasl_path.
                return Err(SaslError::Protocol(
                    "no mechanisms before SPID; is smtpd_sasl_path the auth-client socket?".into(),
                ));
            }
            ServerLine::Done => {
                if !version_ok {
                    return Err(SaslError::Protocol("no VERSION line".into()));
                }
                return Ok(mechs);
            }
            _ => {}
        }
    }
    Err(SaslError::Protocol("handshake too long".into()))
}

/// Reads until the answer (CONT/OK/FAIL) for `id`.
fn read_answer<R: BufRead>(reader: &mut R, id: u32) -> Result<Step, SaslError> {
    for _ in 0..MAX_LINES {
        let line = read_line(reader)?;
        match parse_server_line(&line).map_err(|e| SaslError::Protocol(e.to_string()))? {
            ServerLine::Cont { id: got, challenge } if got == id => {
                return Ok(Step::Challenge(challenge));
            }
            ServerLine::Ok { id: got, user } if got == id => {
                return user
                    .filter(|u| !u.is_empty())
                    .map(Step::Success)
                    .ok_or_else(|| SaslError::Protocol("OK without user=".into()));
            }
            ServerLine::Fail {
                id: got,
                reason,
                temp,
            } if got == id => {
                return Ok(Step::Failure {
                    reason: reason.unwrap_or_else(|| "authentication failure".into()),
                    temporary: temp,
                });
            }
            _ => {}
        }
    }
    Err(SaslError::Protocol("no answer from the auth server".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn handshake_collects_public_mechanisms() {
        let server = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nMECH\tANONYMOUS\tanonymous\nMECH\tX\tprivate\nSPID\t1\nCUID\t2\nCOOKIE\tab\nDONE\n";
        let mechs = read_handshake(&mut Cursor::new(server)).unwrap();
        assert_eq!(mechs, vec!["PLAIN", "LOGIN"]);
    }

    #[test]
    fn wrong_socket_and_bad_version() {
        assert!(read_handshake(&mut Cursor::new("VERSION\t1\t2\nSPID\t1\nDONE\n")).is_err());
        assert!(read_handshake(&mut Cursor::new("VERSION\t2\t0\nDONE\n")).is_err());
        assert!(read_handshake(&mut Cursor::new("MECH\tPLAIN\nDONE\n")).is_err());
        assert!(read_handshake(&mut Cursor::new("VERSION\t1\t2\n")).is_err());
    }

    #[test]
    fn answers_for_our_id_only() {
        let s = "OK\t9\tuser=x\nCONT\t3\tVXNlcm5hbWU6\n";
        assert_eq!(
            read_answer(&mut Cursor::new(s), 3).unwrap(),
            Step::Challenge("VXNlcm5hbWU6".into())
        );
        let s = "FAIL\t4\treason=bad\n";
        assert_eq!(
            read_answer(&mut Cursor::new(s), 4).unwrap(),
            Step::Failure {
                reason: "bad".into(),
                temporary: false
            }
        );
        assert!(read_answer(&mut Cursor::new("OK\t4\n"), 4).is_err());
    }

    #[test]
    fn over_long_lines_are_refused() {
        let long = format!("CONT\t1\t{}\n", "A".repeat(MAX_LINE + 10));
        assert!(read_answer(&mut Cursor::new(long), 1).is_err());
    }

    #[test]
    fn talks_to_a_fake_server() {
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("rostfix-dovecot-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("auth");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut w = stream.try_clone().unwrap();
            let mut r = BufReader::new(stream);
            let mut got = Vec::new();
            for _ in 0..2 {
                got.push(read_line(&mut r).unwrap());
            }
            w.write_all(b"VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\tx\nDONE\n")
                .unwrap();
            let auth = read_line(&mut r).unwrap();
            w.write_all(b"CONT\t1\tVXNlcm5hbWU6\n").unwrap();
            let cont = read_line(&mut r).unwrap();
            w.write_all(b"OK\t1\tuser=alice\n").unwrap();
            (got, auth, cont)
        });
        let mut client = DovecotClient::new(
            path.to_string_lossy().into_owned(),
            "smtp".into(),
            Duration::from_secs(5),
        );
        assert_eq!(client.mechanisms().unwrap(), vec!["PLAIN", "LOGIN"]);
        let conn = ConnInfo {
            local_ip: None,
            remote_ip: Some("127.0.0.2".parse().unwrap()),
            secured: false,
        };
        assert_eq!(
            client.start("login", None, &conn).unwrap(),
            Step::Challenge("VXNlcm5hbWU6".into())
        );
        assert_eq!(
            client.respond("YWxpY2U=").unwrap(),
            Step::Success("alice".into())
        );
        let (hello, auth, cont) = server.join().unwrap();
        assert!(hello[0].starts_with("VERSION\t1\t"));
        assert!(hello[1].starts_with("CPID\t"));
        assert_eq!(auth, "AUTH\t1\tLOGIN\tservice=smtp\tnologin\trip=127.0.0.2");
        assert_eq!(cont, "CONT\t1\tYWxpY2U=");
        assert_eq!(
            client.start("CRAM-MD5", None, &conn).unwrap(),
            Step::Failure {
                reason: "Invalid authentication mechanism".into(),
                temporary: false
            }
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
