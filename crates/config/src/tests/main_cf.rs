//! main.cf: syntax, expansion, typed values, overrides, warnings, dynamic defaults.

use super::support::{error_text, TempDir};
use crate::{config_dir, ConfigError, MainCf, Setting};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn parse(text: &str) -> MainCf {
    MainCf::parse(text, Path::new("/etc/rostfix/main.cf")).unwrap_or_else(|e| panic!("parse: {e}"))
}

#[test]
fn settings_comments_blank_lines_and_continuations() {
    let config = parse(
        "# leading comment\n\
         \n\
         myhostname = mail.example.org\n\
         mydestination = $myhostname,\n\
         \u{20}   localhost\n\
         # comment inside\n\
         \tother.example\n\
         relayhost=[smtp.example.net]:587\n\
         smtpd_banner = hi # not a comment\n\
         home_mailbox =\n",
    );
    assert_eq!(config.raw("myhostname"), Some("mail.example.org"));
    assert_eq!(
        config.raw("mydestination"),
        Some("$myhostname, localhost other.example")
    );
    assert_eq!(
        config.get("mydestination"),
        "mail.example.org, localhost other.example"
    );
    assert_eq!(
        config.get_list("mydestination"),
        vec!["mail.example.org", "localhost", "other.example"]
    );
    assert_eq!(config.raw("relayhost"), Some("[smtp.example.net]:587"));
    assert_eq!(config.get("smtpd_banner"), "hi # not a comment");
    assert_eq!(config.raw("home_mailbox"), Some(""));
    let explicit: Vec<(String, usize)> = config
        .explicit()
        .into_iter()
        .map(|s| (s.name, s.line))
        .collect();
    assert_eq!(
        explicit,
        vec![
            ("myhostname".to_string(), 3),
            ("mydestination".to_string(), 4),
            ("relayhost".to_string(), 8),
            ("smtpd_banner".to_string(), 9),
            ("home_mailbox".to_string(), 10),
        ]
    );
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn last_setting_wins() {
    let config = parse("max_use = 10\nmax_use = 20\n");
    assert_eq!(config.get_int("max_use"), 20);
    assert_eq!(config.explicit().len(), 1);
    assert_eq!(config.explicit()[0].line, 2);
}

#[test]
fn line_without_equals_is_a_syntax_error() {
    let message = error_text(MainCf::parse(
        "biff = no\n\nthis is wrong\n",
        Path::new("/x/main.cf"),
    ));
    assert_eq!(
        message,
        "/x/main.cf, line 3: missing '=' after parameter name: \"this is wrong\""
    );
    let message = error_text(MainCf::parse("= value\n", Path::new("/x/main.cf")));
    assert!(message.starts_with("/x/main.cf, line 1:"), "{message}");
    let message = error_text(MainCf::parse(
        "two words = value\n",
        Path::new("/x/main.cf"),
    ));
    assert!(message.starts_with("/x/main.cf, line 1:"), "{message}");
}

#[test]
fn leading_continuation_is_a_syntax_error() {
    let result = MainCf::parse("\n   indented = 1\n", Path::new("/x/main.cf"));
    assert!(
        matches!(&result, Err(ConfigError::Syntax { line: 2, .. })),
        "{result:?}"
    );
}

#[test]
fn bad_values_name_file_line_and_parameter() {
    let cases = [
        ("max_use = lots\n", 1, "max_use", "lots"),
        ("# c\nbiff = maybe\n", 2, "biff", "maybe"),
        ("max_idle = 10x\n", 1, "max_idle", "10x"),
        ("message_size_limit = -1\n", 1, "message_size_limit", "-1"),
        ("smtpd_timeout =\n", 1, "smtpd_timeout", ""),
        ("a_number = ten\nmax_use = $a_number\n", 2, "max_use", "ten"),
    ];
    for (text, line, param, value) in cases {
        let result = MainCf::parse(text, Path::new("/etc/rostfix/main.cf"));
        match &result {
            Err(ConfigError::BadValue {
                file,
                line: got_line,
                param: got_param,
                value: got_value,
                ..
            }) => {
                assert_eq!(file, &PathBuf::from("/etc/rostfix/main.cf"));
                assert_eq!(
                    (*got_line, got_param.as_str(), got_value.as_str()),
                    (line, param, value)
                );
            }
            other => panic!("{text:?}: expected BadValue, got {other:?}"),
        }
        let message = error_text(result);
        assert!(
            message.starts_with(&format!(
                "/etc/rostfix/main.cf, line {line}: bad value for parameter {param}"
            )),
            "{message}"
        );
    }
}

#[test]
fn typed_getters() {
    let config = parse(
        "biff = no\nsmtputf8_enable = TRUE\nmax_use = 7\nmax_idle = 2m\nmaximal_queue_lifetime = 3\n\
         delay_warning_time = 4h\nipc_timeout = 1w\n",
    );
    assert!(!config.get_bool("biff"));
    assert!(config.get_bool("smtputf8_enable"));
    assert!(config.get_bool("owner_request_special"));
    assert_eq!(config.get_int("max_use"), 7);
    assert_eq!(config.get_int("default_process_limit"), 100);
    assert_eq!(config.get_time("max_idle"), Duration::from_secs(120));
    // A bare number is in the parameter's default unit: days for maximal_queue_lifetime.
    assert_eq!(
        config.get_time("maximal_queue_lifetime"),
        Duration::from_secs(3 * 86400)
    );
    assert_eq!(
        config.get_time("bounce_queue_lifetime"),
        Duration::from_secs(5 * 86400)
    );
    assert_eq!(
        config.get_time("delay_warning_time"),
        Duration::from_secs(4 * 3600)
    );
    assert_eq!(
        config.get_time("ipc_timeout"),
        Duration::from_secs(7 * 86400)
    );
    assert_eq!(config.get_time("smtpd_timeout"), Duration::from_secs(300));
    assert_eq!(
        config.get_list("notify_classes"),
        vec!["resource", "software"]
    );
    assert_eq!(config.get_list("home_mailbox"), Vec::<String>::new());
    assert_eq!(config.get_u64("max_use"), 7);
    assert_eq!(config.get_u32("message_size_limit"), 10_240_000);
}

#[test]
fn unsigned_getters_clamp() {
    let config = parse("smtpd_recipient_limit = 99999999999\n");
    assert_eq!(config.get_u64("smtpd_recipient_limit"), 99_999_999_999);
    assert_eq!(config.get_u32("smtpd_recipient_limit"), u32::MAX);
}

#[test]
fn bad_value_names_where_the_value_came_from() {
    let mut config = parse("\nsmtpd_forbid_bare_newline = maybe\n");
    assert_eq!(
        config
            .bad_value("smtpd_forbid_bare_newline", "expected yes, no or normalize")
            .to_string(),
        "/etc/rostfix/main.cf, line 2: bad value for parameter smtpd_forbid_bare_newline: \
         \"maybe\": expected yes, no or normalize"
    );
    config
        .set_override("smtpd_forbid_bare_newline", "perhaps")
        .unwrap();
    assert_eq!(
        config
            .bad_value("smtpd_forbid_bare_newline", "expected yes")
            .to_string(),
        "override -o smtpd_forbid_bare_newline=perhaps: expected yes"
    );
}

#[test]
fn expansion_against_settings_and_defaults() {
    let config = parse(
        "myhostname = mail.example.org\n\
         smtpd_banner = $myhostname ESMTP ${mail_name} $(mail_version) $$5\n\
         my_maps = hash:${config_directory}/maps\n\
         transport_maps = $my_maps\n\
         relayhost = ${unset_thing?[x]}${unset_thing:[direct]}\n\
         sender_bcc_maps = ${my_maps?{present}:{absent}}\n",
    );
    assert_eq!(
        config.get("smtpd_banner"),
        "mail.example.org ESMTP Rostfix 0.1.0 $5"
    );
    assert_eq!(config.get("transport_maps"), "hash:/etc/rostfix/maps");
    assert_eq!(config.get("relayhost"), "[direct]");
    assert_eq!(config.get("sender_bcc_maps"), "present");
    assert_eq!(config.get("mydomain"), "example.org");
    assert_eq!(config.get("myorigin"), "mail.example.org");
    assert_eq!(
        config.get("mydestination"),
        "mail.example.org, localhost.example.org, localhost"
    );
    assert_eq!(config.get("local_transport"), "local:mail.example.org");
    assert_eq!(config.get("no_such_parameter"), "");
    // The user-defined my_maps is referenced, so it is not reported as unused.
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
}

#[test]
fn recursion_is_an_error() {
    let result = MainCf::parse(
        "myorigin = $mydomain\nmydomain = ${myorigin}\n",
        Path::new("main.cf"),
    );
    assert!(
        matches!(result, Err(ConfigError::Recursion { .. })),
        "{result:?}"
    );
    let result = MainCf::parse("relayhost = $relayhost\n", Path::new("main.cf"));
    assert!(
        matches!(result, Err(ConfigError::Recursion { .. })),
        "{result:?}"
    );
}

#[test]
fn unknown_parameters_are_warnings() {
    let config = parse("biff = no\nfoo_bar = 1\n  2\n");
    assert_eq!(
        config.warnings(),
        ["/etc/rostfix/main.cf: unused parameter: foo_bar=1 2"]
    );
    assert_eq!(config.raw("foo_bar"), Some("1 2"));
}

#[test]
fn overrides_win_and_are_validated() {
    let mut config = parse("syslog_name = rostfix\nmax_use = 5\n");
    config
        .set_override("syslog_name", "rostfix/submission")
        .unwrap_or_else(|e| panic!("{e}"));
    config
        .set_override("smtpd_tls_security_level", " encrypt ")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.get("syslog_name"), "rostfix/submission");
    assert_eq!(config.get("smtpd_tls_security_level"), "encrypt");
    let explicit = config.explicit();
    let last = explicit.last().cloned();
    assert_eq!(
        last,
        Some(Setting {
            name: "smtpd_tls_security_level".into(),
            raw: "encrypt".into(),
            file: None,
            line: 0
        })
    );
    let result = config.set_override("max_use", "many");
    assert!(
        matches!(&result, Err(ConfigError::BadOverride { param, .. }) if param == "max_use"),
        "{result:?}"
    );
    assert_eq!(
        error_text(result),
        "override -o max_use=many: expected a non-negative integer"
    );
    // A rejected override leaves the previous value.
    assert_eq!(config.get_int("max_use"), 5);
    let result = config.set_override("myorigin", "$myorigin");
    assert!(matches!(result, Err(ConfigError::Recursion { .. })));
    assert_eq!(config.get("myorigin"), config.get("myhostname"));
}

