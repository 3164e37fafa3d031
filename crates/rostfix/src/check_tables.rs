//! `rostfix check`'s scan for lookup tables of a type Rostfix cannot read
//! (`mysql:/etc/postfix/virtual.cf`, `proxy:ldap:...`): each is named with file, line
//! and parameter, and fails the check, because every lookup in it would fail and the
//! mail that depends on it would be deferred or refused.
//!
//! Only Postfix's table type names count, so `dev:/dev/urandom`, `inet:host:port`,
//! `smtp:[relay]`, `lmtp:unix:private/dovecot-lmtp` and URLs in banners are never
//! taken for tables.

use rostfix_config::{MainCf, MasterCf};
use rostfix_maps::MAP_TYPES;

/// Every table type Postfix 3.x knows (postconf -m plus the plugin types).
const POSTFIX_TABLE_TYPES: &[&str] = &[
    "btree",
    "cdb",
    "cidr",
    "dbm",
    "environ",
    "fail",
    "hash",
    "inline",
    "internal",
    "lmdb",
    "ldap",
    "memcache",
    "mongodb",
    "mysql",
    "netinfo",
    "nis",
    "nisplus",
    "pcre",
    "pgsql",
    "pipemap",
    "proxy",
    "randmap",
    "regexp",
    "sdbm",
    "socketmap",
    "sqlite",
    "static",
    "tcp",
    "texthash",
    "unionmap",
    "unix",
];

/// The unreadable table specs in one parameter value: `(type, spec)`.
pub fn unsupported_in(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for word in value.split([',', ' ', '\t', '\n']) {
        let spec = word.trim_matches(|c| c == '{' || c == '}');
        let Some((mut kind, mut rest)) = spec.split_once(':') else {
            continue;
        };
        if !POSTFIX_TABLE_TYPES.contains(&kind) {
            continue;
        }
        // proxy: hands out the table named after it.
        while kind == "proxy" {
            match rest.split_once(':') {
                Some((k, r)) if POSTFIX_TABLE_TYPES.contains(&k) => (kind, rest) = (k, r),
                _ => break,
            }
        }
        if kind != "proxy" && !MAP_TYPES.contains(&kind) {
            out.push((kind.to_string(), spec.to_string()));
        }
    }
    out
}

/// `FILE, line N: parameter NAME: table type TYPE is not supported by Rostfix: SPEC`
/// for main.cf and for master.cf `-o` overrides.
pub fn unsupported_tables(main: &MainCf, master: &MasterCf) -> Vec<String> {
    let mut out = Vec::new();
    let mut report =
        |file: &std::path::Path, line: usize, name: &str, value: &str, service: Option<String>| {
            for (kind, spec) in unsupported_in(value) {
                let of = service
                    .as_deref()
                    .map(|s| format!(" (-o of service {s})"))
                    .unwrap_or_default();
                out.push(format!(
                    "{}, line {line}: parameter {name}{of}: table type {kind} is not supported by \
                 Rostfix: {spec} (every lookup would fail)",
                    file.display()
                ));
            }
        };
    for setting in main.explicit() {
        let Some(file) = setting.file.as_ref() else {
            continue;
        };
        let value = main.expanded(&setting.name).unwrap_or(setting.raw.clone());
        report(file, setting.line, &setting.name, &value, None);
    }
    for service in &master.services {
        for (name, value) in service.overrides() {
            let value = main.expand_text(&value).unwrap_or(value);
            report(
                &service.file,
                service.line,
                &name,
                &value,
                Some(format!("{}/{}", service.name, service.service_type)),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_table_types_we_cannot_read() {
        assert_eq!(
            unsupported_in("proxy:mysql:/etc/postfix/mysql-virtual.cf, hash:/etc/x ldap:/etc/l.cf"),
            vec![
                (
                    "mysql".to_string(),
                    "proxy:mysql:/etc/postfix/mysql-virtual.cf".to_string()
                ),
                ("ldap".to_string(), "ldap:/etc/l.cf".to_string()),
            ]
        );
        for fine in [
            "dev:/dev/urandom",
            "$myhostname ESMTP see https://example.org/policy",
            "inet:127.0.0.1:10023",
            "lmtp:unix:private/dovecot-lmtp",
            "smtp:[relay.example]:587",
            "proxy:unix:passwd.byname",
            "pcre:/etc/postfix/header_checks",
            "check_policy_service unix:private/policy-spf",
        ] {
            assert!(unsupported_in(fine).is_empty(), "{fine}");
        }
    }
}
