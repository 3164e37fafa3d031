//! Postfix's XCLIENT and XFORWARD commands, for the trusted proxies and content
//! filters listed in smtpd_authorized_xclient_hosts / smtpd_authorized_xforward_hosts
//! (matched once, against the client that connected).
//!
//! XCLIENT (NAME REVERSE_NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT) replaces
//! who the client is for everything after it (logs, restrictions, mynetworks, the
//! Received header) and starts the session over with a new greeting. XFORWARD (NAME
//! ADDR PORT PROTO HELO IDENT SOURCE) describes the original client of the next message
//! only: the `client=` log line (`orig_client=`) and the queue file's log_* attributes,
//! then it is forgotten. Our own Received header names the session's real client, as
//! Postfix's does. Values are
//! xtext (RFC 3461); `[UNAVAILABLE]` and `[TEMPUNAVAIL]` say the proxy does not know.
//! Every replacement of the client's identity happens in [`Session::replace_client`].

use super::Session;
use crate::client::ClientInfo;
use crate::reply::Reply;
use crate::sink::QueueSink;
use std::net::IpAddr;

const UNAVAILABLE: &str = "[UNAVAILABLE]";
const TEMPUNAVAIL: &str = "[TEMPUNAVAIL]";

/// What XFORWARD said about the next message's original client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Forwarded {
    pub name: Option<String>,
    pub addr: Option<String>,
    pub helo: Option<String>,
    pub proto: Option<String>,
    pub ident: Option<String>,
}

/// Why an XCLIENT/XFORWARD line is refused: the 501 reply text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AttrError {
    #[error("Bad {cmd} attribute name: {name}")]
    Name { cmd: &'static str, name: String },
    #[error("Bad {cmd} {attr} syntax: {value}")]
    Value {
        cmd: &'static str,
        attr: &'static str,
        value: String,
    },
}

/// RFC 3461 xtext: `+XX` is a hex-coded byte. None when malformed or not UTF-8.
fn xtext_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

/// `NAME=value` pairs, names upper-cased and values decoded.
fn attributes(cmd: &'static str, args: &str) -> Result<Vec<(String, String)>, AttrError> {
    let mut out = Vec::new();
    for word in args.split([' ', '\t']).filter(|w| !w.is_empty()) {
        let Some((name, value)) = word.split_once('=') else {
            return Err(AttrError::Name {
                cmd,
                name: word.to_string(),
            });
        };
        let value = xtext_decode(value).ok_or_else(|| AttrError::Value {
            cmd,
            attr: "attribute",
            value: value.to_string(),
        })?;
        out.push((name.to_ascii_uppercase(), value));
    }
    Ok(out)
}

/// An address as XCLIENT/XFORWARD send it (`IPV6:` prefix allowed).
fn parse_addr(value: &str) -> Option<IpAddr> {
    let v = value
        .strip_prefix("IPV6:")
        .or_else(|| value.strip_prefix("ipv6:"))
        .unwrap_or(value);
    v.parse().ok()
}

/// A value that is a known value, not `[UNAVAILABLE]` / `[TEMPUNAVAIL]`.
fn known(value: String) -> Option<String> {
    (value != UNAVAILABLE && value != TEMPUNAVAIL).then_some(value)
}

fn bad(cmd: &'static str, attr: &'static str, value: &str) -> AttrError {
    AttrError::Value {
        cmd,
        attr,
        value: value.to_string(),
    }
}

/// What an XCLIENT line asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct XclientRequest {
    name: Option<Option<String>>,
    addr: Option<IpAddr>,
    /// PORT, DESTADDR, DESTPORT: what milters are told ({client_port}, {daemon_addr},
    /// {daemon_port}).
    port: Option<u16>,
    dest_addr: Option<IpAddr>,
    dest_port: Option<u16>,
    helo: Option<Option<String>>,
    proto_esmtp: Option<bool>,
    login: Option<Option<String>>,
}

pub(super) fn parse_xclient(args: &str) -> Result<XclientRequest, AttrError> {
    const CMD: &str = "XCLIENT";
    let mut r = XclientRequest::default();
    for (name, value) in attributes(CMD, args)? {
        match name.as_str() {
            "NAME" => r.name = Some(known(value)),
            "ADDR" => {
                if let Some(v) = known(value.clone()) {
                    r.addr = Some(parse_addr(&v).ok_or_else(|| bad(CMD, "ADDR", &value))?);
                }
            }
            "PORT" | "DESTPORT" => {
                if known(value.clone()).is_some() {
                    let port = value.parse::<u16>().map_err(|_| bad(CMD, "PORT", &value))?;
                    if name == "PORT" {
                        r.port = Some(port);
                    } else {
                        r.dest_port = Some(port);
                    }
                }
            }
            "DESTADDR" => {
                if known(value.clone()).is_some() {
                    r.dest_addr =
                        Some(parse_addr(&value).ok_or_else(|| bad(CMD, "DESTADDR", &value))?);
                }
            }
            "PROTO" => match value.to_ascii_uppercase().as_str() {
                "SMTP" => r.proto_esmtp = Some(false),
                "ESMTP" => r.proto_esmtp = Some(true),
                _ => return Err(bad(CMD, "PROTO", &value)),
            },
            "HELO" => r.helo = Some(known(value)),
            "LOGIN" => r.login = Some(known(value)),
            // Accepted and not used (no reverse-name checks distinguish it yet).
            "REVERSE_NAME" => {}
            _ => return Err(AttrError::Name { cmd: CMD, name }),
        }
    }
    Ok(r)
}