#[test]
fn dynamic_defaults() {
    let config = MainCf::defaults(Path::new("/srv/conf"));
    let hostname = config.get("myhostname");
    assert!(hostname.contains('.'), "{hostname}");
    assert_eq!(config.get("config_directory"), "/srv/conf");
    let domain = config.get("mydomain");
    assert!(
        hostname.ends_with(&format!(".{domain}")) || domain == "localdomain",
        "{hostname} {domain}"
    );
    // A two-label name is itself a domain: Postfix falls back to localdomain.
    assert_eq!(
        parse("myhostname = example.com\n").get("mydomain"),
        "localdomain"
    );
    assert_eq!(
        parse("myhostname = a.b.example.com\n").get("mydomain"),
        "b.example.com"
    );
    // myhostname referring to mydomain does not loop through mydomain's default.
    assert_eq!(
        parse("myhostname = mx.$mydomain\n").get("myhostname"),
        "mx.localdomain"
    );
}

#[test]
fn load_reads_dir_main_cf() {
    let dir = TempDir::new();
    dir.write("main.cf", "queue_directory = /tmp/q\n");
    let config = MainCf::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.get("queue_directory"), "/tmp/q");
    assert_eq!(config.config_dir(), dir.path());
    assert_eq!(
        config.get("config_directory"),
        dir.path().display().to_string()
    );
    let missing = TempDir::new();
    let message = error_text(MainCf::load(missing.path()));
    assert!(message.contains("main.cf"), "{message}");
}

