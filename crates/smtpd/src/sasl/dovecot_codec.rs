//! The line codec of Dovecot's authentication protocol, client side
//! (https://doc.dovecot.org/developer_manual/design/auth_protocol, Postfix's
//! `src/xsasl/xsasl_dovecot_server.c`).
//!
//! Lines are TAB-separated and LF-terminated, with no escaping. Everything we send is
//! built here from values that cannot contain TAB, LF or NUL (base64 text, numbers, IP
//! addresses, a mechanism name we checked), so a client cannot inject a parameter.
//! Everything we receive is parsed into [`ServerLine`]; unknown lines are returned as
//! such and ignored by the caller, as the protocol asks.

use std::net::IpAddr;

/// The protocol version we speak (major 1; any minor is compatible).
pub const MAJOR: u32 = 1;
pub const MINOR: u32 = 2;

/// One line from the auth server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerLine {
    Version {
        major: u32,
        minor: u32,
    },
    /// A mechanism and its flags (`plaintext`, `anonymous`, `private`, ...).
    Mech {
        name: String,
        flags: Vec<String>,
    },
    Spid(String),
    Cuid(String),
    Cookie(String),
    Done,
    /// `CONT id base64-challenge`.
    Cont {
        id: u32,
        challenge: String,
    },
    /// `OK id params`; `user=` is the authenticated name.
    Ok {
        id: u32,
        user: Option<String>,
    },
    /// `FAIL id params`: `reason=`, `temp` for a temporary failure.
    Fail {
        id: u32,
        reason: Option<String>,
        temp: bool,
    },
    /// Anything else (ignored).
    Other(String),
}

/// Why a server line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("malformed {0} line from the auth server")]
    Malformed(&'static str),
}

/// Parses one line (without its LF).
pub fn parse_server_line(line: &str) -> Result<ServerLine, CodecError> {
    let mut fields = line.split('\t');
    let verb = fields.next().unwrap_or("");
    let rest: Vec<&str> = fields.collect();
    let id = |what: &'static str| -> Result<u32, CodecError> {
        rest.first()
            .and_then(|s| s.parse().ok())
            .ok_or(CodecError::Malformed(what))
    };
    let param = |key: &str| -> Option<String> {
        rest.iter()
            .skip(1)
            .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(str::to_string)
    };
    Ok(match verb {
        "VERSION" => {
            let major = rest.first().and_then(|s| s.parse().ok());
            let minor = rest.get(1).and_then(|s| s.parse().ok());
            match (major, minor) {
                (Some(major), Some(minor)) => ServerLine::Version { major, minor },
                _ => return Err(CodecError::Malformed("VERSION")),
            }
        }
        "MECH" => {
            let name = rest
                .first()
                .filter(|n| valid_mech_name(n))
                .ok_or(CodecError::Malformed("MECH"))?;
            ServerLine::Mech {
                name: name.to_ascii_uppercase(),
                flags: rest[1..].iter().map(|f| f.to_ascii_lowercase()).collect(),
            }
        }
        "SPID" => ServerLine::Spid(rest.first().unwrap_or(&"").to_string()),
        "CUID" => ServerLine::Cuid(rest.first().unwrap_or(&"").to_string()),
        "COOKIE" => ServerLine::Cookie(rest.first().unwrap_or(&"").to_string()),
        "DONE" => ServerLine::Done,
        "CONT" => ServerLine::Cont {
            id: id("CONT")?,
            challenge: rest.get(1).unwrap_or(&"").to_string(),
        },
        "OK" => ServerLine::Ok {
            id: id("OK")?,
            user: param("user"),
        },
        "FAIL" => ServerLine::Fail {
            id: id("FAIL")?,
            reason: param("reason"),
            temp: rest.iter().skip(1).any(|f| *f == "temp"),
        },
        _ => ServerLine::Other(verb.to_string()),
    })
}

/// SASL mechanism names (RFC 4422 3.1): upper-case letters, digits, `-` and `_`, 1-20.
pub fn valid_mech_name(name: &str) -> bool {
    (1..=20).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The handshake we send first: `VERSION` and `CPID`.
pub fn handshake(pid: u32) -> String {
    format!("VERSION\t{MAJOR}\t{MINOR}\nCPID\t{pid}\n")
}

/// What an `AUTH` request carries besides the mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest<'a> {
    pub id: u32,
    /// Must satisfy [`valid_mech_name`]; the caller checks.
    pub mech: &'a str,
    pub service: &'a str,
    pub local_ip: Option<IpAddr>,
    pub remote_ip: Option<IpAddr>,
    /// The connection is TLS protected.
    pub secured: bool,
    /// Strict base64 (checked by the caller); `Some("")` is an empty initial response.
    pub initial: Option<&'a str>,
}

/// `AUTH id MECH service=smtp nologin lip= rip= [secured] [resp=]`.
pub fn auth_line(r: &AuthRequest<'_>) -> String {
    let mut s = format!("AUTH\t{}\t{}\tservice={}\tnologin", r.id, r.mech, r.service);
    if let Some(ip) = r.local_ip {
        s.push_str(&format!("\tlip={ip}"));
    }
    if let Some(ip) = r.remote_ip {
        s.push_str(&format!("\trip={ip}"));
    }
    if r.secured {
        s.push_str("\tsecured");
    }
    if let Some(resp) = r.initial {
        s.push_str("\tresp=");
        s.push_str(resp);
    }
    s.push('\n');
    s
}

