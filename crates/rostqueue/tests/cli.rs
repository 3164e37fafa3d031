//! End-to-end tests of the rostqueue binary against a queue built with the real queue
//! library: exact -p output, -j fields, flush triggers, exit statuses.

use rostfix_proto::{read_message, Trigger};
use rostfix_queue::{append_defer_reason, Envelope, QueueFile, QueueName, QueueWriter, Recipient};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary config dir + queue_directory, removed on drop.
struct Setup {
    base: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let base =
            std::env::temp_dir().join(format!("rostqueue-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("queue");
        for d in [
            "maildrop", "incoming", "active", "deferred", "hold", "corrupt", "defer", "bounce",
            "public",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::write(
            base.join("etc/main.cf"),
            format!("queue_directory = {}\n", root.display()),
        )
        .unwrap();
        Setup { base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("queue")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rostqueue"))
            .arg("-c")
            .arg(self.base.join("etc"))
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn rcpt(a: &str, orig: &str) -> Recipient {
    Recipient {
        address: a.into(),
        orig_address: orig.into(),
        ..Default::default()
    }
}

fn queue(
    root: &Path,
    q: QueueName,
    sender: &str,
    arrival_secs: i64,
    rcpts: Vec<Recipient>,
    body: &[u8],
) -> String {
    let env = Envelope {
        sender: sender.into(),
        arrival_us: arrival_secs * 1_000_000 + 123_456,
        attrs: vec![("protocol".into(), "ESMTP".into())],
        recipients: rcpts,
    };
    let mut w = QueueWriter::create(root, q, &env).unwrap();
    w.write_content(body).unwrap();
    w.commit().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Three messages: active (one recipient done), deferred with reasons, hold with `<>`.
fn populate(s: &Setup) -> (String, String, String) {
    let root = s.root();
    let active = queue(
        &root,
        QueueName::Active,
        "alice@example.org",
        1_606_123_512,
        vec![
            rcpt("bob@example.org", "bob@example.org"),
            rcpt("done@example.org", "done@example.org"),
        ],
        &vec![b'x'; 3000],
    );
    let qf = QueueFile::open(&root, QueueName::Active, &active).unwrap();
    QueueFile::mark_done(&qf.path, qf.envelope.recipients[1].offset).unwrap();

    let deferred = queue(
        &root,
        QueueName::Deferred,
        "carol@example.org",
        1_600_000_000,
        vec![
            rcpt("x@remote.example", "X@Remote.Example"),
            rcpt("y@remote.example", "y@remote.example"),
            rcpt("z@other.example", "z@other.example"),
        ],
        b"Subject: hi\n\nbody\n",
    );
    append_defer_reason(
        &root,
        &deferred,
        "y@remote.example",
        "connect to remote.example[192.0.2.1]:25: Connection refused",
    )
    .unwrap();
    append_defer_reason(
        &root,
        &deferred,
        "x@remote.example",
        "connect to remote.example[192.0.2.1]:25: Connection refused",
    )
    .unwrap();

    let hold = queue(
        &root,
        QueueName::Hold,
        "",
        1_600_000_000,
        vec![rcpt("h@example.org", "h@example.org")],
        b"held\n",
    );
    (active, deferred, hold)
}

#[test]
fn list_matches_postqueue_format() {
    let s = Setup::new("list");
    let (active, deferred, hold) = populate(&s);
    // Corrupt and temporary files are not listed; the corrupt one is warned about.
    std::fs::write(s.root().join("incoming/ABCDEF0123"), b"not a queue file").unwrap();
    std::fs::write(s.root().join("incoming/tmp.1.1"), b"").unwrap();

    let out = s.run(&["-p"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reason = "connect to remote.example[192.0.2.1]:25: Connection refused";
    let indent = " ".repeat(41);
    let expected = [
        "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------".to_string(),
        format!(
            "{:<11}    3000 Mon Nov 23 09:25:12  alice@example.org",
            format!("{active}*")
        ),
        format!("{indent}bob@example.org"),
        String::new(),
        format!("{deferred:<11}      18 Sun Sep 13 12:26:40  carol@example.org"),
        format!("{}({reason})", " ".repeat(76 - reason.len())),
        format!("{indent}y@remote.example"),
        format!("{indent}x@remote.example"),
        format!("{}(reason unavailable)", " ".repeat(58)),
        format!("{indent}z@other.example"),
        String::new(),
        format!(
            "{:<11}       5 Sun Sep 13 12:26:40  MAILER-DAEMON",
            format!("{hold}!")
        ),
        format!("{indent}h@example.org"),
        String::new(),
        "-- 2 Kbytes in 3 Requests.".to_string(),
    ];
    let got = stdout(&out);
    let got_lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        got_lines,
        expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "\n{got}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("rostqueue: warning:")
            && err.contains("ABCDEF0123")
            && err.contains("corrupt"),
        "{err}"
    );
}

#[test]
fn empty_queue() {
    let s = Setup::new("empty");
    let out = s.run(&["-p"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "Mail queue is empty\n");
    let out = s.run(&["-j"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
}

#[test]
fn json_lines_have_postqueue_fields() {
    let s = Setup::new("json");
    let (active, deferred, hold) = populate(&s);
    let out = s.run(&["-j"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let objs: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 3);

    assert_eq!(objs[0]["queue_name"], "active");
    assert_eq!(objs[0]["queue_id"], active.as_str());
    assert_eq!(objs[0]["arrival_time"], 1_606_123_512);
    assert_eq!(objs[0]["message_size"], 3000);
    assert_eq!(objs[0]["forced_expire"], false);
    assert_eq!(objs[0]["sender"], "alice@example.org");
    assert_eq!(
        objs[0]["recipients"],
        serde_json::json!([{"address": "bob@example.org"}])
    );

    assert_eq!(objs[1]["queue_name"], "deferred");
    assert_eq!(objs[1]["queue_id"], deferred.as_str());
    let reason = "connect to remote.example[192.0.2.1]:25: Connection refused";
    assert_eq!(
        objs[1]["recipients"],
        serde_json::json!([
            {"address": "y@remote.example", "delay_reason": reason},
            // postqueue -j has no orig_address field.
            {"address": "x@remote.example", "delay_reason": reason},
            {"address": "z@other.example"},
        ])
    );

    assert_eq!(objs[2]["queue_name"], "hold");
    assert_eq!(objs[2]["queue_id"], hold.as_str());
    assert_eq!(objs[2]["sender"], "MAILER-DAEMON");
}

#[test]
fn flush_sends_triggers() {
    let s = Setup::new("flush");
    let qmgr = UnixListener::bind(s.root().join("public/qmgr")).unwrap();
    let pickup = UnixListener::bind(s.root().join("public/pickup")).unwrap();

    let out = s.run(&["-f"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (mut c, _) = qmgr.accept().unwrap();
    assert_eq!(read_message::<_, Trigger>(&mut c).unwrap(), Trigger::Flush);
    let (mut c, _) = pickup.accept().unwrap();
    assert_eq!(read_message::<_, Trigger>(&mut c).unwrap(), Trigger::Wakeup);

    let out = s.run(&["-i", "ABCDEF12"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (mut c, _) = qmgr.accept().unwrap();
    assert_eq!(
        read_message::<_, Trigger>(&mut c).unwrap(),
        Trigger::FlushId("ABCDEF12".into())
    );
}

#[test]
fn flush_without_qmgr_is_unavailable() {
    let s = Setup::new("noqmgr");
    let out = s.run(&["-f"]);
    assert_eq!(out.status.code(), Some(69));
    assert!(
        stderr(&out).contains("rostqueue: fatal: Cannot flush mail queue - mail system is down")
    );
}

#[test]
fn usage_and_help() {
    let s = Setup::new("usage");
    for args in [
        &[][..],
        &["-p", "-j"],
        &["-x"],
        &["-i", "bad/id"],
        &["-p", "extra"],
    ] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(stderr(&out).contains("usage: rostqueue"), "{args:?}");
    }
    let out = s.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "SEE ALSO",
        "showq",
    ] {
        assert!(help.contains(section), "{section}");
    }
}

#[test]
fn missing_config_is_a_config_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_rostqueue"))
        .args(["-c", "/nonexistent/rostqueue-test", "-p"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).starts_with("rostqueue: fatal:"));
}

#[test]
fn unreadable_queue_asks_showq_and_says_mail_system_is_down() {
    // Needs to drop privileges to see a permission error: only possible as root.
    if !rostfix_testsupport::root_with(&["/usr/bin/setpriv"]) {
        return;
    }
    let s = Setup::new("perm");
    populate(&s);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.root(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new("/usr/bin/setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_rostqueue"),
            "-c",
        ])
        .arg(s.base.join("etc"))
        .arg("-p")
        .output()
        .unwrap();
    if stderr(&out).contains("Permission denied") && !stderr(&out).contains("rostqueue") {
        eprintln!("skipped: the test binary is not executable by nobody");
        return;
    }
    // An ordinary user asks the showq service; with no mail system running that is
    // postqueue's "mail system is down", EX_UNAVAILABLE.
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .starts_with("rostqueue: fatal: Queue report unavailable - mail system is down ("),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}
