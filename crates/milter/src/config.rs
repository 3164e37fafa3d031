//! Milter settings from main.cf: the list in smtpd_milters / non_smtpd_milters (each
//! item `inet:host:port`, `unix:/path` or Postfix's per-milter form
//! `{ inet:host:port, connect_timeout=10s, command_timeout=..., content_timeout=...,
//! default_action=accept, protocol=6 }`), the milter_* defaults, and the macros sent at
//! each stage (milter_*_macros, with Postfix's defaults).

use rostfix_config::{split_list, MainCf};
use std::time::Duration;

/// Why a milter setting is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("milter {0}: expected inet:host:port or unix:/path")]
    BadAddress(String),
    #[error("milter {milter}: unknown default_action '{value}'")]
    BadAction { milter: String, value: String },
    #[error("milter {milter}: bad {name} value '{value}'")]
    BadValue {
        milter: String,
        name: String,
        value: String,
    },
    #[error("milter {milter}: unknown attribute '{name}'")]
    UnknownAttribute { milter: String, name: String },
    #[error("milter_protocol '{0}': only versions 2 to 6 are known")]
    BadProtocol(String),
}

/// Where a milter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `inet:host:port` (an IPv6 host in brackets).
    Inet { host: String, port: u16 },
    /// `unix:/path` or `local:/path`.
    Unix(String),
}

/// What happens when a milter cannot be reached or breaks the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Tempfail,
    Accept,
    Reject,
    Quarantine,
}

impl DefaultAction {
    fn parse(value: &str) -> Option<DefaultAction> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "tempfail" => DefaultAction::Tempfail,
            "accept" => DefaultAction::Accept,
            "reject" => DefaultAction::Reject,
            "quarantine" => DefaultAction::Quarantine,
            _ => return None,
        })
    }
}

/// One configured milter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilterSpec {
    /// As written (`inet:127.0.0.1:8891`): logs name milters this way.
    pub name: String,
    pub endpoint: Endpoint,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub content_timeout: Duration,
    pub default_action: DefaultAction,
    pub protocol: u32,
}

/// The macros sent before each command, by stage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MacroLists {
    pub connect: Vec<String>,
    pub helo: Vec<String>,
    pub mail: Vec<String>,
    pub rcpt: Vec<String>,
    pub data: Vec<String>,
    pub eoh: Vec<String>,
    pub eom: Vec<String>,
}

/// Everything needed to talk to one list of milters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MilterConfig {
    pub milters: Vec<MilterSpec>,
    pub macros: MacroLists,
    /// milter_macro_daemon_name, the `{daemon_name}` macro.
    pub daemon_name: String,
    /// milter_macro_v, the `v` macro.
    pub macro_v: String,
}

