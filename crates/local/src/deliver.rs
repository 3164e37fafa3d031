//! One recipient, start to finish: user name from the address, the Delivered-To loop
//! check, the user lookup, the destination, the identity switch, and the Maildir or
//! mbox write, with every failure turned into a deferral or bounce with its status
//! code (never a panic).

use crate::destination::{destination, Destination};
use crate::dotlock::{Dotlock, DotlockError};
use crate::failure::{errtext, Failure};
use crate::group_commit::Stage;
use crate::headers::{delivered_copy, has_delivered_to};
use crate::maildir::{self, MaildirError, Placement, Stamp};
use crate::mbox::{self, Mailbox, MboxError, MboxOptions};
use crate::privileges::{running_as_root, Identity, PrivGuard};
use crate::recipient::{parse_recipient, plausible_user_name};
use nix::unistd::{Gid, Uid};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The main.cf values local needs, read once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    pub home_mailbox: String,
    pub mail_spool_directory: String,
    pub recipient_delimiter: String,
    /// mailbox_size_limit; 0 = none.
    pub mailbox_size_limit: u64,
    /// How long to wait for each mailbox lock before deferring.
    pub lock_wait: Duration,
    /// rostfix_maildir_extension_folders: mail for `user+ext` goes to the Maildir++
    /// folder `.ext` of a Maildir mailbox (see [`extension_folder`]).
    pub extension_folders: bool,
}

/// The passwd facts delivery needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
}

/// Looks a user up in the system's passwd database (getpwnam_r).
pub fn system_user(name: &str) -> Result<Option<UserInfo>, String> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(Some(UserInfo {
            name: u.name,
            uid: u.uid,
            gid: u.gid,
            home: u.dir,
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(e.desc().to_string()),
    }
}

/// The message being delivered, shared by all its recipients.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Envelope sender, "" for `<>`.
    pub sender: &'a str,
    /// The recipient being delivered as the message arrived (before virtual and
    /// local aliases), for `X-Original-To:`; "" when unknown.
    pub original: &'a str,
    /// Stored content (headers and body, LF line ends).
    pub content: &'a [u8],
    /// Delivery time (seconds since the epoch) for the mbox `From ` line.
    pub now: i64,
    /// How Maildir copies are named and made durable.
    pub commit: Commit<'a>,
}

/// How a Maildir copy is named and made durable: by default under a fresh unique
/// name with `new/` synced at once; with a stamp under the name derived from the queue
/// file and recipient (an idempotent delivery, crate::maildir); with a stage, the
/// `new/` sync is left to the group commit that owns the stage (crate::group_commit).
#[derive(Debug, Clone, Copy, Default)]
pub struct Commit<'a> {
    pub stamp: Option<Stamp<'a>>,
    pub stage: Option<&'a RefCell<Stage>>,
}

/// Delivers `msg` to `address`. Ok holds the status text (`delivered to maildir` or
/// `delivered to mailbox`).
pub fn deliver_recipient<L>(
    settings: &Settings,
    msg: Message<'_>,
    address: &str,
    lookup: L,
) -> Result<&'static str, Failure>
where
    L: Fn(&str) -> Result<Option<UserInfo>, String>,
{
    if has_delivered_to(msg.content, address) {
        return Err(Failure::bounce(
            "5.4.6",
            format!("mail forwarding loop for {address}"),
        ));
    }
    let rcpt = parse_recipient(address, &settings.recipient_delimiter);
    let unknown = || Failure::bounce("5.1.1", format!("unknown user: \"{}\"", rcpt.user));
    if !plausible_user_name(&rcpt.user) {
        return Err(unknown());
    }
    let user = match lookup(&rcpt.user) {
        Ok(Some(u)) => u,
        Ok(None) => return Err(unknown()),
        Err(e) => {
            return Err(Failure::defer(
                "4.3.0",
                format!("user lookup for \"{}\" failed: {e}", rcpt.user),
            ))
        }
    };
    deliver_mailbox(settings, msg, address, &user, rcpt.extension.as_deref())
}

