//! smtpd_proxy_filter settings (Postfix's SMTPD_PROXY_README): where the before-queue
//! content filter listens (`host:port`, `inet:host:port`, `[host]:port` or
//! `unix:pathname`), smtpd_proxy_timeout for connecting and for every exchange, and
//! smtpd_proxy_ehlo, the name we greet the filter with. The filter speaks SMTP and hands
//! the mail to a second smtpd that queues it; session/proxy.rs relays the transaction.
//! smtpd_proxy_options (speed_adjust) is not implemented: config/src/unimplemented.rs
//! makes `rostfix check` and start-up say so when it is set.

use std::time::Duration;

/// Where the filter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port` as given (a name is resolved when connecting).
    Inet { host: String, port: u16 },
    /// A UNIX-domain socket path (relative paths are relative to the queue
    /// directory, smtpd's working directory, as in Postfix).
    Unix(String),
}

/// Why smtpd_proxy_filter cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxySettingsError {
    #[error("smtpd_proxy_filter: {0}: expected host:port, inet:host:port or unix:pathname")]
    Syntax(String),
    #[error("smtpd_proxy_filter: {0}: bad port")]
    Port(String),
}

/// The before-queue filter of this smtpd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// The value as configured, for log lines (`connect to proxy filter X: ...`).
    pub service: String,
    pub endpoint: Endpoint,
    pub timeout: Duration,
    pub ehlo: String,
}

impl ProxySettings {
    /// None when smtpd_proxy_filter is empty.
    pub fn from_config(
        cf: &rostfix_config::MainCf,
    ) -> Result<Option<ProxySettings>, ProxySettingsError> {
        let service = cf.get("smtpd_proxy_filter").trim().to_string();
        if service.is_empty() {
            return Ok(None);
        }
        let endpoint = parse_endpoint(&service)?;
        let timeout = cf
            .get_time("smtpd_proxy_timeout")
            .max(Duration::from_secs(1));
        let ehlo = cf.get("smtpd_proxy_ehlo").trim().to_string();
        let ehlo = if ehlo.is_empty() {
            cf.get("myhostname").trim().to_string()
        } else {
            ehlo
        };
        Ok(Some(ProxySettings {
            service,
            endpoint,
            timeout,
            ehlo,
        }))
    }
}

/// Parses `unix:path`, `inet:host:port`, `host:port`, `[host]:port`.
pub fn parse_endpoint(value: &str) -> Result<Endpoint, ProxySettingsError> {
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("unix:") {
        let path = &value[5..];
        if path.is_empty() {
            return Err(ProxySettingsError::Syntax(value.to_string()));
        }
        return Ok(Endpoint::Unix(path.to_string()));
    }
    let rest = if lower.starts_with("inet:") {
        &value[5..]
    } else {
        value
    };
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| ProxySettingsError::Syntax(value.to_string()))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ProxySettingsError::Syntax(value.to_string()));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ProxySettingsError::Port(value.to_string()))?;
    Ok(Endpoint::Inet {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let inet = |h: &str, p| Endpoint::Inet {
            host: h.into(),
            port: p,
        };
        assert_eq!(
            parse_endpoint("127.0.0.1:10024"),
            Ok(inet("127.0.0.1", 10024))
        );
        assert_eq!(
            parse_endpoint("inet:localhost:10024"),
            Ok(inet("localhost", 10024))
        );
        assert_eq!(parse_endpoint("[::1]:25"), Ok(inet("::1", 25)));
        assert_eq!(
            parse_endpoint("unix:private/filter"),
            Ok(Endpoint::Unix("private/filter".into()))
        );
        assert!(parse_endpoint("localhost").is_err());
        assert!(parse_endpoint("localhost:smtp").is_err());
        assert!(parse_endpoint("localhost:0").is_err());
        assert!(parse_endpoint("unix:").is_err());
        assert!(parse_endpoint(":25").is_err());
    }
}