pub(super) fn parse_xforward(args: &str, f: &mut Forwarded) -> Result<(), AttrError> {
    const CMD: &str = "XFORWARD";
    for (name, value) in attributes(CMD, args)? {
        match name.as_str() {
            "NAME" => f.name = known(value),
            "ADDR" => {
                f.addr = match known(value.clone()) {
                    Some(v) => Some(
                        parse_addr(&v)
                            .map(|ip| crate::cidr::normalize_ip(ip).to_string())
                            .ok_or_else(|| bad(CMD, "ADDR", &value))?,
                    ),
                    None => None,
                }
            }
            "PORT" => {
                if known(value.clone()).is_some() && value.parse::<u16>().is_err() {
                    return Err(bad(CMD, "PORT", &value));
                }
            }
            "PROTO" => {
                let upper = value.to_ascii_uppercase();
                if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(bad(CMD, "PROTO", &value));
                }
                f.proto = known(upper);
            }
            "HELO" => f.helo = known(value),
            "IDENT" => f.ident = known(value),
            "SOURCE" => match value.to_ascii_uppercase().as_str() {
                "LOCAL" | "REMOTE" => {}
                _ if value == UNAVAILABLE => {}
                _ => return Err(bad(CMD, "SOURCE", &value)),
            },
            _ => return Err(AttrError::Name { cmd: CMD, name }),
        }
    }
    Ok(())
}

