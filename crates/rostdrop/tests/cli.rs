//! Runs the built `rostdrop` for the paths decided before main.cf is read: `--help`,
//! usage errors, and refusing an unlisted configuration directory to a non-root user.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

fn rostdrop(args: &[&str], as_nobody: bool, mail_config: Option<&str>) -> Output {
    run(env!("CARGO_BIN_EXE_rostdrop"), args, as_nobody, mail_config)
}

fn run(program: &str, args: &[&str], as_nobody: bool, mail_config: Option<&str>) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove("MAIL_CONFIG");
    if let Some(dir) = mail_config {
        cmd.env("MAIL_CONFIG", dir);
    }
    if as_nobody {
        cmd.uid(65534).gid(65534);
    }
    // A freshly copied binary can be briefly "text file busy" while another test
    // thread's fork still holds the copy's write descriptor; that passes at its exec.
    for _ in 0..50 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.expect("run rostdrop"),
        }
    }
    panic!("{program}: text file busy for a second")
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
    if !rostfix_testsupport::root() {
        return;
    }
    // Installed as it is in production: set-group-id (group `mail` stands in for
    // setgid_group), so the caller gains a group and the directory must be trusted.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("rostdrop-setgid");
    std::fs::create_dir_all(&dir).expect("tmpdir");
    let setgid = dir.join("rostdrop");
    std::fs::copy(env!("CARGO_BIN_EXE_rostdrop"), &setgid).expect("copy");
    nix::unistd::chown(&setgid, Some(0.into()), Some(8.into())).expect("chown");
    std::fs::set_permissions(
        &setgid,
        std::os::unix::fs::PermissionsExt::from_mode(0o2755),
    )
    .expect("chmod");
    let setgid = setgid.to_str().expect("utf-8 path");

    let out = run(
        setgid,
        &["-c", "/tmp", "-f", "joe", "--", "a@b"],
        true,
        None,
    );
    assert_eq!(out.status.code(), Some(77));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("rostdrop: fatal: unauthorized configuration directory name: /tmp"),
        "{err}"
    );

    let out = run(setgid, &["-f", "joe", "--", "a@b"], true, Some("/tmp"));
    assert_eq!(out.status.code(), Some(77));

    // Without set-group-id it guards nothing, so it goes on (and fails later: /tmp
    // holds no main.cf), as in a developer's unprivileged `make run`.
    let out = rostdrop(&["-c", "/tmp", "-f", "joe", "--", "a@b"], true, None);
    assert_ne!(out.status.code(), Some(77), "{:?}", out);
}