#[test]
fn config_dir_prefers_cli_then_env() {
    assert_eq!(config_dir(Some(Path::new("/a"))), PathBuf::from("/a"));
    // The environment is process-wide; this is the only test that touches MAIL_CONFIG.
    std::env::set_var("MAIL_CONFIG", "/from/env");
    assert_eq!(config_dir(None), PathBuf::from("/from/env"));
    assert_eq!(config_dir(Some(Path::new("/b"))), PathBuf::from("/b"));
    std::env::set_var("MAIL_CONFIG", "");
    assert_eq!(config_dir(None), PathBuf::from("/etc/rostfix"));
    std::env::remove_var("MAIL_CONFIG");
    assert_eq!(config_dir(None), PathBuf::from("/etc/rostfix"));
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC*") {
        let _ = MainCf::parse(&text, Path::new("main.cf"));
    }

    #[test]
    fn parse_never_panics_on_config_like_text(
        lines in proptest::collection::vec("[ \t#]?[a-z_$={}()?:, 0-9]{0,30}", 0..20)
    ) {
        let text = lines.join("\n");
        if let Ok(config) = MainCf::parse(&text, Path::new("main.cf")) {
            for setting in config.explicit() {
                let _ = config.get(&setting.name);
            }
        }
    }
}

#[test]
fn stress_defaults_follow_the_stress_parameter() {
    // Postfix's defaults: master passes `-o stress=yes` to a service at its process
    // limit, and smtpd's timeouts and error limits shrink.
    let mut config = parse("myhostname = mail.example.org\n");
    assert_eq!(config.get("stress"), "");
    assert_eq!(config.get_time("smtpd_timeout"), Duration::from_secs(300));
    assert_eq!(config.get_int("smtpd_hard_error_limit"), 20);
    assert_eq!(config.get_int("smtpd_junk_command_limit"), 100);
    assert!(!config.get_bool("smtpd_per_record_deadline"));
    config.set_override("stress", "yes").unwrap();
    assert_eq!(config.get_time("smtpd_timeout"), Duration::from_secs(10));
    assert_eq!(config.get_int("smtpd_hard_error_limit"), 1);
    assert_eq!(config.get_int("smtpd_junk_command_limit"), 1);
    assert!(config.get_bool("smtpd_per_record_deadline"));
    // An explicit main.cf value may use the same syntax.
    let mut config = parse("smtpd_timeout = ${stress?{5}:{60}}s\n");
    assert_eq!(config.get_time("smtpd_timeout"), Duration::from_secs(60));
    config.set_override("stress", "yes").unwrap();
    assert_eq!(config.get_time("smtpd_timeout"), Duration::from_secs(5));
}
