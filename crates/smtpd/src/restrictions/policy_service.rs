//! check_policy_service: one policy server (Postfix's smtpd_check.c and attr_clnt.c).
//! The endpoint is `inet:host:port` or `unix:path` (a relative path is relative to
//! queue_directory, smtpd's working directory after confinement, so `unix:private/policy`
//! reaches a master.cf spawn service), or the braced form
//! `{ inet:host:port, timeout=10s, default_action=DUNNO, ... }` overriding the
//! smtpd_policy_service_* parameters for that server.
//!
//! One connection per server is kept and reused until it has been idle for max_idle,
//! open for max_ttl, or has served request_limit requests. A request that fails (connect,
//! write, read, timeout, garbage) is retried on a fresh connection up to try_limit
//! attempts in all, retry_delay apart; then the caller uses the default action.

use super::policy_codec::{encode_request, read_action, CodecError};
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Inet { host: String, port: String },
    Unix(String),
}

/// The settings of one server: the main.cf parameters, then the braced overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    /// The text as written (for logs: Postfix names the server this way).
    pub name: String,
    pub endpoint: Endpoint,
    pub timeout: Duration,
    pub max_idle: Duration,
    pub max_ttl: Duration,
    pub try_limit: u32,
    pub retry_delay: Duration,
    pub request_limit: u32,
    pub default_action: String,
    pub policy_context: String,
}

/// A check_policy_service argument that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("need inet:host:port or unix:path, got \"{0}\"")]
    Endpoint(String),
    #[error("unknown attribute \"{0}\" in braced policy service")]
    Attribute(String),
    #[error("bad value for {0}: \"{1}\"")]
    Value(String, String),
}

/// Why a request did not produce an action.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("write: {0}")]
    Write(std::io::Error),
    #[error(transparent)]
    Answer(#[from] CodecError),
}

impl PolicySpec {
    /// Parses `arg` with `defaults` giving every setting not overridden.
    pub fn parse(arg: &str, defaults: &PolicySpec) -> Result<PolicySpec, SpecError> {
        let trimmed = arg.trim();
        let mut spec = defaults.clone();
        let server = match trimmed.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(inner) => {
                let mut items = inner
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty());
                let server = items.next().unwrap_or("").to_string();
                // Values such as default_action contain spaces, so the attributes are
                // re-split at commas only after the server name.
                let after = inner.trim_start();
                let after = after.get(server.len()..).unwrap_or("");
                for attr in after.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let (k, v) = attr
                        .split_once('=')
                        .ok_or_else(|| SpecError::Attribute(attr.to_string()))?;
                    spec.set(k.trim(), v.trim())?;
                }
                server
            }
            None => trimmed.to_string(),
        };
        spec.endpoint = parse_endpoint(&server)?;
        spec.name = server;
        Ok(spec)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), SpecError> {
        let bad = || SpecError::Value(key.to_string(), value.to_string());
        let time = || rostfix_config::parse_time(value, 's').map(Duration::from_secs);
        let count = || value.parse::<u32>().ok();
        match key {
            "timeout" => self.timeout = time().ok_or_else(bad)?,
            "max_idle" => self.max_idle = time().ok_or_else(bad)?,
            "max_ttl" => self.max_ttl = time().ok_or_else(bad)?,
            "retry_delay" => self.retry_delay = time().ok_or_else(bad)?,
            "try_limit" => self.try_limit = count().filter(|n| *n > 0).ok_or_else(bad)?,
            "request_limit" => self.request_limit = count().ok_or_else(bad)?,
            "default_action" => self.default_action = value.to_string(),
            "policy_context" => self.policy_context = value.to_string(),
            _ => return Err(SpecError::Attribute(key.to_string())),
        }
        Ok(())
    }

    /// Postfix's defaults, for lists parsed without a main.cf.
    pub fn builtin() -> PolicySpec {
        PolicySpec {
            name: String::new(),
            endpoint: Endpoint::Unix(String::new()),
            timeout: Duration::from_secs(100),
            max_idle: Duration::from_secs(300),
            max_ttl: Duration::from_secs(1000),
            try_limit: 2,
            retry_delay: Duration::from_secs(1),
            request_limit: 0,
            default_action: "451 4.3.5 Server configuration problem".into(),
            policy_context: String::new(),
        }
    }

    /// The main.cf settings (smtpd_policy_service_*), no endpoint yet.
    pub fn from_main_cf(cf: &rostfix_config::MainCf) -> PolicySpec {
        PolicySpec {
            name: String::new(),
            endpoint: Endpoint::Unix(String::new()),
            timeout: cf.get_time("smtpd_policy_service_timeout"),
            max_idle: cf.get_time("smtpd_policy_service_max_idle"),
            max_ttl: cf.get_time("smtpd_policy_service_max_ttl"),
            try_limit: cf.get_u32("smtpd_policy_service_try_limit").max(1),
            retry_delay: cf.get_time("smtpd_policy_service_retry_delay"),
            request_limit: cf.get_u32("smtpd_policy_service_request_limit"),
            default_action: cf.get("smtpd_policy_service_default_action"),
            policy_context: cf.get("smtpd_policy_service_policy_context"),
        }
    }
}

