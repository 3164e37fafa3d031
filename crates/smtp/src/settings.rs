//! The agent's main.cf settings, read once at start (before chroot, so CA files,
//! client certificates and the password/policy tables outside the chroot are loaded
//! while still readable). SMTP mode reads `smtp_*` parameters, LMTP mode the `lmtp_*`
//! twins Postfix has (`lmtp_lhlo_timeout` for the HELO timeout, `lmtp_lhlo_name`).

use crate::dane::DaneLevel;
use crate::sasl::SecurityOptions;
use crate::session::Timeouts;
use crate::tls::{Level, TlsClient, TlsFiles, TlsSetupError};
use rostfix_config::MainCf;
use rostfix_maps::{open_map, Map, MapError};
use std::time::Duration;
use thiserror::Error;

/// SMTP or LMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Smtp,
    Lmtp,
}

impl Mode {
    pub fn prefix(self) -> &'static str {
        match self {
            Mode::Smtp => "smtp",
            Mode::Lmtp => "lmtp",
        }
    }
}

#[derive(Debug, Error)]
pub enum SettingsError {
    #[error("{0}")]
    Tls(#[from] TlsSetupError),
    #[error("bad {name} value: {value}")]
    Level { name: String, value: String },
    #[error("cannot open {name} table: {source}")]
    Map { name: String, source: MapError },
}

/// Client SASL settings (smtp_sasl_*), present when smtp_sasl_auth_enable = yes.
pub struct SaslSettings {
    pub password_maps: Vec<Box<dyn Map>>,
    pub plain_opts: SecurityOptions,
    pub tls_opts: SecurityOptions,
    pub soft_bounce: bool,
    /// smtp_sender_dependent_authentication: credentials by envelope sender first;
    /// sessions are then never cached (a session logged in for one sender must not
    /// carry another sender's mail).
    pub sender_dependent: bool,
    /// recipient_delimiter, for the sender keys.
    pub delimiter: String,
}

/// Connection cache settings.
pub struct CacheSettings {
    pub on_demand: bool,
    pub destinations: Vec<String>,
    pub time_limit: Duration,
    pub reuse_limit: Duration,
    /// smtp_connection_reuse_count_limit: transactions after which a session is
    /// closed instead of cached; 0 = no limit.
    pub reuse_count_limit: u32,
}

/// Everything a delivery needs from main.cf.
pub struct Settings {
    pub mode: Mode,
    pub helo_name: String,
    pub myhostname: String,
    pub connect_timeout: Duration,
    pub timeouts: Timeouts,
    pub mx_address_limit: usize,
    pub tls: TlsClient,
    pub tls_level: Level,
    /// smtp_dns_support_level = dnssec: lookups validate DNSSEC (needed for DANE).
    pub dnssec: bool,
    /// smtp_tls_dane_insecure_mx_policy = may: a `dane` destination whose MX set is
    /// not DNSSEC-signed gets opportunistic TLS instead of its hosts' TLSA records.
    pub dane_insecure_mx_may: bool,
    pub tls_policy_maps: Vec<Box<dyn Map>>,
    pub verify_match: Vec<String>,
    pub secure_match: Vec<String>,
    pub tls_loglevel: i64,
    pub sasl: Option<SaslSettings>,
    pub cache: CacheSettings,
    /// Convert 8-bit mail to quoted-printable for servers without 8BITMIME (Postfix's
    /// default; `disable_mime_output_conversion = yes` sends it as is).
    pub mime_downgrade: bool,
    /// smtp_send_xforward_command / lmtp_send_xforward_command.
    pub send_xforward: bool,
    /// rostfix_mta_sts_enable (SMTP only): how long to wait for the mtasts service's
    /// answer (its fetch timeout plus DNS time); `None` = MTA-STS off.
    pub mta_sts: Option<Duration>,
    /// rostfix_tlsrpt_enable (SMTP only): the report period in seconds; `None` = no
    /// TLS reporting.
    pub tlsrpt: Option<u64>,
}

impl Settings {
    pub fn load(cfg: &MainCf, mode: Mode) -> Result<Settings, SettingsError> {
        let p = mode.prefix();
        let name = |rest: &str| format!("{p}_{rest}");
        let helo = match mode {
            Mode::Smtp => "helo",
            Mode::Lmtp => "lhlo",
        };
        let time = |rest: &str, default: u64| nonzero(cfg.get_time(&name(rest)), default);
        let timeouts = Timeouts {
            helo: time(&format!("{helo}_timeout"), 300),
            mail: time("mail_timeout", 300),
            rcpt: time("rcpt_timeout", 300),
            data_init: time("data_init_timeout", 120),
            data_xfer: time("data_xfer_timeout", 180),
            data_done: time("data_done_timeout", 600),
            quit: time("quit_timeout", 300),
            rset: time("rset_timeout", 20),
            starttls: time("starttls_timeout", 300),
        };
        let tls_level = tls_level(cfg, p)?;
        let dnssec = dns_support_level(cfg, p)?;
        let dane_insecure_mx_may = dane_insecure_mx_policy(cfg, p, &tls_level)?;
        let tls = TlsClient::load(&TlsFiles {
            ca_file: &cfg.get(&name("tls_CAfile")),
            ca_path: &cfg.get(&name("tls_CApath")),
            append_default_ca: cfg.get_bool("tls_append_default_CA"),
            cert_file: &cfg.get(&name("tls_cert_file")),
            key_file: &cfg.get(&name("tls_key_file")),
            protocols: (&name("tls_protocols"), &cfg.get(&name("tls_protocols"))),
            mandatory_protocols: (
                &name("tls_mandatory_protocols"),
                &cfg.get(&name("tls_mandatory_protocols")),
            ),
            session_cache: (
                &cfg.get(&name("tls_session_cache_database")),
                cfg.get_time(&name("tls_session_cache_timeout")),
            ),
        })?;
        let sasl = if cfg.get_bool(&name("sasl_auth_enable")) {
            let plain = cfg.get_list(&name("sasl_security_options"));
            Some(SaslSettings {
                password_maps: open_maps(cfg, &name("sasl_password_maps"))?,
                plain_opts: SecurityOptions::parse(&plain),
                tls_opts: SecurityOptions::parse(&cfg.get_list(&name("sasl_tls_security_options"))),
                soft_bounce: cfg.get_bool(&name("sasl_auth_soft_bounce")),
                sender_dependent: cfg.get_bool(&name("sender_dependent_authentication")),
                delimiter: cfg.get("recipient_delimiter"),
            })
        } else {
            None
        };
        let connect_default = match mode {
            Mode::Smtp => 30,
            // lmtp_connect_timeout defaults to 0 (the system's); bound it anyway.
            Mode::Lmtp => 60,
        };
        let mta_sts = (mode == Mode::Smtp && cfg.get_bool("rostfix_mta_sts_enable"))
            .then(|| cfg.get_time("rostfix_mta_sts_fetch_timeout") + Duration::from_secs(25));
        Ok(Settings {
            mta_sts,
            tlsrpt: (mode == Mode::Smtp && cfg.get_bool("rostfix_tlsrpt_enable"))
                .then(|| cfg.get_time("rostfix_tlsrpt_period").as_secs().max(1)),
            mime_downgrade: !cfg.get_bool("disable_mime_output_conversion"),
            send_xforward: cfg.get_bool(&name("send_xforward_command")),
            mode,
            helo_name: cfg.get(&name(&format!("{helo}_name"))),
            myhostname: cfg.get("myhostname"),
            connect_timeout: nonzero(cfg.get_time(&name("connect_timeout")), connect_default),
            timeouts,
            mx_address_limit: usize::try_from(cfg.get_int(&name("mx_address_limit")))
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(5),
            tls,
            tls_level,
            dnssec,
            dane_insecure_mx_may,
            tls_policy_maps: open_maps(cfg, &name("tls_policy_maps"))?,
            verify_match: cfg.get_list(&name("tls_verify_cert_match")),
            secure_match: cfg.get_list(&name("tls_secure_cert_match")),
            tls_loglevel: cfg.get_int(&name("tls_loglevel")),
            sasl,
            cache: CacheSettings {
                on_demand: cfg.get_bool(&name("connection_cache_on_demand")),
                destinations: cfg.get_list(&name("connection_cache_destinations")),
                time_limit: nonzero(cfg.get_time(&name("connection_cache_time_limit")), 2),
                reuse_limit: nonzero(cfg.get_time(&name("connection_reuse_time_limit")), 300),
                reuse_count_limit: cfg.get_u32(&name("connection_reuse_count_limit")),
            },
        })
    }
}

/// smtp_dns_support_level: `dnssec` (validating lookups) or not. `disabled` (no DNS
/// at all, host names from the system's name service) is accepted but acts as
/// `enabled`: this client always uses DNS.
fn dns_support_level(cfg: &MainCf, p: &str) -> Result<bool, SettingsError> {
    let param = format!("{p}_dns_support_level");
    let raw = cfg.get(&param);
    match raw.trim().to_ascii_lowercase().as_str() {
        "dnssec" => Ok(true),
        "" | "enabled" | "disabled" => Ok(false),
        _ => Err(SettingsError::Level {
            name: param,
            value: raw,
        }),
    }
}

/// smtp_tls_dane_insecure_mx_policy: `dane` (look up the TLSA records of the hosts of an
/// unsigned MX set, Postfix's "half-dane") or `may` (opportunistic TLS for them). Empty
/// is Postfix's default expression: `dane` when the main.cf level is `dane`, else `may`
/// (so a `dane` entry in smtp_tls_policy_maps under a global `may` gets `may`). Returns
/// whether the policy is `may`.
fn dane_insecure_mx_policy(cfg: &MainCf, p: &str, level: &Level) -> Result<bool, SettingsError> {
    let param = format!("{p}_tls_dane_insecure_mx_policy");
    let raw = cfg.get(&param);
    match raw.trim().to_ascii_lowercase().as_str() {
        "" => Ok(!matches!(level, Level::Dane(DaneLevel::Dane))),
        "dane" => Ok(false),
        "may" => Ok(true),
        _ => Err(SettingsError::Level {
            name: param,
            value: raw,
        }),
    }
}

/// smtp_tls_security_level, or the legacy smtp_enforce_tls / smtp_use_tls when empty.
fn tls_level(cfg: &MainCf, p: &str) -> Result<Level, SettingsError> {
    let param = format!("{p}_tls_security_level");
    let raw = cfg.get(&param);
    if raw.trim().is_empty() {
        // lmtp has no legacy switches; read smtp's only in SMTP mode.
        if p == "smtp" && cfg.get_bool("smtp_enforce_tls") {
            return Ok(Level::Encrypt);
        }
        if p == "smtp" && cfg.get_bool("smtp_use_tls") {
            return Ok(Level::May);
        }
        return Ok(Level::None);
    }
    Level::parse(&raw).ok_or(SettingsError::Level {
        name: param,
        value: raw,
    })
}

/// Opens the tables of `param` and freezes those that can list their entries (see
/// [`Frozen`]).
fn open_maps(cfg: &MainCf, param: &str) -> Result<Vec<Box<dyn Map>>, SettingsError> {
    cfg.get_list(param)
        .iter()
        .map(|spec| {
            let err = |source| SettingsError::Map {
                name: param.to_string(),
                source,
            };
            let map = open_map(spec).map_err(err)?;
            Ok(match map.entries() {
                Some(entries) => Box::new(Frozen {
                    spec: map.spec().to_string(),
                    entries: entries.map_err(err)?.into_iter().collect(),
                }) as Box<dyn Map>,
                None => map,
            })
        })
        .collect()
}

/// A table copied into memory at start. The files (sasl_passwd is usually
/// /etc/rostfix/sasl_passwd, mode 600) are outside the chroot and unreadable after the
/// privilege drop, so a live table would fail its reload check there; a changed table
/// takes effect with `rostfix reload` (new processes), as Postfix's chrooted smtp
/// without proxymap.
struct Frozen {
    spec: String,
    entries: std::collections::HashMap<String, String>,
}

impl Map for Frozen {
    fn lookup(&self, key: &str) -> Result<Option<String>, MapError> {
        // Listed keys are already folded to lower case by the table.
        Ok(self.entries.get(&key.to_ascii_lowercase()).cloned())
    }
    fn spec(&self) -> &str {
        &self.spec
    }
}

/// A configured time, or `default_secs` when unset or zero.
pub fn nonzero(d: Duration, default_secs: u64) -> Duration {
    if d.is_zero() {
        Duration::from_secs(default_secs)
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Result<bool, SettingsError> {
        let cf = MainCf::parse(text, std::path::Path::new("/etc/rostfix/main.cf"))
            .expect("main.cf parses");
        let level = tls_level(&cf, "smtp")?;
        dane_insecure_mx_policy(&cf, "smtp", &level)
    }

    #[test]
    fn insecure_mx_policy_follows_postfix_default_expression() {
        // Default: dane when the main.cf level is dane, else may.
        assert!(!policy("smtp_tls_security_level = dane\n").unwrap());
        assert!(policy("smtp_tls_security_level = may\n").unwrap());
        assert!(policy("smtp_tls_security_level = dane-only\n").unwrap());
        assert!(
            policy("smtp_tls_security_level = dane\nsmtp_tls_dane_insecure_mx_policy = may\n")
                .unwrap()
        );
        assert!(!policy(
            "smtp_tls_security_level = may\nsmtp_tls_dane_insecure_mx_policy = dane\n"
        )
        .unwrap());
        assert!(policy("smtp_tls_dane_insecure_mx_policy = maybe\n").is_err());
    }
}
