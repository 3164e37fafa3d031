//! master.cf: columns, defaults, wakeup, continuation, overrides and errors.

use super::support::error_text;
use crate::{parse_master_cf_raw, ConfigError, MasterCf, ServiceType, Wakeup};
use proptest::prelude::*;
use std::path::Path;

fn parse(text: &str) -> MasterCf {
    MasterCf::parse(text, Path::new("/etc/rostfix/master.cf"), 100)
        .unwrap_or_else(|e| panic!("parse: {e}"))
}

#[test]
fn columns_and_defaults() {
    let master = parse(
        "# comment\n\
         smtp      inet  n       -       y       -       -       smtpd\n\
         pickup    unix  n       -       y       60      1       pickup\n\
         tlsmgr    unix  -       -       y       1000?   1       tlsmgr\n\
         cleanup   unix  n       -       y       0       0       cleanup\n\
         postlog   unix-dgram n  -       n       -       1       postlogd\n\
         127.0.0.1:2525 inet n   y       n       -       7       smtpd -v\n\
         old       fifo  n       -       n       -       -       thing\n\
         tunnel    pass  -       -       n       -       -       thing\n",
    );
    let smtp = &master.services[0];
    assert_eq!(
        (
            smtp.name.as_str(),
            smtp.service_type,
            smtp.private,
            smtp.unpriv,
            smtp.chroot
        ),
        ("smtp", ServiceType::Inet, false, true, true)
    );
    assert_eq!(
        (smtp.wakeup, smtp.maxproc, smtp.command.as_str()),
        (None, 100, "smtpd")
    );
    assert!(smtp.args.is_empty());
    assert_eq!(smtp.line, 2);
    let pickup = &master.services[1];
    assert_eq!(
        pickup.wakeup,
        Some(Wakeup {
            seconds: 60,
            after_first_use: false
        })
    );
    assert_eq!(pickup.maxproc, 1);
    let tlsmgr = &master.services[2];
    assert!(tlsmgr.private);
    assert_eq!(
        tlsmgr.wakeup,
        Some(Wakeup {
            seconds: 1000,
            after_first_use: true
        })
    );
    let cleanup = &master.services[3];
    assert_eq!((cleanup.wakeup, cleanup.maxproc), (None, 0));
    assert_eq!(master.services[4].service_type, ServiceType::UnixDgram);
    let custom = &master.services[5];
    assert_eq!(custom.name, "127.0.0.1:2525");
    assert_eq!(
        (custom.unpriv, custom.chroot, custom.maxproc),
        (true, false, 7)
    );
    assert_eq!(custom.args, vec!["-v"]);
    assert_eq!(master.services[6].service_type, ServiceType::Fifo);
    assert_eq!(master.services[7].service_type, ServiceType::Pass);
    assert!(master.find("pickup", ServiceType::Unix).is_some());
    assert!(master.find("pickup", ServiceType::Inet).is_none());
}

#[test]
fn default_process_limit_fills_maxproc() {
    let master = MasterCf::parse("smtp inet n - n - - smtpd\n", Path::new("m"), 42)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(master.services[0].maxproc, 42);
}

#[test]
fn continuation_lines_and_overrides() {
    let master = parse(
        "submission inet n - y - - smtpd\n\
         \x20 -o syslog_name=postfix/submission\n\
         # a comment between continuation lines\n\
         \x20 -o smtpd_tls_security_level=encrypt\n\
         \t-o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }\n\
         \x20 -osmtpd_sasl_auth_enable=yes -v\n\
         \x20 -o {\n\
         \x20   milter_macro_daemon_name = ORIGINATING }\n\
         smtp inet n - y - - smtpd\n",
    );
    let submission = &master.services[0];
    assert_eq!(
        submission.overrides(),
        vec![
            ("syslog_name".to_string(), "postfix/submission".to_string()),
            (
                "smtpd_tls_security_level".to_string(),
                "encrypt".to_string()
            ),
            (
                "smtpd_recipient_restrictions".to_string(),
                "permit_sasl_authenticated, reject".to_string()
            ),
            ("smtpd_sasl_auth_enable".to_string(), "yes".to_string()),
            (
                "milter_macro_daemon_name".to_string(),
                "ORIGINATING".to_string()
            ),
        ]
    );
    assert_eq!(submission.plain_args(), vec!["-v"]);
    assert_eq!(
        submission.args[5],
        "{ smtpd_recipient_restrictions = permit_sasl_authenticated, reject }"
    );
    assert_eq!(master.services[1].line, 9);
}