fn parse_endpoint(server: &str) -> Result<Endpoint, SpecError> {
    let bad = || SpecError::Endpoint(server.to_string());
    match server.split_once(':') {
        Some(("inet", rest)) => {
            // `inet:host:port`, `inet:[::1]:port`.
            let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || port.is_empty() {
                return Err(bad());
            }
            Ok(Endpoint::Inet {
                host: host.to_string(),
                port: port.to_string(),
            })
        }
        Some(("unix", path)) if !path.is_empty() => Ok(Endpoint::Unix(path.to_string())),
        _ => Err(bad()),
    }
}

/// An open connection and what decides its reuse.
struct Conn {
    reader: BufReader<Deadlined>,
    opened: Instant,
    last_used: Instant,
    requests: u32,
}

/// Both socket kinds, with their timeouts set.
trait Stream: std::io::Read + Write + Send {
    fn try_clone_box(&self) -> std::io::Result<Box<dyn Stream>>;
}

impl Stream for TcpStream {
    fn try_clone_box(&self) -> std::io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
}

impl Stream for UnixStream {
    fn try_clone_box(&self) -> std::io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
}

/// A socket whose reads fail once the current request's deadline has passed, so a
/// server trickling bytes just inside the per-read timeout still cannot hold smtpd
/// longer than about twice the time limit.
struct Deadlined {
    inner: Box<dyn Stream>,
    deadline: Instant,
}

impl std::io::Read for Deadlined {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if Instant::now() >= self.deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "policy server time limit exceeded",
            ));
        }
        self.inner.read(buf)
    }
}

/// One policy server and its kept connection.
pub struct PolicyClient {
    pub spec: PolicySpec,
    conn: Mutex<Option<Conn>>,
}

impl std::fmt::Debug for PolicyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PolicyClient({})", self.spec.name)
    }
}

impl PolicyClient {
    pub fn new(spec: PolicySpec) -> PolicyClient {
        PolicyClient {
            spec,
            conn: Mutex::new(None),
        }
    }