impl MilterConfig {
    /// Reads the milter list in parameter `list` (smtpd_milters or non_smtpd_milters).
    pub fn from_main_cf(cf: &MainCf, list: &str) -> Result<MilterConfig, ConfigError> {
        let defaults = Defaults {
            connect: cf.get_time("milter_connect_timeout"),
            command: cf.get_time("milter_command_timeout"),
            content: cf.get_time("milter_content_timeout"),
            action: parse_action("milter_default_action", &cf.get("milter_default_action"))?,
            protocol: parse_protocol(&cf.get("milter_protocol"))?,
        };
        let milters = cf
            .get_list(list)
            .iter()
            .map(|item| parse_item(item, &defaults))
            .collect::<Result<Vec<_>, _>>()?;
        let macros = |name: &str| split_list(&cf.get(name));
        Ok(MilterConfig {
            milters,
            macros: MacroLists {
                connect: macros("milter_connect_macros"),
                helo: macros("milter_helo_macros"),
                mail: macros("milter_mail_macros"),
                rcpt: macros("milter_rcpt_macros"),
                data: macros("milter_data_macros"),
                eoh: macros("milter_end_of_header_macros"),
                eom: macros("milter_end_of_data_macros"),
            },
            daemon_name: cf.get("milter_macro_daemon_name"),
            macro_v: cf.get("milter_macro_v"),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.milters.is_empty()
    }
}

struct Defaults {
    connect: Duration,
    command: Duration,
    content: Duration,
    action: DefaultAction,
    protocol: u32,
}

fn parse_action(milter: &str, value: &str) -> Result<DefaultAction, ConfigError> {
    DefaultAction::parse(value).ok_or_else(|| ConfigError::BadAction {
        milter: milter.to_string(),
        value: value.to_string(),
    })
}

fn parse_protocol(value: &str) -> Result<u32, ConfigError> {
    match value.trim().parse::<u32>() {
        Ok(v @ 2..=6) => Ok(v),
        _ => Err(ConfigError::BadProtocol(value.to_string())),
    }
}

/// One list item: an address, or `{ address, name=value, ... }`.
fn parse_item(item: &str, defaults: &Defaults) -> Result<MilterSpec, ConfigError> {
    let inner = item
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(item);
    let mut parts = inner
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty());
    let name = parts
        .next()
        .ok_or_else(|| ConfigError::BadAddress(item.to_string()))?
        .to_string();
    let endpoint = parse_endpoint(&name)?;
    let mut spec = MilterSpec {
        name: name.clone(),
        endpoint,
        connect_timeout: defaults.connect,
        command_timeout: defaults.command,
        content_timeout: defaults.content,
        default_action: defaults.action,
        protocol: defaults.protocol,
    };
    for attr in parts {
        let (key, value) = attr.split_once('=').unwrap_or((attr, ""));
        let time = || {
            rostfix_config::parse_time(value, 's')
                .map(Duration::from_secs)
                .ok_or_else(|| ConfigError::BadValue {
                    milter: name.clone(),
                    name: key.to_string(),
                    value: value.to_string(),
                })
        };
        match key {
            "connect_timeout" => spec.connect_timeout = time()?,
            "command_timeout" => spec.command_timeout = time()?,
            "content_timeout" => spec.content_timeout = time()?,
            "default_action" => spec.default_action = parse_action(&name, value)?,
            "protocol" => spec.protocol = parse_protocol(value)?,
            _ => {
                return Err(ConfigError::UnknownAttribute {
                    milter: name.clone(),
                    name: key.to_string(),
                })
            }
        }
    }
    Ok(spec)
}

/// `inet:host:port`, `inet:[v6]:port`, `unix:/path`, `local:/path`.
pub fn parse_endpoint(spec: &str) -> Result<Endpoint, ConfigError> {
    let bad = || ConfigError::BadAddress(spec.to_string());
    if let Some(path) = spec
        .strip_prefix("unix:")
        .or_else(|| spec.strip_prefix("local:"))
    {
        return if path.is_empty() {
            Err(bad())
        } else {
            Ok(Endpoint::Unix(path.to_string()))
        };
    }
    let rest = spec.strip_prefix("inet:").ok_or_else(bad)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok(Endpoint::Inet {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            connect: Duration::from_secs(30),
            command: Duration::from_secs(30),
            content: Duration::from_secs(300),
            action: DefaultAction::Tempfail,
            protocol: 6,
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("inet:127.0.0.1:8891"),
            Ok(Endpoint::Inet {
                host: "127.0.0.1".into(),
                port: 8891
            })
        );
        assert_eq!(
            parse_endpoint("inet:[::1]:25"),
            Ok(Endpoint::Inet {
                host: "::1".into(),
                port: 25
            })
        );
        assert_eq!(
            parse_endpoint("unix:/run/x.sock"),
            Ok(Endpoint::Unix("/run/x.sock".into()))
        );
        for bad in ["inet:host", "inet::25", "tcp:1:2", "unix:", "inet:h:0"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn per_milter_settings_override_defaults() {
        let spec = parse_item(
            "{ inet:127.0.0.1:9, connect_timeout=5s, default_action=accept, command_timeout=2m }",
            &defaults(),
        )
        .unwrap();
        assert_eq!(spec.name, "inet:127.0.0.1:9");
        assert_eq!(spec.connect_timeout, Duration::from_secs(5));
        assert_eq!(spec.command_timeout, Duration::from_secs(120));
        assert_eq!(spec.content_timeout, Duration::from_secs(300));
        assert_eq!(spec.default_action, DefaultAction::Accept);
        assert!(matches!(
            parse_item("{ unix:/x, colour=red }", &defaults()),
            Err(ConfigError::UnknownAttribute { .. })
        ));
        assert!(matches!(
            parse_item("{ unix:/x, default_action=maybe }", &defaults()),
            Err(ConfigError::BadAction { .. })
        ));
    }
}