/// Delivers `msg` into the mailbox of `user` (already looked up), with a
/// `Delivered-To: delivered_to` header. `extension` picks a Maildir++ folder when
/// extension folders are on.
pub fn deliver_mailbox(
    settings: &Settings,
    msg: Message<'_>,
    delivered_to: &str,
    user: &UserInfo,
    extension: Option<&str>,
) -> Result<&'static str, Failure> {
    let copy = delivered_copy(msg.sender, msg.original, delivered_to, msg.content);
    let ident = Identity {
        uid: user.uid,
        gid: user.gid,
    };
    match destination(
        &settings.home_mailbox,
        &settings.mail_spool_directory,
        &user.name,
        &user.home,
    ) {
        Destination::Maildir(dir) => {
            let dir = match extension.and_then(extension_folder) {
                Some(folder) if settings.extension_folders => dir.join(folder),
                _ => dir,
            };
            deliver_maildir(settings, msg.commit, &dir, &copy, ident, &user.name)?;
            Ok("delivered to maildir")
        }
        Destination::Mbox { path, spool } => {
            let record = mbox::format_record(msg.sender, &mbox::asctime(msg.now), &copy);
            deliver_mbox(settings, &path, spool, &record, ident, &user.name)?;
            Ok("delivered to mailbox")
        }
    }
}

/// The Maildir++ folder (`.lists`) for an address extension, as Dovecot and Courier
/// name folders; None for an extension that cannot safely be a folder name (empty,
/// too long, or with characters other than letters, digits, `-` and `_`: a `.` would
/// make a sub-folder, a `/` a path), whose mail then goes to the inbox.
pub fn extension_folder(extension: &str) -> Option<String> {
    let ok = !extension.is_empty()
        && extension.len() <= 64
        && extension
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then(|| format!(".{}", extension.to_ascii_lowercase()))
}

/// Appends `msg` to the file `path` (a `/path` destination in an alias, .forward or
/// :include: file) as `ident`, mbox style (From_ line, quoting, blank line) under an
/// fcntl lock. No dotlock: the file's directory is often not writable (/var/log),
/// where Postfix's file delivery also lets the dotlock fail. `/dev/null` always
/// succeeds.
pub fn deliver_file(
    settings: &Settings,
    msg: Message<'_>,
    delivered_to: &str,
    path: &Path,
    ident: Identity,
) -> Result<(), Failure> {
    if path == Path::new("/dev/null") {
        return Ok(());
    }
    let copy = delivered_copy(msg.sender, msg.original, delivered_to, msg.content);
    let record = mbox::format_record(msg.sender, &mbox::asctime(msg.now), &copy);
    let _guard = switch(ident)?;
    let opts = MboxOptions {
        size_limit: settings.mailbox_size_limit,
        lock_wait: settings.lock_wait,
        dotlock: false,
        owner: None,
    };
    mbox::deliver_file(path, &record, &opts).map_err(|e| {
        let f = mbox_failure(&e, path, &format!("uid {}", ident.uid));
        Failure {
            text: format!(
                "cannot append message to file {}: {}",
                path.display(),
                f.text
            ),
            ..f
        }
    })
}

fn switch(ident: Identity) -> Result<PrivGuard, Failure> {
    PrivGuard::switch(ident).map_err(|e| Failure::defer("4.3.0", e.to_string()))
}

fn deliver_maildir(
    settings: &Settings,
    commit: Commit<'_>,
    dir: &Path,
    copy: &[u8],
    ident: Identity,
    user: &str,
) -> Result<(), Failure> {
    let _guard = switch(ident)?;
    let euid = nix::unistd::geteuid();
    let placement = Placement {
        stamp: commit.stamp,
        sync_dir: commit.stage.is_none(),
    };
    let stored = maildir::deliver_placed(
        dir,
        copy,
        &settings.hostname,
        settings.mailbox_size_limit,
        euid,
        placement,
    )
    .map_err(|e| maildir_failure(&e, dir, user))?;
    if stored.earlier {
        let id = commit.stamp.map_or("", |s| s.queue_id);
        log::info!(
            "{id}: {} holds this message from an earlier delivery attempt: not stored again",
            stored.path.display()
        );
    }
    if let Some(stage) = commit.stage {
        stage.borrow_mut().add(stored, ident);
    }
    Ok(())
}

fn maildir_failure(e: &MaildirError, dir: &Path, user: &str) -> Failure {
    let text = format!(
        "maildir delivery failed for user {user} ({}): {}",
        dir.display(),
        maildir_text(e)
    );
    match e {
        MaildirError::Full { .. } => Failure::bounce("5.2.2", text),
        _ => match e.io_error() {
            Some(io) => Failure::from_io(io, text),
            None => Failure::defer("4.2.0", text),
        },
    }
}