    /// Sends `attrs` and returns the server's action, retrying as try_limit says.
    pub fn query(&self, attrs: &[(&str, String)]) -> Result<String, PolicyError> {
        let request = encode_request(attrs);
        let mut guard = match self.conn.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut last = None;
        for attempt in 0..self.spec.try_limit.max(1) {
            if attempt > 0 {
                std::thread::sleep(self.spec.retry_delay);
            }
            let now = Instant::now();
            if guard.as_ref().is_some_and(|c| self.expired(c, now)) {
                *guard = None;
            }
            if guard.is_none() {
                match self.connect() {
                    Ok(c) => *guard = Some(c),
                    Err(e) => {
                        log::warn!("connect to {}: {e}", self.spec.name);
                        last = Some(e);
                        continue;
                    }
                }
            }
            let Some(conn) = guard.as_mut() else { continue };
            match exchange(conn, &request, self.spec.timeout) {
                Ok(action) => {
                    conn.requests += 1;
                    conn.last_used = Instant::now();
                    return Ok(action);
                }
                Err(e) => {
                    // A kept connection the server closed is normal; a fresh one
                    // that fails is the server's problem, worth a warning.
                    log::warn!("problem talking to server {}: {e}", self.spec.name);
                    *guard = None;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(PolicyError::Answer(CodecError::Eof)))
    }

    fn expired(&self, c: &Conn, now: Instant) -> bool {
        now.duration_since(c.last_used) >= self.spec.max_idle
            || now.duration_since(c.opened) >= self.spec.max_ttl
            || (self.spec.request_limit > 0 && c.requests >= self.spec.request_limit)
    }

    fn connect(&self) -> Result<Conn, PolicyError> {
        let t = Some(self.spec.timeout.max(Duration::from_millis(1)));
        let stream: Box<dyn Stream> = match &self.spec.endpoint {
            Endpoint::Inet { host, port } => {
                let addrs = (host.as_str(), port.parse::<u16>().unwrap_or(0))
                    .to_socket_addrs()
                    .map_err(PolicyError::Connect)?;
                let mut last = None;
                let mut ok = None;
                for a in addrs {
                    match TcpStream::connect_timeout(&a, self.spec.timeout) {
                        Ok(s) => {
                            ok = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let s = ok.ok_or_else(|| {
                    PolicyError::Connect(last.unwrap_or_else(|| {
                        std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
                    }))
                })?;
                s.set_read_timeout(t).map_err(PolicyError::Connect)?;
                s.set_write_timeout(t).map_err(PolicyError::Connect)?;
                Box::new(s)
            }
            Endpoint::Unix(path) => {
                let s = UnixStream::connect(path).map_err(PolicyError::Connect)?;
                s.set_read_timeout(t).map_err(PolicyError::Connect)?;
                s.set_write_timeout(t).map_err(PolicyError::Connect)?;
                Box::new(s)
            }
        };
        let now = Instant::now();
        Ok(Conn {
            reader: BufReader::new(Deadlined {
                inner: stream,
                deadline: now,
            }),
            opened: now,
            last_used: now,
            requests: 0,
        })
    }
}

/// One request and its answer, within `limit`.
fn exchange(conn: &mut Conn, request: &[u8], limit: Duration) -> Result<String, PolicyError> {
    conn.reader.get_mut().deadline = Instant::now() + limit;
    let mut w = conn
        .reader
        .get_ref()
        .inner
        .try_clone_box()
        .map_err(PolicyError::Write)?;
    w.write_all(request).map_err(PolicyError::Write)?;
    w.flush().map_err(PolicyError::Write)?;
    Ok(read_action(&mut conn.reader)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Read};
    use std::net::TcpListener;

    fn defaults() -> PolicySpec {
        PolicySpec {
            retry_delay: Duration::from_millis(10),
            ..PolicySpec::builtin()
        }
    }

    #[test]
    fn plain_and_braced_forms() {
        let s = PolicySpec::parse("inet:127.0.0.1:10023", &defaults()).unwrap();
        assert_eq!(
            s.endpoint,
            Endpoint::Inet {
                host: "127.0.0.1".into(),
                port: "10023".into()
            }
        );
        assert_eq!(s.name, "inet:127.0.0.1:10023");
        let s = PolicySpec::parse("unix:private/policy-spf", &defaults()).unwrap();
        assert_eq!(s.endpoint, Endpoint::Unix("private/policy-spf".into()));
        let s = PolicySpec::parse(
            "{ inet:[::1]:9998, timeout=10s, default_action=DUNNO, try_limit=1, \
             policy_context=submission, max_idle=5, request_limit=3 }",
            &defaults(),
        )
        .unwrap();
        assert_eq!(
            s.endpoint,
            Endpoint::Inet {
                host: "::1".into(),
                port: "9998".into()
            }
        );
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.default_action, "DUNNO");
        assert_eq!(s.try_limit, 1);
        assert_eq!(s.policy_context, "submission");
        assert_eq!(s.max_idle, Duration::from_secs(5));
        assert_eq!(s.request_limit, 3);
        let s = PolicySpec::parse(
            "{inet:127.0.0.1:1, default_action=450 4.7.1 try later}",
            &defaults(),
        )
        .unwrap();
        assert_eq!(s.default_action, "450 4.7.1 try later");
        assert!(PolicySpec::parse("127.0.0.1:10023", &defaults()).is_err());
        assert!(PolicySpec::parse("{ inet:h:1, colour=blue }", &defaults()).is_err());
        assert!(PolicySpec::parse("{ inet:h:1, timeout=soon }", &defaults()).is_err());
    }

    /// A server answering each request on one connection with `action=DUNNO n`.
    fn counting_server(listener: TcpListener, conns: usize) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for _ in 0..conns {
                let Ok((s, _)) = listener.accept() else {
                    return;
                };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                let mut n = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\n" {
                        n += 1;
                        let _ = w.write_all(format!("action=DUNNO {n}\n\n").as_bytes());
                    }
                }
            }
        })
    }

    #[test]
    fn reuses_the_connection_up_to_request_limit() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = counting_server(l, 2);
        let mut d = defaults();
        d.request_limit = 2;
        let c =
            PolicyClient::new(PolicySpec::parse(&format!("inet:127.0.0.1:{port}"), &d).unwrap());
        let req = [("request", "smtpd_access_policy".to_string())];
        assert_eq!(c.query(&req).unwrap(), "DUNNO 1");
        assert_eq!(c.query(&req).unwrap(), "DUNNO 2");
        // The limit closes the connection: a new one counts from 1 again.
        assert_eq!(c.query(&req).unwrap(), "DUNNO 1");
        drop(c);
        h.join().unwrap();
    }

    #[test]
    fn a_silent_server_times_out_and_garbage_is_an_error() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            // Accept both tries and say nothing until the client gives up.
            let mut kept = Vec::new();
            for _ in 0..2 {
                if let Ok((s, _)) = l.accept() {
                    kept.push(s);
                }
            }
            for mut s in kept {
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        });
        let mut d = defaults();
        d.timeout = Duration::from_millis(200);
        let c =
            PolicyClient::new(PolicySpec::parse(&format!("inet:127.0.0.1:{port}"), &d).unwrap());
        let start = Instant::now();
        assert!(c.query(&[("request", "x".to_string())]).is_err());
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(c);
        h.join().unwrap();

        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            for _ in 0..2 {
                if let Ok((mut s, _)) = l.accept() {
                    let _ = s.write_all(b"HTTP/1.0 200 OK\n\n");
                }
            }
        });
        let c =
            PolicyClient::new(PolicySpec::parse(&format!("inet:127.0.0.1:{port}"), &d).unwrap());
        assert!(matches!(
            c.query(&[("request", "x".to_string())]),
            Err(PolicyError::Answer(CodecError::Malformed))
        ));
        h.join().unwrap();
    }
}