impl<S: QueueSink> Session<'_, S> {
    /// The one place where the client's identity is replaced (XCLIENT; the PROXY
    /// header is applied before the session exists, in connection.rs): logs,
    /// restrictions and mynetworks see the new client from here on.
    pub(super) fn replace_client(&mut self, client: ClientInfo) {
        self.trusted = client.ip.is_some_and(|ip| self.cfg.mynetworks.contains(ip));
        self.client = client;
    }

    /// The original client XFORWARD named: `name[addr]`, each part falling back to
    /// the session's own, as Postfix's FORWARD_NAMADDR.
    fn forwarded_namaddr(&self) -> Option<String> {
        let f = self.forward.as_ref()?;
        if f.name.is_none() && f.addr.is_none() && f.helo.is_none() && f.proto.is_none() {
            return None;
        }
        let name = f.name.clone().unwrap_or_else(|| self.client.name.clone());
        let addr = f.addr.clone().unwrap_or_else(|| self.client.addr());
        Some(format!("{name}[{addr}]"))
    }

    /// The tail of the `client=` log line under XFORWARD: `, orig_queue_id=ID` and
    /// `, orig_client=name[addr]`, as Postfix logs mail a content filter re-injects.
    pub(super) fn forwarded_log(&self) -> String {
        let mut out = String::new();
        if let Some(ident) = self.forward.as_ref().and_then(|f| f.ident.as_deref()) {
            out.push_str(&format!(", orig_queue_id={ident}"));
        }
        if let Some(namaddr) = self.forwarded_namaddr() {
            out.push_str(&format!(", orig_client={namaddr}"));
        }
        out
    }

    /// Queue-file attributes for the original client (Postfix's log_client_name,
    /// log_client_address, log_helo_name, log_protocol, log_ident), so later logs of
    /// the message can name it.
    pub(super) fn forwarded_attrs(&self) -> Vec<(String, String)> {
        let Some(f) = self.forward.as_ref() else {
            return Vec::new();
        };
        [
            ("log_client_name", &f.name),
            ("log_client_address", &f.addr),
            ("log_helo_name", &f.helo),
            ("log_protocol", &f.proto),
            ("log_ident", &f.ident),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_string(), v.clone())))
        .collect()
    }

    /// `XCLIENT attr=value...`; on success the reply is the new greeting.
    pub(super) fn xclient(&mut self, args: &str) -> Reply {
        if args.trim().is_empty() {
            return Reply::new(501, "5.5.4", "Syntax: XCLIENT attribute=value...");
        }
        if !self.xclient_allowed {
            return Reply::new(550, "5.7.0", "Error: insufficient authorization");
        }
        if self.txn.is_some() {
            return Reply::new(503, "5.5.1", "Error: MAIL transaction in progress");
        }
        let req = match parse_xclient(args) {
            Ok(r) => r,
            Err(e) => return Reply::new(501, "5.5.4", e.to_string()),
        };
        let mut client = match req.addr {
            Some(ip) => ClientInfo {
                server: self.client.server,
                ..ClientInfo::from_ip(ip)
            },
            None => self.client.clone(),
        };
        if let Some(port) = req.port {
            client.port = port;
        }
        if req.dest_addr.is_some() || req.dest_port.is_some() {
            let old = client.server;
            let ip = req.dest_addr.or(old.map(|s| s.ip()));
            let port = req.dest_port.or(old.map(|s| s.port())).unwrap_or(0);
            client.server = ip.map(|ip| std::net::SocketAddr::new(ip, port));
        }
        if let Some(name) = req.name {
            client.name = name.unwrap_or_else(|| "unknown".into());
        }
        log::info!(
            "XCLIENT {} replaces {}",
            client.log_name(),
            self.client.log_name()
        );
        self.replace_client(client);
        // The session starts over as Postfix's does: a new greeting, no HELO
        // unless XCLIENT named one, no AUTH unless it gave a LOGIN.
        self.helo = req.helo.flatten();
        self.esmtp = req.proto_esmtp.unwrap_or(false);
        self.forward = None;
        self.auth = crate::auth::AuthState::default();
        if let Some(Some(login)) = req.login {
            self.auth.username = Some(login);
        }
        Reply::plain(220, vec![self.cfg.banner.clone()])
    }

    /// `XFORWARD attr=value...`.
    pub(super) fn xforward(&mut self, args: &str) -> Reply {
        if args.trim().is_empty() {
            return Reply::new(501, "5.5.4", "Syntax: XFORWARD attribute=value...");
        }
        if !self.xforward_allowed {
            return Reply::new(550, "5.7.0", "Error: insufficient authorization");
        }
        if self.txn.is_some() {
            return Reply::new(503, "5.5.1", "Error: MAIL transaction in progress");
        }
        let mut f = self.forward.take().unwrap_or_default();
        let result = parse_xforward(args, &mut f);
        self.forward = Some(f);
        match result {
            Ok(()) => Reply::new(250, "2.0.0", "Ok"),
            Err(e) => Reply::new(501, "5.5.4", e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext() {
        assert_eq!(xtext_decode("a+2Bb").as_deref(), Some("a+b"));
        assert_eq!(xtext_decode("a+2"), None);
        assert_eq!(xtext_decode("a+0D"), None);
    }

    #[test]
    fn xclient_attributes() {
        let r =
            parse_xclient("NAME=mx.example ADDR=192.0.2.7 PORT=1234 PROTO=ESMTP HELO=h").unwrap();
        assert_eq!(r.name, Some(Some("mx.example".into())));
        assert_eq!(r.addr, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(r.proto_esmtp, Some(true));
        assert_eq!(r.helo, Some(Some("h".into())));
        assert_eq!(r.port, Some(1234));
        let r = parse_xclient("DESTADDR=192.0.2.1 DESTPORT=587").unwrap();
        assert_eq!(
            (r.dest_addr, r.dest_port),
            (Some("192.0.2.1".parse().unwrap()), Some(587))
        );
        let r =
            parse_xclient("NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1 LOGIN=[TEMPUNAVAIL]").unwrap();
        assert_eq!(r.name, Some(None));
        assert_eq!(r.addr, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(r.login, Some(None));
        assert_eq!(
            parse_xclient("FOO=1").unwrap_err().to_string(),
            "Bad XCLIENT attribute name: FOO"
        );
        assert_eq!(
            parse_xclient("ADDR=nothere").unwrap_err().to_string(),
            "Bad XCLIENT ADDR syntax: nothere"
        );
        assert!(parse_xclient("PROTO=HTTP").is_err());
        assert!(parse_xclient("PORT=99999").is_err());
    }

    #[test]
    fn xforward_attributes() {
        let mut f = Forwarded::default();
        parse_xforward(
            "NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP HELO=x SOURCE=REMOTE",
            &mut f,
        )
        .unwrap();
        assert_eq!(f.name.as_deref(), Some("spike.porcupine.org"));
        assert_eq!(f.addr.as_deref(), Some("168.100.189.2"));
        assert_eq!(f.helo.as_deref(), Some("x"));
        parse_xforward("IDENT=abc NAME=[UNAVAILABLE]", &mut f).unwrap();
        assert_eq!(f.name, None);
        assert_eq!(f.ident.as_deref(), Some("abc"));
        assert!(parse_xforward("SOURCE=ELSEWHERE", &mut f).is_err());
        assert!(parse_xforward("LOGIN=x", &mut f).is_err());
    }
}
