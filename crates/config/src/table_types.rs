//! Lookup tables of a type Rostfix does not have (mongodb, nis, lmdb, cdb,
//! proxy:...) named in main.cf or a master.cf `-o`: the daemon that opens one fails,
//! so `rostfix check`, master and `rostconf import` name each with file, line and
//! parameter before anything starts, instead of a daemon dying at its first lookup.

use crate::main_cf::MainCf;
use crate::master_cf::MasterCf;
use crate::params::lookup_param;
use std::path::Path;

/// Postfix table types Rostfix's maps crate does not open.
const UNSUPPORTED: &[&str] = &[
    "cdb", "dbm", "environ", "fail", "internal", "lmdb", "mongodb", "netinfo", "nis", "nisplus",
    "pipemap", "randmap", "sdbm", "unionmap",
];

/// The unsupported `type:name` words of a value (with a `proxy:` prefix kept whole).
/// `proxy:` itself is fine: Rostfix opens the table behind it directly
/// (`proxy:unix:passwd.byname`), so only the type after it counts.
pub fn unsupported_tables(value: &str) -> Vec<String> {
    value
        .split([',', ' ', '\t', '\n', '{', '}'])
        .filter(|word| {
            let mut inner = *word;
            while let Some(rest) = inner.strip_prefix("proxy:") {
                inner = rest;
            }
            inner
                .split_once(':')
                .is_some_and(|(kind, rest)| !rest.is_empty() && UNSUPPORTED.contains(&kind))
        })
        .map(str::to_string)
        .collect()
}

fn warning(file: &Path, line: usize, param: &str, service: Option<&str>, table: &str) -> String {
    let service = service.map_or(String::new(), |s| format!(" (-o of service {s})"));
    let kind = table.strip_prefix("proxy:").unwrap_or(table);
    let kind = kind.split(':').next().unwrap_or(kind);
    format!(
        "{}, line {line}: parameter {param}{service}: table {table}: type {kind} is not \
         implemented by Rostfix; lookups in it fail",
        file.display()
    )
}

/// One warning per unsupported table in main.cf's explicit settings and master.cf's
/// `-o` overrides of parameters Rostfix knows (unknown ones are reported as unused).
pub fn table_warnings(main: &MainCf, master: Option<&MasterCf>) -> Vec<String> {
    let mut out = Vec::new();
    for setting in main.explicit() {
        let Some(file) = &setting.file else { continue };
        if lookup_param(&setting.name).is_none() {
            continue;
        }
        let value = main.expanded(&setting.name).unwrap_or(setting.raw.clone());
        for table in unsupported_tables(&value) {
            out.push(warning(file, setting.line, &setting.name, None, &table));
        }
    }
    for service in master.map(|m| m.services.as_slice()).unwrap_or_default() {
        for (name, value) in service.overrides() {
            if lookup_param(&name).is_none() {
                continue;
            }
            let value = main.expand_text(&value).unwrap_or(value);
            let id = format!("{}/{}", service.name, service.service_type);
            for table in unsupported_tables(&value) {
                out.push(warning(
                    &service.file,
                    service.line,
                    &name,
                    Some(&id),
                    &table,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unsupported_and_proxied_tables_only() {
        assert_eq!(
            unsupported_tables(
                "proxy:mongodb:/etc/postfix/a.cf, hash:/etc/b pgsql:/etc/d.cf nis:mail.aliases"
            ),
            ["proxy:mongodb:/etc/postfix/a.cf", "nis:mail.aliases"]
        );
        // ldap, memcache, socketmap and tcp are read by the maps crate.
        assert!(unsupported_tables(
            "proxy:ldap:/etc/a.cf memcache:/etc/c socketmap:unix:/tmp/p:x tcp:127.0.0.1:9"
        )
        .is_empty());
        // Services, transports, policy servers and ciphers are not tables.
        for value in [
            "check_policy_service inet:127.0.0.1:10023",
            "lmtp:unix:private/dovecot-lmtp",
            "smtp-amavis:[127.0.0.1]:10024",
            "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
            "tcp",
            "proxy:unix:passwd.byname",
            "dev:/dev/urandom",
            "$myhostname ESMTP see https://example.org/policy",
        ] {
            assert!(unsupported_tables(value).is_empty(), "{value}");
        }
    }

    #[test]
    fn names_file_line_parameter_and_service() {
        let main = MainCf::parse(
            "db = mongodb\nvirtual_mailbox_maps = proxy:$db:/etc/rostfix/v.cf\nproxy_read_maps = proxy:tcp:127.0.0.1:9\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let master = MasterCf::parse(
            "smtp inet n - n - - smtpd\n  -o smtpd_sender_login_maps=nisplus:/etc/rostfix/s.cf\n",
            Path::new("/etc/rostfix/master.cf"),
            100,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            table_warnings(&main, Some(&master)),
            [
                "/etc/rostfix/main.cf, line 2: parameter virtual_mailbox_maps: table \
                 proxy:mongodb:/etc/rostfix/v.cf: type mongodb is not implemented by Rostfix; \
                 lookups in it fail",
                "/etc/rostfix/master.cf, line 1: parameter smtpd_sender_login_maps (-o of \
                 service smtp/inet): table nisplus:/etc/rostfix/s.cf: type nisplus is not \
                 implemented by Rostfix; lookups in it fail",
            ]
        );
    }
}