/// The error text with the bare system message (no "(os error N)").
fn maildir_text(e: &MaildirError) -> String {
    match e {
        MaildirError::MakeDir { path, source } => format!(
            "create maildir directory {}: {}",
            path.display(),
            errtext(source)
        ),
        MaildirError::Create { path, source } => format!(
            "create maildir file {}: {}",
            path.display(),
            errtext(source)
        ),
        MaildirError::Write { path, source } => {
            format!("write maildir file {}: {}", path.display(), errtext(source))
        }
        MaildirError::Link { path, source } => {
            format!("link to {}: {}", path.display(), errtext(source))
        }
        MaildirError::Sync { path, source } => format!(
            "sync maildir directory {}: {}",
            path.display(),
            errtext(source)
        ),
        other => other.to_string(),
    }
}

fn deliver_mbox(
    settings: &Settings,
    path: &Path,
    spool: bool,
    record: &[u8],
    ident: Identity,
    user: &str,
) -> Result<(), Failure> {
    let fail = |e: MboxError| mbox_failure(&e, path, user);
    let wait = settings.lock_wait;
    if spool && running_as_root() {
        // The spool directory (root:mail 2775) is not writable by the user: like
        // Postfix, take the dotlock and open (or create, then chown) the file as
        // root, then switch to the user for the write itself. The dotlock is removed
        // as root, after the guard has given root back.
        let dotlock = Dotlock::acquire(path, wait).map_err(|e| fail(e.into()))?;
        let mut mailbox = Mailbox::open(path, Some(ident)).map_err(fail)?;
        let guard = switch(ident)?;
        let result = mailbox
            .lock(wait)
            .and_then(|()| mailbox.append(record, settings.mailbox_size_limit));
        drop(mailbox);
        drop(guard);
        drop(dotlock);
        result.map_err(fail)
    } else {
        let _guard = switch(ident)?;
        let opts = MboxOptions {
            size_limit: settings.mailbox_size_limit,
            lock_wait: wait,
            dotlock: true,
            owner: None,
        };
        mbox::deliver(path, record, &opts).map_err(fail)
    }
}

