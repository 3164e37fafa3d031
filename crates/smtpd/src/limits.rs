//! The protocol-safety and abuse-limit parameters of smtpd (read with the other
//! settings, before confinement), and the small policies built on them:
//!
//! - `smtpd_soft_error_limit` / `smtpd_error_sleep_time`: past the soft limit every
//!   error reply is delayed (the hard limit, in session/mod.rs, hangs up);
//! - `smtpd_forbid_bare_newline` (`no`, `normalize`, `yes` = `reject`) with
//!   `smtpd_forbid_bare_newline_reject_code` and `_exclusions` (Postfix 3.9);
//! - `header_size_limit`: the longest single (logical, folded) header line;
//! - `disable_vrfy_command`, `smtputf8_enable`;
//! - `smtpd_forbid_unauth_pipelining` (Postfix 3.9, default yes): see
//!   [`ProtoSettings::forbids_pipelining`];
//! - `rostfix_smtpd_greet_pause`: the pre-greeting check (see [`pregreet_check`]);
//! - the anvil client limits (`smtpd_client_*_limit`, with
//!   `smtpd_client_event_limit_exceptions`), enforced through [`crate::anvil_client`].

use crate::cidr::{Cidr, NetworkList};
use crate::settings::SettingsError;
use rostfix_config::MainCf;
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

/// smtpd_forbid_bare_newline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareNewline {
    /// Bare LF ends a line (the historical behaviour); end of data stays CR LF . CR LF.
    No,
    /// Postfix 3.9's default: the same, stated as "normalize to CR LF".
    Normalize,
    /// Reject a command or message that contains a bare LF.
    Reject,
}

/// The per-client rate and count limits smtpd asks anvil about (0 = no limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLimits {
    pub connection_count: u32,
    pub connection_rate: u32,
    pub message_rate: u32,
    pub recipient_rate: u32,
    pub auth_rate: u32,
}

impl ClientLimits {
    /// Whether any limit is set (if none, smtpd does not talk to anvil at all).
    pub fn any(&self) -> bool {
        self.connection_count > 0
            || self.connection_rate > 0
            || self.message_rate > 0
            || self.recipient_rate > 0
            || self.auth_rate > 0
    }
}

/// What smtpd needs for protocol safety and limits.
#[derive(Debug, Clone)]
pub struct ProtoSettings {
    pub soft_error_limit: u32,
    pub error_sleep_time: Duration,
    pub bare_newline: BareNewline,
    pub bare_newline_code: u16,
    pub bare_newline_exclusions: NetworkList,
    pub header_size_limit: usize,
    pub disable_vrfy: bool,
    pub smtputf8_enable: bool,
    /// rostfix_requiretls_enable: REQUIRETLS offered on TLS sessions.
    pub requiretls_enable: bool,
    /// rostfix_smtpd_greet_pause; zero = off.
    pub greet_pause: Duration,
    /// smtpd_forbid_unauth_pipelining.
    pub forbid_unauth_pipelining: bool,
    pub client_limits: ClientLimits,
    pub limit_exceptions: NetworkList,
}

