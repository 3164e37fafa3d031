//! Delivery with the recipient's identity, for real: needs root and the `nobody` user,
//! and is skipped (with a note) otherwise. Everything runs in ONE test function because
//! effective ids are per process: parallel tests would see each other's switches.

use nix::unistd::{getegid, geteuid, getgroups, Gid, Uid};
use rostfix_local::deliver::{deliver_recipient, system_user, Message, Settings, UserInfo};
use rostfix_local::privileges::{Identity, PrivGuard};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn settings(home_mailbox: &str, spool: &Path) -> Settings {
    Settings {
        hostname: "mx.example.org".into(),
        home_mailbox: home_mailbox.into(),
        mail_spool_directory: spool.to_string_lossy().into_owned(),
        recipient_delimiter: "+".into(),
        mailbox_size_limit: 0,
        lock_wait: Duration::from_secs(5),
        extension_folders: false,
    }
}

fn assert_root() {
    assert!(geteuid().is_root(), "euid not restored");
    assert_eq!(getegid(), Gid::from_raw(0), "egid not restored");
}

#[test]
fn deliveries_switch_to_the_recipient_and_back() {
    if !rostfix_testsupport::root() {
        return;
    }
    let nobody = match system_user("nobody") {
        Ok(Some(u)) => u,
        _ => {
            eprintln!("note: no user 'nobody'; privilege switching tests skipped");
            return;
        }
    };
    let base = std::env::temp_dir().join(format!("rostfix-local-priv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let result = std::panic::catch_unwind(|| run(&base, &nobody));
    let _ = std::fs::remove_dir_all(&base);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn run(base: &Path, nobody: &UserInfo) {
    let ident = Identity {
        uid: nobody.uid,
        gid: nobody.gid,
    };

    // The guard itself.
    {
        let g = PrivGuard::switch(ident).unwrap();
        assert!(g.switched());
        assert_eq!(geteuid(), nobody.uid);
        assert_eq!(getegid(), nobody.gid);
        assert_eq!(getgroups().unwrap(), vec![nobody.gid]);
    }
    assert_root();

    // A home owned by nobody: the Maildir and its file belong to nobody.
    let home = base.join("home");
    std::fs::create_dir(&home).unwrap();
    nix::unistd::chown(&home, Some(nobody.uid), Some(nobody.gid)).unwrap();
    let lookup = |name: &str| -> Result<Option<UserInfo>, String> {
        Ok((name == "nobody").then(|| UserInfo {
            home: home.clone(),
            ..nobody.clone()
        }))
    };
    let msg = Message {
        sender: "a@b",
        original: "",
        content: b"Subject: x\n\nhi\n",
        now: 0,
        commit: Default::default(),
    };
    let s = settings("Maildir/", &base.join("nospool"));
    assert_eq!(
        deliver_recipient(&s, msg, "nobody@example.org", lookup).unwrap(),
        "delivered to maildir"
    );
    assert_root();
    let new = home.join("Maildir/new");
    let files: Vec<PathBuf> = std::fs::read_dir(&new)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    for p in [home.join("Maildir"), new.clone(), files[0].clone()] {
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (nobody.uid.as_raw(), nobody.gid.as_raw()),
            "{}",
            p.display()
        );
    }

    // A home mbox in a directory nobody cannot write: refused as nobody would be.
    let roots = base.join("roothome");
    std::fs::create_dir(&roots).unwrap();
    let lookup_root_home = |name: &str| -> Result<Option<UserInfo>, String> {
        Ok((name == "nobody").then(|| UserInfo {
            home: roots.clone(),
            ..nobody.clone()
        }))
    };
    let s = settings("Mailbox", &base.join("nospool"));
    let f = deliver_recipient(&s, msg, "nobody", lookup_root_home).unwrap_err();
    assert_root();
    assert_eq!((f.permanent, f.dsn), (false, "4.2.0"));
    assert!(
        f.text.ends_with("cannot open file: Permission denied"),
        "{}",
        f.text
    );
    assert!(!roots.join("Mailbox").exists());

    // The spool (root-owned, group mail, 2775 like /var/mail): created by root, given
    // to the user, lock removed.
    let spool = base.join("spool");
    std::fs::create_dir(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o2775)).unwrap();
    let s = settings("", &spool);
    assert_eq!(
        deliver_recipient(&s, msg, "nobody", lookup).unwrap(),
        "delivered to mailbox"
    );
    assert_eq!(
        deliver_recipient(&s, msg, "nobody", lookup).unwrap(),
        "delivered to mailbox"
    );
    assert_root();
    let mbox = spool.join("nobody");
    let m = std::fs::metadata(&mbox).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o777),
        (nobody.uid.as_raw(), nobody.gid.as_raw(), 0o600)
    );
    assert!(!spool.join("nobody.lock").exists());
    let text = String::from_utf8(std::fs::read(&mbox).unwrap()).unwrap();
    assert_eq!(text.matches("From a@b ").count(), 2);

    // A spool file that belongs to someone else is not written.
    let other = spool.join("nobody");
    nix::unistd::chown(&other, Some(Uid::from_raw(0)), None).unwrap();
    let f = deliver_recipient(&s, msg, "nobody", lookup).unwrap_err();
    assert_root();
    assert!(f.text.contains("wrong owner"), "{}", f.text);
}
