//! Runs the built `sendmail` for the paths that need no configuration: `--help`, bad
//! options and unsupported modes (these must fail before main.cf is read).

use std::process::Command;

fn sendmail(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sendmail"))
        .args(args)
        .env("MAIL_CONFIG", "/nonexistent")
        .output()
        .expect("run sendmail");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_is_a_manual_page() {
    let (code, out, _) = sendmail(&["--help"]);
    assert_eq!(code, 0);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(out.contains(section), "missing {section}");
    }
}

#[test]
fn unsupported_modes_exit_64() {
    let (code, _, err) = sendmail(&["-bd"]);
    assert_eq!(code, 64);
    assert_eq!(err.trim(), "sendmail: fatal: -bd is not supported");
    let (code, _, err) = sendmail(&["-qX"]);
    assert_eq!(code, 64);
    assert!(err.contains("-qX is not supported"));
    let (code, _, err) = sendmail(&["-N", "sometimes", "r"]);
    assert_eq!(code, 64);
    assert!(err.contains("bad -N option"));
}

#[test]
fn bad_option_prints_usage() {
    let (code, _, err) = sendmail(&["-k"]);
    assert_eq!(code, 64);
    assert!(err.contains("usage: sendmail"));
    let (code, _, err) = sendmail(&["-f"]);
    assert_eq!(code, 64);
    assert!(err.contains("requires an argument"));
}