fn mbox_failure(e: &MboxError, path: &Path, user: &str) -> Failure {
    let detail = match e {
        MboxError::Open(io) => format!("cannot open file: {}", errtext(io)),
        MboxError::Lock(io) => format!("unable to lock for exclusive access: {}", errtext(io)),
        MboxError::Write(io) => format!("error writing message: {}", errtext(io)),
        MboxError::Dotlock(DotlockError::Io { path, source }) => {
            format!(
                "unable to create lock file {}: {}",
                path.display(),
                errtext(source)
            )
        }
        other => other.to_string(),
    };
    let text = format!(
        "cannot update mailbox {} for user {user}. {detail}",
        path.display()
    );
    match e {
        MboxError::Full { .. } => Failure::bounce("5.2.2", text),
        MboxError::Executable => Failure::bounce("5.7.1", text),
        _ => match e.io_error() {
            Some(io) => Failure::from_io(io, text),
            None => Failure::defer("4.2.0", text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;

    fn settings(home_mailbox: &str, spool: &str) -> Settings {
        Settings {
            hostname: "mx.example.org".into(),
            home_mailbox: home_mailbox.into(),
            mail_spool_directory: spool.into(),
            recipient_delimiter: "+".into(),
            mailbox_size_limit: 0,
            lock_wait: Duration::from_secs(5),
            extension_folders: false,
        }
    }

    /// One fake user "alice" whose home is `home` and whose ids are the current
    /// effective ones, so switching (as root) changes nothing.
    fn lookup(home: PathBuf) -> impl Fn(&str) -> Result<Option<UserInfo>, String> {
        move |name| {
            Ok((name == "alice").then(|| {
                let me = Identity::current();
                UserInfo {
                    name: "alice".into(),
                    uid: me.uid,
                    gid: me.gid,
                    home: home.clone(),
                }
            }))
        }
    }

    const CONTENT: &[u8] = b"Received: from a by b\nSubject: hi\n\nFrom the body\n";

    fn msg() -> Message<'static> {
        Message {
            sender: "bob@example.org",
            original: "",
            content: CONTENT,
            now: 1_700_000_000,
            commit: Commit::default(),
        }
    }

    #[test]
    fn maildir_delivery_with_extension() {
        let t = TestDir::new("deliver-maildir");
        let s = settings("Maildir/", "/nonexistent");
        let text = deliver_recipient(
            &s,
            msg(),
            "Alice+Lists@example.org",
            lookup(t.path().into()),
        )
        .unwrap();
        assert_eq!(text, "delivered to maildir");
        let new: Vec<_> = std::fs::read_dir(t.path().join("Maildir/new"))
            .unwrap()
            .collect();
        assert_eq!(new.len(), 1);
        let data = std::fs::read(new[0].as_ref().unwrap().path()).unwrap();
        let mut want =
            b"Return-Path: <bob@example.org>\nDelivered-To: alice+lists@example.org\n".to_vec();
        want.extend_from_slice(CONTENT);
        assert_eq!(data, want);
    }

    #[test]
    fn mbox_delivery_into_spool_file() {
        let t = TestDir::new("deliver-spool");
        let spool = t.path().join("mail");
        std::fs::create_dir(&spool).unwrap();
        let s = settings("", spool.to_str().unwrap());
        let m = Message {
            sender: "",
            ..msg()
        };
        let text = deliver_recipient(&s, m, "alice", lookup(t.path().into())).unwrap();
        assert_eq!(text, "delivered to mailbox");
        let data = String::from_utf8(std::fs::read(spool.join("alice")).unwrap()).unwrap();
        let first = data.lines().next().unwrap();
        assert!(
            first.starts_with("From MAILER-DAEMON ") && first.len() == 19 + 24,
            "{first}"
        );
        assert!(data.ends_with("\n>From the body\n\n"), "{data}");
        assert!(data.contains("\nReturn-Path: <>\nDelivered-To: alice\nReceived: from a by b\n"));
        assert!(!spool.join("alice.lock").exists());
    }

    #[test]
    fn unknown_user_bounces() {
        let t = TestDir::new("deliver-unknown");
        let s = settings("Maildir/", "/nonexistent");
        let f = deliver_recipient(&s, msg(), "Nobody+x@example.org", lookup(t.path().into()))
            .unwrap_err();
        assert_eq!(f, Failure::bounce("5.1.1", "unknown user: \"nobody\""));
        let f = deliver_recipient(&s, msg(), "../etc@example.org", lookup(t.path().into()))
            .unwrap_err();
        assert_eq!(f.dsn, "5.1.1");
    }

    #[test]
    fn lookup_error_defers() {
        let s = settings("Maildir/", "/nonexistent");
        let f = deliver_recipient(&s, msg(), "alice", |_: &str| Err("NIS is down".to_string()))
            .unwrap_err();
        assert_eq!((f.permanent, f.dsn), (false, "4.3.0"));
    }

    #[test]
    fn delivered_to_loop_bounces() {
        let t = TestDir::new("deliver-loop");
        let s = settings("Maildir/", "/nonexistent");
        let content = b"Delivered-To: ALICE@example.org\nSubject: x\n\nbody\n";
        let m = Message { content, ..msg() };
        let f = deliver_recipient(&s, m, "alice@example.org", lookup(t.path().into())).unwrap_err();
        assert_eq!(
            f,
            Failure::bounce("5.4.6", "mail forwarding loop for alice@example.org")
        );
        assert!(!t.path().join("Maildir").exists());
    }

    #[test]
    fn size_limit_bounces() {
        let t = TestDir::new("deliver-limit");
        let mut s = settings("Mailbox", "/nonexistent");
        s.mailbox_size_limit = 50;
        let f = deliver_recipient(&s, msg(), "alice", lookup(t.path().into())).unwrap_err();
        assert_eq!((f.permanent, f.dsn), (true, "5.2.2"));
        assert!(f.text.contains("mailbox full"), "{}", f.text);
        s.home_mailbox = "Maildir/".into();
        let f = deliver_recipient(&s, msg(), "alice", lookup(t.path().into())).unwrap_err();
        assert_eq!((f.permanent, f.dsn), (true, "5.2.2"));
    }

    #[test]
    fn symlinked_mbox_defers() {
        let t = TestDir::new("deliver-symlink");
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("Mailbox")).unwrap();
        let s = settings("Mailbox", "/nonexistent");
        let f = deliver_recipient(&s, msg(), "alice", lookup(t.path().into())).unwrap_err();
        assert_eq!((f.permanent, f.dsn), (false, "4.2.0"));
        let want = format!(
            "cannot update mailbox {}/Mailbox for user alice. cannot open file: file is a symbolic link",
            t.path().display()
        );
        assert_eq!(f.text, want);
    }

    #[test]
    fn missing_home_defers_with_clear_text() {
        let t = TestDir::new("deliver-nohome");
        let s = settings("Mailbox", "/nonexistent");
        let f = deliver_recipient(&s, msg(), "alice", lookup(t.path().join("gone"))).unwrap_err();
        assert!(!f.permanent);
        assert!(
            f.text
                .ends_with("cannot open file: No such file or directory"),
            "{}",
            f.text
        );
    }
}
