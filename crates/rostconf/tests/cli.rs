//! Runs the built rostconf binary against scratch configuration directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch configuration directory, removed when dropped.
struct ConfDir(PathBuf);

impl ConfDir {
    fn new(main_cf: &str, master_cf: &str) -> ConfDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("rostconf-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("main.cf"), main_cf).unwrap();
        std::fs::write(path.join("master.cf"), master_cf).unwrap();
        ConfDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name)).unwrap()
    }
}

impl Drop for ConfDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `rostconf -c DIR ARGS...`; returns (exit code, stdout, stderr).
fn rostconf(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_rostconf"))
        .arg("-c")
        .arg(dir)
        .args(args)
        .env_remove("MAIL_CONFIG")
        .output()
        .unwrap();
    decode(output)
}

fn decode(output: Output) -> (i32, String, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const MAIN: &str = "# Rostfix test main.cf\n\
myhostname = mail.example.org\n\
\n\
# the banner\n\
smtpd_banner = $myhostname ESMTP $mail_name\n\
biff = no\n\
mydestination = $myhostname,\n\
\x20   localhost\n\
my_custom = unused here\n";

const MASTER: &str = "# header\n\
smtp      inet  n       -       y       -       -       smtpd\n\
submission inet n       -       y       -       -       smtpd\n\
\x20 -o syslog_name=rostfix/submission\n\
\x20 -o smtpd_sasl_auth_enable=yes\n\
pickup    unix  n       -       y       60      1       pickup\n\
smtp      unix  -       -       y       -       -       smtp\n";

#[test]
fn explicit_settings_sorted_with_unused_warning() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, out, err) = rostconf(dir.path(), &["-n"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "biff = no\nmy_custom = unused here\nmydestination = $myhostname, localhost\n\
         myhostname = mail.example.org\nsmtpd_banner = $myhostname ESMTP $mail_name\n"
    );
    let main_cf = dir.path().join("main.cf");
    assert_eq!(
        err,
        format!(
            "rostconf: warning: {}: unused parameter: my_custom=unused here\n",
            main_cf.display()
        )
    );
}

#[test]
fn named_values_raw_expanded_and_bare() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, out, _) = rostconf(
        dir.path(),
        &["smtpd_banner", "queue_directory", "relayhost"],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "smtpd_banner = $myhostname ESMTP $mail_name\nqueue_directory = /var/spool/rostfix\nrelayhost = \n");
    let (_, out, _) = rostconf(dir.path(), &["-x", "smtpd_banner", "mydomain"]);
    assert_eq!(
        out,
        "smtpd_banner = mail.example.org ESMTP Rostfix\nmydomain = example.org\n"
    );
    let (_, out, _) = rostconf(dir.path(), &["-hx", "mydestination"]);
    assert_eq!(out, "mail.example.org, localhost\n");
    let (_, out, _) = rostconf(dir.path(), &["-n", "biff", "max_use"]);
    assert_eq!(out, "biff = no\n");
}

#[test]
fn all_parameters_are_listed_sorted() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, out, _) = rostconf(dir.path(), &[]);
    assert_eq!(code, 0);
    let names: Vec<&str> = out.lines().filter_map(|l| l.split(" = ").next()).collect();
    assert!(names.len() > 200, "{}", names.len());
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(out.contains("\nbiff = no\n"));
    assert!(out.contains("\nmail_owner = rostfix\n"));
    assert!(out.contains(&format!("\nconfig_directory = {}\n", dir.path().display())));
}

/// The host name as rostconf -d should report it: Postfix appends .localdomain to a
/// name without a dot.
fn expected_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    if name.contains('.') {
        name
    } else {
        format!("{name}.localdomain")
    }
}

#[test]
fn defaults_ignore_main_cf() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, out, err) = rostconf(
        dir.path(),
        &[
            "-d",
            "myhostname",
            "biff",
            "smtpd_banner",
            "maximal_queue_lifetime",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "myhostname = {}\nbiff = yes\nsmtpd_banner = $myhostname ESMTP $mail_name\nmaximal_queue_lifetime = 5d\n",
            expected_hostname()
        )
    );
    assert_eq!(err, "", "-d does not read main.cf, so no warnings");
    let (_, out, _) = rostconf(dir.path(), &["-dx", "smtpd_banner"]);
    assert_eq!(
        out,
        format!("smtpd_banner = {} ESMTP Rostfix\n", expected_hostname())
    );
}

#[test]
fn unknown_name_is_a_warning() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, out, err) = rostconf(dir.path(), &["no_such_param", "biff"]);
    assert_eq!(code, 0);
    assert_eq!(out, "biff = no\n");
    assert_eq!(
        err.lines().last(),
        Some("rostconf: warning: unknown parameter: no_such_param")
    );
}

#[test]
fn edit_keeps_comments_and_order() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, _, err) = rostconf(
        dir.path(),
        &[
            "-e",
            "mydestination=example.org",
            "relayhost = [smtp.example.net]",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        dir.read("main.cf"),
        "# Rostfix test main.cf\nmyhostname = mail.example.org\n\n# the banner\n\
         smtpd_banner = $myhostname ESMTP $mail_name\nbiff = no\nmydestination = example.org\n\
         my_custom = unused here\nrelayhost = [smtp.example.net]\n"
    );
    // name=value without -e edits too.
    let (code, _, _) = rostconf(dir.path(), &["biff=yes"]);
    assert_eq!(code, 0);
    assert!(dir.read("main.cf").contains("\nbiff = yes\nmydestination"));
}

