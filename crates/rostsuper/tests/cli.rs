//! End-to-end tests of the rostsuper binary against a queue built with the real queue
//! library: -d ID / ALL / - with queue operands, -h / -H, reports, privilege check.

use rostfix_queue::{append_defer_reason, list_queue, Envelope, QueueName, QueueWriter, Recipient};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

/// The mail_owner of the test queues: rostsuper run as root does its work as this user,
/// so the queue is given to it before each run.
const MAIL_OWNER: &str = "daemon";

/// Gives everything under `dir` to MAIL_OWNER (when root), as a real queue belongs to
/// mail_owner.
fn give_to_mail_owner(dir: &std::path::Path) {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let user = nix::unistd::User::from_name(MAIL_OWNER)
        .unwrap()
        .expect("user daemon");
    let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            give_to_mail_owner(&entry.path());
        } else {
            std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid)).unwrap();
        }
    }
}

/// A temporary config dir + queue_directory + maillog file, removed on drop.
struct Setup {
    base: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let base =
            std::env::temp_dir().join(format!("rostsuper-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("queue");
        for d in [
            "maildrop", "incoming", "active", "deferred", "hold", "corrupt", "defer", "bounce",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::write(
            base.join("etc/main.cf"),
            format!(
                "queue_directory = {}\nmaillog_file = {}\nmyhostname = testhost\n\
                 mail_owner = {MAIL_OWNER}\n",
                root.display(),
                base.join("maillog").display()
            ),
        )
        .unwrap();
        Setup { base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("queue")
    }

    fn command(&self, args: &[&str]) -> Command {
        give_to_mail_owner(&self.root());
        let mut c = Command::new(env!("CARGO_BIN_EXE_rostsuper"));
        c.arg("-c").arg(self.base.join("etc")).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn queued(&self, q: QueueName) -> Vec<String> {
        list_queue(&self.root(), q).unwrap()
    }

    fn add(&self, q: QueueName) -> String {
        let env = Envelope {
            sender: "s@example.org".into(),
            arrival_us: 1_600_000_000_000_000,
            attrs: vec![],
            recipients: vec![Recipient {
                address: "r@example.org".into(),
                orig_address: "r@example.org".into(),
                ..Default::default()
            }],
        };
        let mut w = QueueWriter::create(&self.root(), q, &env).unwrap();
        w.write_content(b"Subject: x\n\nbody\n").unwrap();
        w.commit().unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn delete_one_id_with_its_logs() {
    let s = Setup::new("one");
    let a = s.add(QueueName::Deferred);
    let b = s.add(QueueName::Deferred);
    append_defer_reason(&s.root(), &a, "r@example.org", "try later").unwrap();
    std::fs::write(s.root().join("bounce").join(&a), "x").unwrap();

    let out = s.run(&["-d", &a]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("rostsuper: {a}: removed\nrostsuper: Deleted: 1 message\n")
    );
    assert_eq!(s.queued(QueueName::Deferred), vec![b]);
    assert!(!s.root().join("defer").join(&a).exists());
    assert!(!s.root().join("bounce").join(&a).exists());

    // Logged in the mail log, Postfix-shaped.
    let log = std::fs::read_to_string(s.base.join("maillog")).unwrap();
    assert!(log.contains(" testhost rostfix/rostsuper["), "{log}");
    assert!(log.contains(&format!("]: {a}: removed\n")), "{log}");
    assert!(log.contains("]: Deleted: 1 message\n"), "{log}");

    // Deleting it again finds nothing and says nothing.
    let out = s.run(&["-d", &a]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "");
}

#[test]
fn delete_all_uses_postsuper_default_queues() {
    let s = Setup::new("all");
    let ids: Vec<String> = [
        QueueName::Incoming,
        QueueName::Active,
        QueueName::Deferred,
        QueueName::Hold,
    ]
    .map(|q| s.add(q))
    .to_vec();
    let dropped = s.add(QueueName::Maildrop);
    let out = s.run(&["-d", "ALL"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    for id in &ids {
        assert!(
            err.contains(&format!("rostsuper: {id}: removed\n")),
            "{err}"
        );
    }
    assert!(err.ends_with("rostsuper: Deleted: 4 messages\n"), "{err}");
    for q in [
        QueueName::Incoming,
        QueueName::Active,
        QueueName::Deferred,
        QueueName::Hold,
    ] {
        assert!(s.queued(q).is_empty(), "{q:?}");
    }
    // maildrop is only touched when named.
    assert_eq!(s.queued(QueueName::Maildrop), vec![dropped.clone()]);
    let out = s.run(&["-d", "ALL", "maildrop"]);
    assert_eq!(
        stderr(&out),
        format!("rostsuper: {dropped}: removed\nrostsuper: Deleted: 1 message\n")
    );
    assert!(s.queued(QueueName::Maildrop).is_empty());
}

#[test]
fn delete_all_in_one_queue() {
    let s = Setup::new("allq");
    let deferred = s.add(QueueName::Deferred);
    let held = s.add(QueueName::Hold);
    let out = s.run(&["-d", "ALL", "deferred"]);
    assert_eq!(
        stderr(&out),
        format!("rostsuper: {deferred}: removed\nrostsuper: Deleted: 1 message\n")
    );
    assert_eq!(s.queued(QueueName::Hold), vec![held]);
}

#[test]
fn delete_ids_from_stdin_and_warn_on_bad_ones() {
    let s = Setup::new("stdin");
    let a = s.add(QueueName::Incoming);
    let b = s.add(QueueName::Deferred);
    let c = s.add(QueueName::Deferred);
    let out = s.run_with_stdin(&["-d", "-"], &format!("{a}\n\n  {b}  \nnot/an/id\n"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "rostsuper: {a}: removed\nrostsuper: {b}: removed\nrostsuper: warning: invalid mail queue id: not/an/id\nrostsuper: Deleted: 2 messages\n"
        )
    );
    assert!(s.queued(QueueName::Incoming).is_empty());
    assert_eq!(s.queued(QueueName::Deferred), vec![c]);
}

#[test]
fn hold_and_release() {
    let s = Setup::new("hold");
    let a = s.add(QueueName::Deferred);
    let b = s.add(QueueName::Incoming);
    let out = s.run(&["-h", "ALL"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    let expected: String = both
        .iter()
        .map(|id| format!("rostsuper: {id}: placed on hold\n"))
        .collect();
    assert_eq!(
        stderr(&out),
        format!("{expected}rostsuper: Placed on hold: 2 messages\n")
    );
    assert_eq!(s.queued(QueueName::Hold), both);
    assert!(s.queued(QueueName::Deferred).is_empty() && s.queued(QueueName::Incoming).is_empty());

    // Make the held file look old, then release it: it must be due now.
    let old = SystemTime::now() - Duration::from_secs(86_400);
    rostfix_queue::set_retry_time(&s.root().join("hold").join(&a), old).unwrap();
    let out = s.run(&["-H", &a]);
    assert_eq!(
        stderr(&out),
        format!("rostsuper: {a}: released from hold\nrostsuper: Released from hold: 1 message\n")
    );
    assert_eq!(s.queued(QueueName::Deferred), vec![a.clone()]);
    assert_eq!(s.queued(QueueName::Hold), vec![b.clone()]);
    let mtime = std::fs::metadata(s.root().join("deferred").join(&a))
        .unwrap()
        .modified()
        .unwrap();
    assert!(mtime > SystemTime::now() - Duration::from_secs(60));

    // Several operations run in order on one command line.
    let out = s.run(&["-H", "ALL", "-d", &b]);
    assert_eq!(
        stderr(&out),
        format!("rostsuper: {b}: released from hold\nrostsuper: Released from hold: 1 message\nrostsuper: {b}: removed\nrostsuper: Deleted: 1 message\n")
    );
    assert_eq!(s.queued(QueueName::Deferred), vec![a]);
}

#[test]
fn usage_and_help() {
    let s = Setup::new("usage");
    // A bare `rostsuper` is -s -p, as with postsuper: no longer a usage error.
    for args in [
        &["deferred"][..],
        &["-d"],
        &["-x"],
        &["-d", "ALL", "nosuchqueue"],
    ] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(stderr(&out).contains("usage: rostsuper"), "{args:?}");
    }
    let out = s.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
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

#[test]
fn refused_to_ordinary_users() {
    if !rostfix_testsupport::root_with(&["/usr/bin/setpriv"]) {
        return;
    }
    let s = Setup::new("perm");
    let a = s.add(QueueName::Deferred);
    let out = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_rostsuper"),
            "-c",
        ])
        .arg(s.base.join("etc"))
        .args(["-d", "ALL"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "rostsuper: fatal: use of this command is reserved for the superuser and mail_owner ({MAIL_OWNER})\n"
        )
    );
    assert_eq!(s.queued(QueueName::Deferred), vec![a]);
}
