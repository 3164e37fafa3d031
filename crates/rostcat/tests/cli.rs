//! rostcat as an administrator runs it: -q finds a message by queue id in whichever
//! queue holds it and prints its envelope and content; a bad id never becomes a path.

use rostfix_queue::{Envelope, QueueName, QueueWriter, Recipient};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory removed when the test ends (no tempfile crate in the workspace).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("rostcat-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{e}"));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rostcat(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rostcat"))
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("MAIL_CONFIG")
        .output()
        .unwrap_or_else(|e| panic!("run rostcat: {e}"))
}

/// A config dir whose main.cf points queue_directory at `queue`, and one held message.
fn setup(dir: &Path) -> (PathBuf, String) {
    let queue = dir.join("queue");
    for name in [
        "incoming", "active", "deferred", "hold", "maildrop", "corrupt",
    ] {
        std::fs::create_dir_all(queue.join(name)).unwrap_or_else(|e| panic!("{e}"));
    }
    let config = dir.join("etc");
    std::fs::create_dir_all(&config).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        config.join("main.cf"),
        format!("queue_directory = {}\n", queue.display()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let envelope = Envelope {
        sender: "root@example.org".into(),
        arrival_us: 1_606_123_512_000_000,
        attrs: vec![],
        recipients: vec![Recipient {
            address: "pkguser@example.org".into(),
            orig_address: "pkguser@example.org".into(),
            ..Recipient::default()
        }],
    };
    let mut writer =
        QueueWriter::create(&queue, QueueName::Hold, &envelope).unwrap_or_else(|e| panic!("{e}"));
    writer
        .write_content(b"Subject: held one\n\nthe body\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let id = writer.commit().unwrap_or_else(|e| panic!("{e}"));
    (config, id)
}

#[test]
fn q_finds_the_message_in_hold_and_shows_everything() {
    let dir = TempDir::new("found");
    let (config, id) = setup(dir.path());
    let out = rostcat(&config, &["-q", &id]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("*** ENVELOPE RECORDS hold/{id} ***\n")),
        "{text}"
    );
    assert!(text.contains("sender: root@example.org\n"), "{text}");
    assert!(text.contains("recipient: pkguser@example.org\n"), "{text}");
    assert!(text.contains("Subject: held one\n\nthe body\n"), "{text}");

    let body = rostcat(&config, &["-b", "-q", &id]);
    assert_eq!(body.stdout, b"the body\n", "{body:?}");
}

#[test]
fn q_refuses_ids_that_are_not_queue_ids() {
    let dir = TempDir::new("bad");
    let (config, _) = setup(dir.path());
    std::fs::write(dir.path().join("secret"), "x").unwrap_or_else(|e| panic!("{e}"));
    for bad in ["../secret", "ABCDEF0"] {
        let out = rostcat(&config, &["-q", bad]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    let missing = rostcat(&config, &["-q", "ABCDEF0"]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("ABCDEF0: not found in any queue"),
        "{missing:?}"
    );
}