#[test]
fn edit_refuses_a_bad_literal_value() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, _, err) = rostconf(dir.path(), &["-e", "max_use=lots"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("bad value for parameter max_use: \"lots\""),
        "{err}"
    );
    assert_eq!(dir.read("main.cf"), MAIN);
}

#[test]
fn remove_and_comment_out() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, _, _) = rostconf(dir.path(), &["-X", "mydestination", "my_custom"]);
    assert_eq!(code, 0);
    assert_eq!(
        dir.read("main.cf"),
        "# Rostfix test main.cf\nmyhostname = mail.example.org\n\n# the banner\n\
         smtpd_banner = $myhostname ESMTP $mail_name\nbiff = no\n"
    );
    let (code, _, _) = rostconf(dir.path(), &["-#", "biff"]);
    assert_eq!(code, 0);
    assert!(dir.read("main.cf").ends_with("\n#biff = no\n"));
    let (_, out, _) = rostconf(dir.path(), &["-n"]);
    assert_eq!(
        out,
        "myhostname = mail.example.org\nsmtpd_banner = $myhostname ESMTP $mail_name\n"
    );
}

#[test]
fn bad_line_is_an_error_naming_file_line_and_parameter() {
    let dir = ConfDir::new("biff = no\nmax_idle = forever\n", MASTER);
    let (code, out, err) = rostconf(dir.path(), &["-n"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    let main_cf = dir.path().join("main.cf");
    assert_eq!(
        err,
        format!(
            "rostconf: fatal: {}, line 2: bad value for parameter max_idle: \"forever\": \
             expected a time: a number with an optional unit s, m, h, d or w (default s)\n",
            main_cf.display()
        )
    );
    let dir = ConfDir::new("biff = no\nthis line has no equals sign\n", MASTER);
    let (code, _, err) = rostconf(dir.path(), &[]);
    assert_eq!(code, 1);
    let main_cf = dir.path().join("main.cf");
    assert_eq!(
        err,
        format!(
            "rostconf: fatal: {}, line 2: missing '=' after parameter name: \"this line has no equals sign\"\n",
            main_cf.display()
        )
    );
    // A broken main.cf can still be repaired with -e.
    let (code, _, _) = rostconf(dir.path(), &["-X", "this"]);
    assert_eq!(code, 0);
}

#[test]
fn master_entries_show_normalized() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, out, err) = rostconf(dir.path(), &["-M"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "smtp       inet  n       -       y       -       -       smtpd\n\
         submission inet  n       -       y       -       -       smtpd -o syslog_name=rostfix/submission -o smtpd_sasl_auth_enable=yes\n\
         pickup     unix  n       -       y       60      1       pickup\n\
         smtp       unix  -       -       y       -       -       smtp\n"
    );
    let (_, out, _) = rostconf(dir.path(), &["-M", "smtp"]);
    assert_eq!(out.lines().count(), 2);
    let (_, out, _) = rostconf(dir.path(), &["-M", "smtp/unix"]);
    assert_eq!(
        out,
        "smtp       unix  -       -       y       -       -       smtp\n"
    );
    let (code, out, err) = rostconf(dir.path(), &["-M", "nothing/unix"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(
        err.contains("nothing/unix: no such master.cf entry"),
        "{err}"
    );
}

#[test]
fn master_entries_edit_and_delete() {
    let dir = ConfDir::new(MAIN, MASTER);
    let (code, _, err) = rostconf(
        dir.path(),
        &["-M", "pickup/unix=pickup unix n - y 30 1 pickup"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = rostconf(dir.path(), &["-M", "qmgr/unix=qmgr unix n - n 300 1 qmgr"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = rostconf(dir.path(), &["-MX", "submission/inet"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        dir.read("master.cf"),
        "# header\nsmtp      inet  n       -       y       -       -       smtpd\n\
         pickup unix n - y 30 1 pickup\nsmtp      unix  -       -       y       -       -       smtp\n\
         qmgr unix n - n 300 1 qmgr\n"
    );
    let (code, _, err) = rostconf(dir.path(), &["-M", "smtp/inet=smtp inet n - y - - "]);
    assert_eq!(code, 1);
    assert!(err.contains("bad entry"), "{err}");
}

#[test]
fn master_cf_error_names_file_and_line() {
    let dir = ConfDir::new(MAIN, "smtp inet n - y - - smtpd\nbad  tcp  n - y - - x\n");
    let (code, _, err) = rostconf(dir.path(), &["-M"]);
    assert_eq!(code, 1);
    let master_cf = dir.path().join("master.cf");
    assert!(
        err.starts_with(&format!(
            "rostconf: fatal: {}, line 2: bad transport type",
            master_cf.display()
        )),
        "{err}"
    );
}

#[test]
fn mail_config_selects_the_directory() {
    let dir = ConfDir::new(MAIN, MASTER);
    let output = Command::new(env!("CARGO_BIN_EXE_rostconf"))
        .args(["-h", "myhostname"])
        .env("MAIL_CONFIG", dir.path())
        .output()
        .unwrap();
    assert_eq!(decode(output).1, "mail.example.org\n");
}

#[test]
fn help_and_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_rostconf"))
        .arg("--help")
        .output()
        .unwrap();
    let (code, out, _) = decode(output);
    assert_eq!(code, 0);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(
            out.contains(&format!("\n{section}\n")) || out.starts_with(section),
            "{section}"
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_rostconf"))
        .arg("-q")
        .output()
        .unwrap();
    let (code, _, err) = decode(output);
    assert_eq!(code, 64);
    assert!(
        err.starts_with("rostconf: invalid option -- 'q'\nusage: rostconf"),
        "{err}"
    );
}