/// `CONT id base64`.
pub fn cont_line(id: u32, response: &str) -> String {
    format!("CONT\t{id}\t{response}\n")
}

/// True when `s` is safe to put in a protocol line: no TAB, CR, LF or NUL.
pub fn field_safe(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\r' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn server_handshake_lines() {
        assert_eq!(
            parse_server_line("VERSION\t1\t2"),
            Ok(ServerLine::Version { major: 1, minor: 2 })
        );
        assert_eq!(
            parse_server_line("MECH\tPLAIN\tplaintext"),
            Ok(ServerLine::Mech {
                name: "PLAIN".into(),
                flags: vec!["plaintext".into()]
            })
        );
        assert_eq!(
            parse_server_line("MECH\tlogin\tplaintext\tprivate"),
            Ok(ServerLine::Mech {
                name: "LOGIN".into(),
                flags: vec!["plaintext".into(), "private".into()]
            })
        );
        assert_eq!(
            parse_server_line("SPID\t1234"),
            Ok(ServerLine::Spid("1234".into()))
        );
        assert_eq!(parse_server_line("DONE"), Ok(ServerLine::Done));
        assert!(parse_server_line("VERSION\tx").is_err());
        assert!(parse_server_line("MECH").is_err());
        assert!(parse_server_line("MECH\tbad name").is_err());
    }

    #[test]
    fn server_auth_replies() {
        assert_eq!(
            parse_server_line("CONT\t7\tVXNlcm5hbWU6"),
            Ok(ServerLine::Cont {
                id: 7,
                challenge: "VXNlcm5hbWU6".into()
            })
        );
        assert_eq!(
            parse_server_line("OK\t7\tuser=alice"),
            Ok(ServerLine::Ok {
                id: 7,
                user: Some("alice".into())
            })
        );
        assert_eq!(
            parse_server_line("FAIL\t3\tuser=bob\treason=Password mismatch\ttemp"),
            Ok(ServerLine::Fail {
                id: 3,
                reason: Some("Password mismatch".into()),
                temp: true
            })
        );
        assert_eq!(
            parse_server_line("FAIL\t3"),
            Ok(ServerLine::Fail {
                id: 3,
                reason: None,
                temp: false
            })
        );
        assert!(parse_server_line("OK\tnotanumber").is_err());
        assert_eq!(
            parse_server_line("NEWTHING\t1"),
            Ok(ServerLine::Other("NEWTHING".into()))
        );
    }

    #[test]
    fn client_lines() {
        assert_eq!(handshake(42), "VERSION\t1\t2\nCPID\t42\n");
        let line = auth_line(&AuthRequest {
            id: 1,
            mech: "PLAIN",
            service: "smtp",
            local_ip: Some("127.0.0.1".parse().unwrap()),
            remote_ip: Some("127.0.0.2".parse().unwrap()),
            secured: true,
            initial: Some("AGEAYg=="),
        });
        assert_eq!(
            line,
            "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.2\tsecured\tresp=AGEAYg==\n"
        );
        let line = auth_line(&AuthRequest {
            id: 2,
            mech: "LOGIN",
            service: "smtp",
            local_ip: None,
            remote_ip: None,
            secured: false,
            initial: None,
        });
        assert_eq!(line, "AUTH\t2\tLOGIN\tservice=smtp\tnologin\n");
        assert_eq!(cont_line(2, "YWxpY2U="), "CONT\t2\tYWxpY2U=\n");
        assert!(field_safe("abc="));
        assert!(!field_safe("a\tb"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(line in "[\\x00-\\x7f]{0,200}") {
            let _ = parse_server_line(&line);
        }

        #[test]
        fn cont_round_trips(id in any::<u32>(), b64 in "[A-Za-z0-9+/]{0,100}={0,2}") {
            let line = cont_line(id, &b64);
            let parsed = parse_server_line(line.trim_end_matches('\n'));
            prop_assert_eq!(parsed, Ok(ServerLine::Cont { id, challenge: b64 }));
        }

        #[test]
        fn auth_line_is_one_line(id in any::<u32>(), mech in "[A-Z0-9-]{1,20}", resp in "[A-Za-z0-9+/=]{0,64}") {
            let line = auth_line(&AuthRequest {
                id, mech: &mech, service: "smtp", local_ip: None, remote_ip: None,
                secured: false, initial: Some(&resp),
            });
            prop_assert_eq!(line.matches('\n').count(), 1);
            prop_assert!(line.ends_with('\n'));
            let fields: Vec<&str> = line.trim_end().split('\t').collect();
            prop_assert_eq!(fields[1], id.to_string());
            prop_assert_eq!(fields[2], mech.as_str());
        }

        #[test]
        fn ok_user_is_extracted(id in any::<u32>(), user in "[a-z0-9@.]{1,30}") {
            let parsed = parse_server_line(&format!("OK\t{id}\tuser={user}"));
            prop_assert_eq!(parsed, Ok(ServerLine::Ok { id, user: Some(user) }));
        }
    }
}