impl ProtoSettings {
    /// Reads the parameters through the configuration's typed getters (defaults live in
    /// its parameter registry). Values of the wrong type were refused when main.cf was
    /// loaded; an unusable value of the right type is reported the same way.
    pub fn from_config(
        cf: &MainCf,
        warnings: &mut Vec<String>,
    ) -> Result<ProtoSettings, SettingsError> {
        let bare_newline = match cf
            .get("smtpd_forbid_bare_newline")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "yes" | "reject" => BareNewline::Reject,
            "normalize" => BareNewline::Normalize,
            "no" => BareNewline::No,
            _ => {
                return Err(cf
                    .bad_value("smtpd_forbid_bare_newline", "expected yes, no or normalize")
                    .into())
            }
        };
        let code_param = "smtpd_forbid_bare_newline_reject_code";
        let bare_newline_code = match cf.get_u64(code_param) {
            code @ 400..=599 => code as u16,
            _ => {
                return Err(cf
                    .bad_value(code_param, "expected a 4xx or 5xx code")
                    .into())
            }
        };
        Ok(ProtoSettings {
            soft_error_limit: cf.get_u32("smtpd_soft_error_limit"),
            error_sleep_time: cf.get_time("smtpd_error_sleep_time"),
            bare_newline,
            bare_newline_code,
            bare_newline_exclusions: networks(
                cf,
                "smtpd_forbid_bare_newline_exclusions",
                warnings,
            )?,
            header_size_limit: cf.get_u64("header_size_limit").max(1) as usize,
            disable_vrfy: cf.get_bool("disable_vrfy_command"),
            smtputf8_enable: cf.get_bool("smtputf8_enable"),
            requiretls_enable: cf.get_bool("rostfix_requiretls_enable"),
            greet_pause: cf.get_time("rostfix_smtpd_greet_pause"),
            forbid_unauth_pipelining: cf.get_bool("smtpd_forbid_unauth_pipelining"),
            client_limits: ClientLimits {
                connection_count: cf.get_u32("smtpd_client_connection_count_limit"),
                connection_rate: cf.get_u32("smtpd_client_connection_rate_limit"),
                message_rate: cf.get_u32("smtpd_client_message_rate_limit"),
                recipient_rate: cf.get_u32("smtpd_client_recipient_rate_limit"),
                auth_rate: cf.get_u32("smtpd_client_auth_rate_limit"),
            },
            limit_exceptions: networks(cf, "smtpd_client_event_limit_exceptions", warnings)?,
        })
    }

    /// Whether a client at `ip` must not send bare LF (None: a local socket client,
    /// which is treated like an excluded one).
    pub fn rejects_bare_lf(&self, ip: Option<IpAddr>) -> bool {
        self.bare_newline == BareNewline::Reject
            && ip.is_some_and(|ip| !self.bare_newline_exclusions.contains(ip))
    }

    /// Whether improper pipelining ends the session of a client at `ip` that has not
    /// authenticated. Local-socket clients (None) are left alone, as with bare LF: they
    /// are local programs, not the network senders this stops.
    pub fn forbids_pipelining(&self, ip: Option<IpAddr>, authenticated: bool) -> bool {
        self.forbid_unauth_pipelining && ip.is_some() && !authenticated
    }

    /// Whether the anvil limits apply to a client at `ip`.
    pub fn limits_apply(&self, ip: Option<IpAddr>) -> bool {
        self.client_limits.any() && ip.is_some_and(|ip| !self.limit_exceptions.contains(ip))
    }
}

/// How long to pause before an error reply, given the session's error count so far
/// (Postfix: after more than smtpd_soft_error_limit errors).
pub fn error_delay(settings: &ProtoSettings, errors: u32) -> Option<Duration> {
    (errors > settings.soft_error_limit && !settings.error_sleep_time.is_zero())
        .then_some(settings.error_sleep_time)
}

/// What the pre-greeting check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreGreet {
    /// Silent for the whole pause: a well-behaved client.
    Quiet,
    /// Sent data before our greeting (the first bytes, for the log).
    Talked(Vec<u8>),
    /// Closed the connection during the pause.
    Closed,
}

/// Waits `pause` before the greeting and reports whether the client talked first
/// (Postfix's postscreen "pregreet" test, done in smtpd). Uses `peek`, so nothing the
/// client sent is consumed; restores the session's read timeout afterwards.
pub fn pregreet_check(
    stream: &TcpStream,
    pause: Duration,
    session_timeout: Duration,
) -> std::io::Result<PreGreet> {
    let deadline = Instant::now() + pause;
    let mut buf = [0u8; 64];
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break PreGreet::Quiet;
        }
        stream.set_read_timeout(Some(left))?;
        match stream.peek(&mut buf) {
            Ok(0) => break PreGreet::Closed,
            Ok(n) => break PreGreet::Talked(buf[..n].to_vec()),
            Err(e) if crate::io::is_timeout(&e) => break PreGreet::Quiet,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    stream.set_read_timeout(Some(session_timeout))?;
    Ok(outcome)
}

/// Follows the length of the current logical (folded) header line of stored content
/// (LF line endings) and says when one exceeds header_size_limit.
#[derive(Debug, Clone)]
pub struct HeaderSizeGuard {
    limit: usize,
    in_header: bool,
    at_line_start: bool,
    /// Length of the line being read, including earlier folded lines of the header.
    current: usize,
    exceeded: bool,
}

impl HeaderSizeGuard {
    pub fn new(limit: usize) -> HeaderSizeGuard {
        HeaderSizeGuard {
            limit,
            in_header: true,
            at_line_start: true,
            current: 0,
            exceeded: false,
        }
    }

    /// Whether some header was longer than the limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Feeds stored content in any pieces.
    pub fn feed(&mut self, data: &[u8]) {
        for &b in data {
            if !self.in_header {
                return;
            }
            if self.at_line_start {
                match b {
                    b'\n' => {
                        // The empty line: the header is over.
                        self.in_header = false;
                        return;
                    }
                    b' ' | b'\t' => {}
                    _ => self.current = 0,
                }
                self.at_line_start = false;
            }
            if b == b'\n' {
                self.at_line_start = true;
            } else {
                self.current = self.current.saturating_add(1);
                if self.current > self.limit {
                    self.exceeded = true;
                }
            }
        }
    }
}