#[test]
fn syntax_errors_name_file_and_line() {
    let cases = [
        (
            "smtp inet n - y - - smtpd\nbad unix n - y -\n",
            2,
            "8 or more columns",
        ),
        (
            "smtp tcp n - y - - smtpd\n",
            1,
            "bad transport type: \"tcp\"",
        ),
        ("smtp inet x - y - - smtpd\n", 1, "bad private field"),
        ("smtp inet n yes y - - smtpd\n", 1, "bad unprivileged field"),
        ("smtp inet n - Y - - smtpd\n", 1, "bad chroot field"),
        ("pickup unix n - y 6O 1 pickup\n", 1, "bad wakeup field"),
        ("pickup unix n - y ? 1 pickup\n", 1, "bad wakeup field"),
        ("pickup unix n - y - many pickup\n", 1, "bad maxproc field"),
        (
            "pickup unix n - y - 99999999999 pickup\n",
            1,
            "bad maxproc field",
        ),
        (
            "smtp inet n - y - - smtpd\n  -o { a = b\n",
            1,
            "missing '}'",
        ),
        ("# c\n  -o x=y\n", 2, "continuation line"),
        (
            "smtp inet n - y - - smtpd\nsmtp inet n - y - - smtpd\n",
            2,
            "duplicate service: smtp/inet",
        ),
    ];
    for (text, line, needle) in cases {
        let result = MasterCf::parse(text, Path::new("/etc/rostfix/master.cf"), 100);
        assert!(
            matches!(&result, Err(ConfigError::Syntax { line: l, .. }) if *l == line),
            "{text:?}: {result:?}"
        );
        let message = error_text(result);
        assert!(
            message.starts_with(&format!("/etc/rostfix/master.cf, line {line}: ")),
            "{message}"
        );
        assert!(message.contains(needle), "{text:?}: {message}");
    }
}

#[test]
fn same_name_with_other_type_is_fine() {
    let master = parse("smtp inet n - y - - smtpd\nsmtp unix - - y - - smtp\n");
    assert_eq!(master.services.len(), 2);
}

#[test]
fn wakeup_zero_is_none() {
    let master = parse("a unix n - n 0 1 x\nb unix n - n 0? 1 x\n");
    assert_eq!(
        (master.services[0].wakeup, master.services[1].wakeup),
        (None, None)
    );
}

#[test]
fn raw_entries_keep_dashes_and_normalize() {
    let raw = parse_master_cf_raw(
        "qmgr unix  n  -  n  300 1 qmgr\nrelay unix - - y - - smtp\n   -o   syslog_name=postfix/$service_name\n",
        Path::new("m"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        raw[0].normalized(),
        "qmgr       unix  n       -       n       300     1       qmgr"
    );
    assert_eq!(
        raw[1].normalized(),
        "relay      unix  -       -       y       -       -       smtp -o syslog_name=postfix/$service_name"
    );
    assert_eq!((raw[1].line, raw[1].last_line), (2, 3));
    assert_eq!((raw[1].name(), raw[1].service_type()), ("relay", "unix"));
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC*") {
        let _ = MasterCf::parse(&text, Path::new("master.cf"), 100);
    }

    #[test]
    fn parse_never_panics_on_master_like_text(
        lines in proptest::collection::vec("[ \t#]?[a-z0-9{}=?\\- ]{0,40}", 0..20)
    ) {
        if let Ok(master) = MasterCf::parse(&lines.join("\n"), Path::new("master.cf"), 100) {
            for entry in &master.services {
                let _ = entry.overrides();
            }
        }
    }
}
