//! The Ubuntu + Dovecot fixtures must load: every parameter known, every -o valid.

use super::support::manifest_dir;
use crate::{MainCf, MasterCf, ServiceType};

#[test]
fn ubuntu_main_cf_loads_without_warnings() {
    let path = manifest_dir().join("testdata/ubuntu-dovecot-main.cf");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let config = MainCf::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    assert_eq!(config.get("myorigin"), "example.org");
    assert_eq!(
        config.get("smtpd_banner"),
        "mail.example.org ESMTP Rostfix (Ubuntu)"
    );
    assert_eq!(
        config.get("smtp_tls_session_cache_database"),
        "btree:/var/lib/rostfix/smtp_scache"
    );
    assert_eq!(config.get_int("mailbox_size_limit"), 0);
    assert!(config.get_bool("smtpd_sasl_auth_enable"));
    assert!(!config.get_bool("biff"));
    assert_eq!(config.get("home_mailbox"), "Maildir/");
    assert_eq!(config.get("relayhost"), "");
    assert_eq!(
        config.get_list("mydestination"),
        vec![
            "mail.example.org",
            "localhost.example.org",
            "localhost",
            "example.org"
        ]
    );
}

#[test]
fn ubuntu_master_cf_loads_with_overrides() {
    let path = manifest_dir().join("testdata/ubuntu-dovecot-master.cf");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let master = MasterCf::parse(&text, &path, 100).unwrap_or_else(|e| panic!("{e}"));
    // Every entry of the fixture, in file order (28: the brief's "30+" counted loosely).
    let names: Vec<String> = master
        .services
        .iter()
        .map(|s| format!("{}/{}", s.name, s.service_type))
        .collect();
    assert_eq!(names.len(), 28, "{names:?}");
    assert_eq!(names.first().map(String::as_str), Some("smtp/inet"));
    assert_eq!(names.last().map(String::as_str), Some("maildrop/unix"));
    let submission = master
        .find("submission", ServiceType::Inet)
        .unwrap_or_else(|| panic!("no submission"));
    assert_eq!(
        submission.overrides(),
        vec![
            ("syslog_name".to_string(), "postfix/submission".to_string()),
            (
                "smtpd_tls_security_level".to_string(),
                "encrypt".to_string()
            ),
            ("smtpd_sasl_auth_enable".to_string(), "yes".to_string()),
            (
                "smtpd_recipient_restrictions".to_string(),
                "permit_sasl_authenticated,reject".to_string()
            ),
            (
                "milter_macro_daemon_name".to_string(),
                "ORIGINATING".to_string()
            ),
        ]
    );
    let maildrop = master
        .find("maildrop", ServiceType::Unix)
        .unwrap_or_else(|| panic!("no maildrop"));
    assert_eq!(maildrop.command, "pipe");
    assert_eq!(
        maildrop.args,
        vec![
            "flags=DRhu",
            "user=vmail",
            "argv=/usr/bin/maildrop",
            "-d",
            "${recipient}"
        ]
    );
    assert!(!maildrop.unpriv);
    let postlog = master
        .find("postlog", ServiceType::UnixDgram)
        .unwrap_or_else(|| panic!("no postlog"));
    assert_eq!(postlog.command, "postlogd");
    let tlsmgr = master
        .find("tlsmgr", ServiceType::Unix)
        .unwrap_or_else(|| panic!("no tlsmgr"));
    assert!(tlsmgr
        .wakeup
        .is_some_and(|w| w.seconds == 1000 && w.after_first_use));

    // Every -o of the fixture names a parameter we know, and the overrides apply.
    let main_path = manifest_dir().join("testdata/ubuntu-dovecot-main.cf");
    let main_text = std::fs::read_to_string(&main_path).unwrap_or_else(|e| panic!("{e}"));
    for entry in &master.services {
        let mut config = MainCf::parse(&main_text, &main_path).unwrap_or_else(|e| panic!("{e}"));
        for (name, value) in entry.overrides() {
            assert!(crate::lookup_param(&name).is_some(), "unknown -o {name}");
            config
                .set_override(&name, &value)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
        }
    }
}

#[test]
fn ubuntu_settings_all_take_effect() {
    let dir = manifest_dir().join("testdata");
    let main_path = dir.join("ubuntu-dovecot-main.cf");
    let master_path = dir.join("ubuntu-dovecot-master.cf");
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let main = MainCf::parse(&read(&main_path), &main_path).unwrap_or_else(|e| panic!("{e}"));
    let master =
        MasterCf::parse(&read(&master_path), &master_path, 100).unwrap_or_else(|e| panic!("{e}"));
    let found: Vec<(String, Option<String>)> = crate::ineffective::in_main_cf(&main)
        .into_iter()
        .chain(crate::ineffective::in_master_cf(&master, &main))
        .map(|item| (item.param, item.service))
        .collect();
    // biff = no is what Rostfix does anyway; the milter macro has an effect now that
    // smtpd_milters work, and the TLS session cache now that smtp resumes sessions.
    assert!(found.is_empty(), "{found:?}");
    assert!(crate::ineffective::comment_warnings(&main).is_empty());
}
