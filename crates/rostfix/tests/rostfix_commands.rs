//! End-to-end tests of `rostfix check|start|status|reload|stop` against the real master
//! binary (taken from the same target directory; skipped when it was not built) on a
//! configuration with no services, as whatever user runs the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROSTFIX: &str = env!("CARGO_BIN_EXE_rostfix");

struct Setup {
    base: PathBuf,
    conf: PathBuf,
    queue: PathBuf,
}

/// The users to name as mail_owner and setgid_group: the invoker's own when not root;
/// as root (mail_owner must not be root) `nobody` and its group, if they exist.
fn owner_and_group() -> Option<(String, String)> {
    let uid = nix::unistd::geteuid();
    let user = if uid.is_root() {
        nix::unistd::User::from_name("nobody").ok()??
    } else {
        nix::unistd::User::from_uid(uid).ok()??
    };
    let group = nix::unistd::Group::from_gid(user.gid).ok()??;
    Some((user.name, group.name))
}

impl Setup {
    fn new(tag: &str) -> Option<Setup> {
        let master = Path::new(ROSTFIX).with_file_name("master");
        if !master.is_file() {
            eprintln!(
                "skipped: {} not built (cargo build -p rostfix-master)",
                master.display()
            );
            return None;
        }
        let (owner, group) = owner_and_group()?;
        let base = std::env::temp_dir().join(format!("rostfix-it-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (conf, queue) = (base.join("etc"), base.join("queue"));
        std::fs::create_dir_all(&conf).unwrap();
        let main = format!(
            "queue_directory = {}\ndaemon_directory = {}\nmaillog_file = {}\nmail_owner = {owner}\n\
             setgid_group = {group}\ninet_interfaces = 127.0.0.1\n",
            queue.display(),
            master.parent().unwrap().display(),
            base.join("maillog").display()
        );
        std::fs::write(conf.join("main.cf"), main).unwrap();
        std::fs::write(conf.join("master.cf"), "# no services\n").unwrap();
        Some(Setup { base, conf, queue })
    }

    fn run(&self, command: &str) -> (i32, String) {
        let out: Output = Command::new(ROSTFIX)
            .arg("-c")
            .arg(&self.conf)
            .arg(command)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.run("stop");
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

#[test]
fn start_status_reload_stop() {
    let Some(setup) = Setup::new("cycle") else {
        return;
    };
    let (code, err) = setup.run("status");
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "rostfix/rostfix: the Rostfix mail system is not running\n"
        )
    );

    let (code, err) = setup.run("start");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("rostfix/rostfix: starting the Rostfix mail system"),
        "{err}"
    );
    for dir in [
        "incoming", "active", "deferred", "hold", "corrupt", "defer", "bounce", "private",
        "public", "maildrop", "pid",
    ] {
        assert!(setup.queue.join(dir).is_dir(), "{dir} created");
    }
    let (code, err) = setup.run("status");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("the Rostfix mail system is running: PID: "),
        "{err}"
    );

    let (code, err) = setup.run("start");
    assert_eq!(code, 1);
    assert!(
        err.contains("rostfix/rostfix: fatal: the Rostfix mail system is already running"),
        "{err}"
    );

    let (code, err) = setup.run("reload");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("refreshing the Rostfix mail system"), "{err}");
    assert_eq!(setup.run("status").0, 0, "still running after SIGHUP");

    let (code, err) = setup.run("stop");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopping the Rostfix mail system"), "{err}");
    assert!(
        !setup.queue.join("pid").join("master.pid").exists(),
        "pid file removed"
    );
    assert_eq!(setup.run("status").0, 1);
    let (code, err) = setup.run("stop");
    assert_eq!(code, 1);
    assert!(
        err.contains("fatal: the Rostfix mail system is not running"),
        "{err}"
    );
    let (code, _) = setup.run("reload");
    assert_eq!(code, 1);

    let log = std::fs::read_to_string(setup.base.join("maillog")).unwrap();
    assert!(
        log.contains("rostfix/master[") && log.contains("daemon started"),
        "{log}"
    );
    assert!(log.contains("reload -- version"), "{log}");
}

#[test]
fn check_names_file_line_and_parameter() {
    let Some(setup) = Setup::new("check") else {
        return;
    };
    let main = setup.conf.join("main.cf");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, format!("{text}max_use = lots\n")).unwrap();
    let line = text.lines().count() + 1;
    for command in ["check", "start"] {
        let (code, err) = setup.run(command);
        assert_eq!(code, 1);
        assert!(
            err.contains(&main.display().to_string()) && err.contains(&format!("line {line}")),
            "{err}"
        );
        assert!(err.contains("max_use"), "{err}");
    }
    assert_eq!(setup.run("status").0, 1, "nothing started");

    // Unknown users are named (only checked as root).
    if nix::unistd::geteuid().is_root() {
        std::fs::write(&main, format!("{text}mail_owner = no-such-user-here\n")).unwrap();
        let (code, err) = setup.run("check");
        assert_eq!(code, 1);
        assert!(err.contains("no-such-user-here"), "{err}");
    }
}

#[test]
fn usage_and_help() {
    let out = Command::new(ROSTFIX).arg("restart").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: rostfix"));
    let out = Command::new(ROSTFIX).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(help.contains(section), "{section}");
    }
}
