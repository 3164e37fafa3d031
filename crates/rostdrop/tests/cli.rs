//! Runs the built `rostdrop` for the paths decided before main.cf is read: `--help`,
//! usage errors, and refusing an untrusted configuration directory to a non-root user.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

fn rostdrop(args: &[&str], as_nobody: bool, mail_config: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rostdrop"));
    cmd.args(args).env_remove("MAIL_CONFIG");
    if let Some(dir) = mail_config {
        cmd.env("MAIL_CONFIG", dir);
    }
    if as_nobody {
        cmd.uid(65534).gid(65534);
    }
    cmd.output().expect("run rostdrop")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn help_is_a_manual_page() {
    let out = rostdrop(&["--help"], false, None);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(text.contains(section), "missing {section}");
    }
}

#[test]
fn usage_errors_exit_64() {
    for args in [&["--", "rcpt"][..], &["-f", "joe", "--"][..], &["-z"][..]] {
        let out = rostdrop(args, false, None);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: rostdrop"));
    }
}

#[test]
fn untrusted_config_dir_refused_to_users() {
    if !is_root() {
        eprintln!("skipped: needs root to run as nobody");
        return;
    }
    let out = rostdrop(&["-c", "/tmp", "-f", "joe", "--", "a@b"], true, None);
    assert_eq!(out.status.code(), Some(77));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("rostdrop: fatal: /tmp: not a trusted configuration directory"),
        "{err}"
    );

    let out = rostdrop(&["-f", "joe", "--", "a@b"], true, Some("/tmp"));
    assert_eq!(out.status.code(), Some(77));
}