/// A network list parameter (the table gives the default, e.g. `$mynetworks`, so an
/// explicitly empty value means "nobody"). Lookup tables are not supported here yet:
/// they are skipped with a warning.
fn networks(
    cf: &MainCf,
    name: &'static str,
    warnings: &mut Vec<String>,
) -> Result<NetworkList, SettingsError> {
    let v = cf.get(name);
    let mut patterns = Vec::new();
    for item in v
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|i| !i.is_empty())
    {
        if Cidr::parse(item).is_err() && (item.starts_with('/') || item.contains(':')) {
            warnings.push(format!(
                "{name}: lookup table {item} is not supported yet; ignored"
            ));
        } else {
            patterns.push(item);
        }
    }
    Ok(NetworkList::parse(patterns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::test_config;

    fn load(pairs: &[(&str, &str)]) -> Result<ProtoSettings, SettingsError> {
        let mut pairs = pairs.to_vec();
        pairs.insert(0, ("mynetworks", "127.0.0.0/8"));
        ProtoSettings::from_config(&test_config(&pairs)?, &mut Vec::new())
    }

    #[test]
    fn values_and_defaults() {
        let s = load(&[
            ("smtpd_forbid_bare_newline", "normalize"),
            ("smtpd_client_connection_count_limit", "3"),
            ("smtpd_client_event_limit_exceptions", ""),
            ("rostfix_smtpd_greet_pause", "2s"),
            ("disable_vrfy_command", "yes"),
        ])
        .unwrap();
        assert_eq!(s.bare_newline, BareNewline::Normalize);
        assert_eq!(s.client_limits.connection_count, 3);
        assert!(s.limits_apply("127.0.0.1".parse().ok()));
        assert_eq!(s.greet_pause, Duration::from_secs(2));
        assert!(s.disable_vrfy);
        assert!(!s.rejects_bare_lf("192.0.2.1".parse().ok()));
        let s = load(&[
            ("smtpd_forbid_bare_newline_exclusions", "192.0.2.0/24"),
            ("smtpd_client_event_limit_exceptions", "127.0.0.1"),
        ])
        .unwrap();
        assert!(s.rejects_bare_lf("127.0.0.1".parse().ok()));
        assert!(!s.rejects_bare_lf("192.0.2.7".parse().ok()));
        assert!(!s.limits_apply("127.0.0.1".parse().ok()));
        assert!(s.forbid_unauth_pipelining, "Postfix 3.9's default");
        let s = load(&[("smtpd_forbid_unauth_pipelining", "no")]).unwrap();
        assert!(!s.forbids_pipelining("192.0.2.7".parse().ok(), false));
        assert!(load(&[("smtpd_forbid_unauth_pipelining", "maybe")]).is_err());
        assert!(load(&[("smtpd_forbid_bare_newline", "maybe")]).is_err());
        assert!(load(&[("smtpd_forbid_bare_newline_reject_code", "250")]).is_err());
    }

    #[test]
    fn error_delay_after_soft_limit() {
        let s = load(&[
            ("smtpd_soft_error_limit", "2"),
            ("smtpd_error_sleep_time", "1s"),
        ])
        .unwrap();
        assert_eq!(error_delay(&s, 2), None);
        assert_eq!(error_delay(&s, 3), Some(Duration::from_secs(1)));
    }

    #[test]
    fn header_size_guard_counts_folded_headers() {
        let mut g = HeaderSizeGuard::new(10);
        g.feed(b"A: 1234567\n");
        assert!(!g.exceeded());
        g.feed(b"B: 12\n 3456789\n");
        assert!(g.exceeded(), "folded lines count together");
        let mut g = HeaderSizeGuard::new(10);
        g.feed(b"A: 1\n\nbody line far longer than ten bytes\n");
        assert!(!g.exceeded(), "the body is not a header");
        let mut g = HeaderSizeGuard::new(10);
        for b in b"A: 12345678" {
            g.feed(&[*b]);
        }
        assert!(g.exceeded());
    }

    #[test]
    fn pregreet_sees_early_talkers() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut early = TcpStream::connect(addr).unwrap();
        early.write_all(b"EHLO x\r\n").unwrap();
        let (server, _) = listener.accept().unwrap();
        let got =
            pregreet_check(&server, Duration::from_millis(300), Duration::from_secs(5)).unwrap();
        assert_eq!(got, PreGreet::Talked(b"EHLO x\r\n".to_vec()));
        let _quiet = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        let got =
            pregreet_check(&server, Duration::from_millis(100), Duration::from_secs(5)).unwrap();
        assert_eq!(got, PreGreet::Quiet);
        assert_eq!(server.read_timeout().unwrap(), Some(Duration::from_secs(5)));
    }
}
