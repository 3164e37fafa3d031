//! Unit tests of the expansion engine (expand.rs): aliases, includes, commands, files,
//! .forward, duplicates, loops, owner-* senders and forwarding, with a fake passwd
//! whose users all have the test's own identity (so nothing switches for real).

use crate::deliver::{Message, Settings, UserInfo};
use crate::expand::{verdict, AliasTable, Expansion, LocalConf};
use crate::privileges::Identity;
use crate::resubmit::CollectingForwarder;
use crate::testdir::TestDir;
use rostfix_maps::open_map;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn settings() -> Settings {
    Settings {
        hostname: "mx.example.org".into(),
        home_mailbox: "Maildir/".into(),
        mail_spool_directory: "/nonexistent".into(),
        recipient_delimiter: "+".into(),
        mailbox_size_limit: 0,
        lock_wait: Duration::from_secs(5),
        extension_folders: true,
    }
}

fn me(name: &str, home: &Path) -> UserInfo {
    let id = Identity::current();
    UserInfo {
        name: name.into(),
        uid: id.uid,
        gid: id.gid,
        home: home.join(name),
    }
}

fn conf(aliases: &str, home: &Path) -> LocalConf {
    let mut c = LocalConf::defaults(&["example.org", "mx.example.org"]);
    c.aliases = vec![AliasTable {
        map: open_map(&format!("inline:{{ {aliases} }}")).unwrap(),
        owner: None,
    }];
    c.default_privs = Some(default_privs(home));
    c
}

/// "nobody" with the test's identity; as root, the real nobody: commands and files
/// never run as root, so a root default_privs would refuse them.
fn default_privs(home: &Path) -> UserInfo {
    match crate::deliver::system_user("nobody") {
        Ok(Some(u)) if crate::privileges::running_as_root() => u,
        _ => me("nobody", home),
    }
}

const CONTENT: &[u8] = b"Subject: hi\n\nbody\n";

fn msg() -> Message<'static> {
    Message {
        sender: "carol@example.net",
        original: "",
        content: CONTENT,
        now: 1_700_000_000,
        commit: crate::deliver::Commit::default(),
    }
}

/// (permanent, dsn, text) of a failed leaf.
type Fail = (bool, &'static str, String);

struct Run {
    leaves: Vec<(String, Result<String, Fail>)>,
    /// The owner recorded with each leaf, in the same order.
    owners: Vec<Option<String>>,
    fwd: CollectingForwarder,
}

fn run(c: &LocalConf, home: &Path, rcpt: &str) -> Run {
    run_msg(c, home, rcpt, msg())
}

fn run_msg(c: &LocalConf, home: &Path, rcpt: &str, m: Message<'_>) -> Run {
    let s = settings();
    let h: PathBuf = home.to_path_buf();
    let users = move |n: &str| -> Result<Option<UserInfo>, String> {
        Ok(["alice", "bob"].contains(&n).then(|| me(n, &h)))
    };
    for u in ["alice", "bob"] {
        std::fs::create_dir_all(home.join(u)).unwrap();
    }
    let mut fwd = CollectingForwarder::default();
    let mut e = Expansion::new(&s, c, &users, m);
    let raw = e.recipient(rcpt, rcpt, &mut fwd);
    let owners = raw.iter().map(|l| l.owner.clone()).collect();
    let leaves = raw
        .into_iter()
        .map(|l| (l.to, l.result.map_err(|f| (f.permanent, f.dsn, f.text))))
        .collect();
    Run {
        leaves,
        owners,
        fwd,
    }
}

fn maildir_count(home: &Path, user: &str, folder: &str) -> usize {
    std::fs::read_dir(home.join(user).join("Maildir").join(folder).join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn alias_to_two_users_and_duplicates_once() {
    let t = TestDir::new("exp-two");
    let c = conf("{ both = alice, bob, Alice@mx.example.org }", t.path());
    let r = run(&c, t.path(), "both@example.org");
    let tos: Vec<_> = r.leaves.iter().map(|(to, _)| to.as_str()).collect();
    assert_eq!(
        tos,
        vec!["alice@example.org", "bob@example.org"],
        "bare names take @$myorigin (logged so); the third is a duplicate of the first"
    );
    assert!(r.leaves.iter().all(|(_, res)| res.is_ok()));
    assert_eq!(maildir_count(t.path(), "alice", ""), 1);
    assert_eq!(maildir_count(t.path(), "bob", ""), 1);
    let new = t.path().join("alice/Maildir/new");
    let f = std::fs::read_dir(new)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let data = std::fs::read_to_string(f).unwrap();
    assert!(data.starts_with(
        "Return-Path: <carol@example.net>\nX-Original-To: both@example.org\n\
         Delivered-To: both@example.org\n"
    ));
}

#[test]
fn x_original_to_is_the_address_as_received() {
    // Postfix's local(8): the original recipient (before virtual aliases, as the
    // queue file keeps it), above Delivered-To (the local address being delivered).
    let t = TestDir::new("exp-orig");
    let c = conf("{ both = alice }", t.path());
    let s = settings();
    let h: PathBuf = t.path().to_path_buf();
    let users = move |n: &str| -> Result<Option<UserInfo>, String> {
        Ok((n == "alice").then(|| me(n, &h)))
    };
    std::fs::create_dir_all(t.path().join("alice")).unwrap();
    let mut fwd = CollectingForwarder::default();
    let mut e = Expansion::new(&s, &c, &users, msg());
    let leaves = e.recipient("both@example.org", "Sales@Virtual.test", &mut fwd);
    assert!(leaves.iter().all(|l| l.result.is_ok()));
    let new = t.path().join("alice/Maildir/new");
    let f = std::fs::read_dir(new)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let data = std::fs::read_to_string(f).unwrap();
    assert!(
        data.starts_with(
            "Return-Path: <carol@example.net>\nX-Original-To: Sales@Virtual.test\n\
             Delivered-To: both@example.org\n"
        ),
        "{data}"
    );
}

#[test]
fn command_and_file_from_alias() {
    let t = TestDir::new("exp-cmdfile");
    // As root the command runs as the real nobody, who must write here.
    std::fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = t.path().join("cmd.out");
    let file = t.path().join("copy.mbox");
    // As root a file delivery switches the euid of this whole (multi-threaded) test
    // process; it is left to tests/privileges.rs and the end-to-end tests then.
    let as_root = crate::privileges::running_as_root();
    let file_item = if as_root {
        String::new()
    } else {
        format!(", {}", file.display())
    };
    let alias = format!(
        "{{ pipe = \"|echo $RECIPIENT $SENDER $USER >{} ; cat >>{}\"{file_item} }}",
        out.display(),
        out.display(),
    );
    let c = conf(&alias, t.path());
    let r = run(&c, t.path(), "pipe@example.org");
    assert_eq!(
        r.leaves.len(),
        if as_root { 1 } else { 2 },
        "{:?}",
        r.leaves
    );
    assert!(
        r.leaves
            .iter()
            .all(|(to, res)| to == "pipe@example.org" && res.is_ok()),
        "{:?}",
        r.leaves
    );
    let got = std::fs::read_to_string(&out).unwrap();
    assert!(
        got.starts_with("pipe@example.org carol@example.net nobody\nFrom carol@example.net "),
        "{got}"
    );
    assert!(got.contains("\nDelivered-To: pipe@example.org\nSubject: hi\n"));
    if !as_root {
        let mbox = std::fs::read_to_string(&file).unwrap();
        assert!(
            mbox.starts_with("From carol@example.net ") && mbox.ends_with("body\n\n"),
            "{mbox}"
        );
    }
}

#[test]
fn commands_and_files_never_run_as_root() {
    let t = TestDir::new("exp-root");
    let out = t.path().join("never");
    let alias = format!(
        "{{ cmd = \"|touch {}\" }}, {{ file = {} }}",
        out.display(),
        out.display()
    );
    let mut c = conf(&alias, t.path());
    // A root default_privs: uid 0 has nothing to become, so both are refused.
    c.default_privs = Some(UserInfo {
        name: "root".into(),
        uid: nix::unistd::Uid::from_raw(0),
        gid: nix::unistd::Gid::from_raw(0),
        home: "/root".into(),
    });
    for rcpt in ["cmd@example.org", "file@example.org"] {
        let r = run(&c, t.path(), rcpt);
        assert_eq!(r.leaves.len(), 1, "{:?}", r.leaves);
        let (perm, dsn, text) = r.leaves[0].1.clone().unwrap_err();
        assert_eq!((perm, dsn), (false, "4.3.0"));
        assert!(
            text.starts_with("refusing to deliver to a command or file with uid 0"),
            "{text}"
        );
    }
    assert!(!out.exists());
}

#[test]
fn include_lists_and_restricted_commands() {
    let t = TestDir::new("exp-include");
    let list = t.path().join("list");
    std::fs::write(&list, "# members\nalice\nbob, \"|/bin/true\"\n").unwrap();
    let c = conf(&format!("staff=:include:{}", list.display()), t.path());
    let r = run(&c, t.path(), "staff@example.org");
    assert_eq!(maildir_count(t.path(), "alice", ""), 1);
    assert_eq!(maildir_count(t.path(), "bob", ""), 1);
    // Commands are not allowed from include files by default.
    let (_, res) = r.leaves.iter().find(|(_, res)| res.is_err()).unwrap();
    let (perm, dsn, text) = res.clone().unwrap_err();
    assert_eq!((perm, dsn), (true, "5.7.1"));
    assert!(text.contains("mail to command is restricted"), "{text}");
    let leaves: Vec<_> = r
        .leaves
        .iter()
        .map(|(to, res)| crate::expand::Leaf {
            to: to.clone(),
            result: res.clone().map_err(|(p, d, t)| crate::failure::Failure {
                permanent: p,
                dsn: d,
                text: t,
            }),
            owner: None,
            passed: false,
            staged: None,
        })
        .collect();
    assert_eq!(verdict(&leaves).unwrap_err().dsn, "5.7.1");
}

#[test]
fn backslash_user_stays_local_when_myorigin_is_not() {
    let t = TestDir::new("exp-noexpand");
    let mut c = conf("{ alice = \\alice, bob }", t.path());
    c.myorigin = "elsewhere.example".into();
    let r = run(&c, t.path(), "alice@example.org");
    // `\alice` is delivered here (bare, since @elsewhere.example would leave); `bob`
    // becomes bob@elsewhere.example and is forwarded, as Postfix's local would.
    assert_eq!(r.leaves[0].0, "alice");
    assert!(r.leaves[0].1.is_ok(), "{:?}", r.leaves);
    assert_eq!(maildir_count(t.path(), "alice", ""), 1);
    assert_eq!(maildir_count(t.path(), "bob", ""), 0);
    assert_eq!(r.fwd.sent.len(), 1);
    assert_eq!(r.fwd.sent[0].1, vec!["bob@elsewhere.example".to_string()]);
}

#[test]
fn failures_inside_an_owned_alias_are_reported_to_the_owner() {
    let t = TestDir::new("exp-owner-bounce");
    let c = conf(
        "{ list = alice, nosuch }, owner-list=bob, { plain = alice, nosuch }",
        t.path(),
    );
    let r = run(&c, t.path(), "list@example.org");
    assert_eq!(maildir_count(t.path(), "alice", ""), 1);
    let failed = r.leaves.iter().position(|(_, res)| res.is_err()).unwrap();
    assert_eq!(r.leaves[failed].0, "nosuch@example.org");
    assert_eq!(r.owners[failed].as_deref(), Some("owner-list@example.org"));
    // The same list without an owner: the sender hears of it (no owner recorded).
    let r = run(&c, t.path(), "plain@example.org");
    assert!(r.owners.iter().all(Option::is_none));
    // A top-level failure (no alias) has no owner either.
    let r = run(&c, t.path(), "nosuch@example.org");
    assert_eq!(r.owners, vec![None]);
}

#[test]
fn bounce_owner_follows_the_failed_leaf() {
    use crate::expand::{bounce_owner, Leaf};
    let ok = |to: &str, owner: Option<&str>| Leaf {
        to: to.into(),
        result: Ok("delivered".into()),
        owner: owner.map(str::to_string),
        passed: false,
        staged: None,
    };
    let bad = |to: &str, owner: Option<&str>| Leaf {
        to: to.into(),
        result: Err(crate::failure::Failure {
            permanent: true,
            dsn: "5.1.1",
            text: "unknown user".into(),
        }),
        owner: owner.map(str::to_string),
        passed: false,
        staged: None,
    };
    assert_eq!(
        bounce_owner(&[ok("a", Some("owner-x@h")), bad("b", None)]),
        None
    );
    assert_eq!(
        bounce_owner(&[ok("a", None), bad("b", Some("owner-x@h"))]).as_deref(),
        Some("owner-x@h")
    );
    assert_eq!(bounce_owner(&[ok("a", Some("owner-x@h"))]), None);
}

#[test]
fn forward_to_remote_with_owner_sender() {
    let t = TestDir::new("exp-owner");
    let c = conf(
        "{ list = alice, dave@remote.test }, owner-list=alice",
        t.path(),
    );
    let r = run(&c, t.path(), "list@example.org");
    assert_eq!(r.fwd.sent.len(), 1);
    let (sender, rcpts, orig, delivered) = &r.fwd.sent[0];
    assert_eq!(sender, "owner-list@example.org");
    assert_eq!(rcpts, &vec!["dave@remote.test".to_string()]);
    assert_eq!(
        (orig.as_str(), delivered.as_str()),
        ("list@example.org", "list@example.org")
    );
    let fwd_leaf = r
        .leaves
        .iter()
        .find(|(to, _)| to == "dave@remote.test")
        .unwrap();
    assert_eq!(fwd_leaf.1.as_deref(), Ok("forwarded as FWD1"));
    // Without an owner alias the original sender stays.
    let c = conf("other=dave@remote.test", t.path());
    let r = run(&c, t.path(), "other@example.org");
    assert_eq!(r.fwd.sent[0].0, "carol@example.net");
}

#[test]
fn dot_forward_with_backslash_self_and_extension_folder() {
    let t = TestDir::new("exp-forward");
    let c = conf("x=y", t.path());
    std::fs::create_dir_all(t.path().join("alice")).unwrap();
    let fwd = t.path().join("alice/.forward");
    std::fs::write(&fwd, "\\alice, ed@remote.test\n").unwrap();
    let r = run(&c, t.path(), "alice@example.org");
    assert_eq!(maildir_count(t.path(), "alice", ""), 1, "{:?}", r.leaves);
    assert_eq!(r.fwd.sent[0].1, vec!["ed@remote.test".to_string()]);
    assert_eq!(r.fwd.sent[0].0, "carol@example.net");
    // .forward+lists wins for alice+lists; a self reference goes to the mailbox folder.
    std::fs::write(t.path().join("alice/.forward+lists"), "alice+lists\n").unwrap();
    let r = run(&c, t.path(), "alice+lists@example.org");
    assert!(r.fwd.sent.is_empty(), "{:?}", r.fwd.sent);
    assert_eq!(
        maildir_count(t.path(), "alice", ".lists"),
        1,
        "{:?}",
        r.leaves
    );
}

#[test]
fn loops_and_unknown_users() {
    let t = TestDir::new("exp-loop");
    let c = conf("a=b, b=a, self=self", t.path());
    let r = run(&c, t.path(), "a@example.org");
    let (_, res) = &r.leaves[0];
    let (perm, dsn, text) = res.clone().unwrap_err();
    assert_eq!(
        (perm, dsn),
        (true, "5.4.6"),
        "a -> b -> a stops and a is no user: a loop, not an unknown user"
    );
    assert!(text.starts_with("mail forwarding loop for a"), "{text}");
    let r = run(&c, t.path(), "self@example.org");
    assert_eq!(r.leaves[0].1.clone().unwrap_err().1, "5.4.6");
    // Looping through a real user's name ends in that user's mailbox (Postfix's rule).
    let c2 = conf("alice=bob, bob=alice", t.path());
    let r = run(&c2, t.path(), "alice@example.org");
    assert!(
        r.leaves.iter().all(|(_, res)| res.is_ok()),
        "{:?}",
        r.leaves
    );
    assert_eq!(maildir_count(t.path(), "alice", ""), 1);
    let r = run(&c, t.path(), "ghost@example.org");
    assert_eq!(
        r.leaves[0].1.clone().unwrap_err().2,
        "unknown user: \"ghost\""
    );
    let looped = Message {
        content: b"Delivered-To: bob@example.org\n\nx\n",
        ..msg()
    };
    let c = conf("{ team = alice, bob@example.org }", t.path());
    let r = run_msg(&c, t.path(), "team@example.org", looped);
    let bad = r
        .leaves
        .iter()
        .find(|(to, _)| to == "bob@example.org")
        .unwrap();
    assert_eq!(bad.1.clone().unwrap_err().1, "5.4.6");
    assert_eq!(
        maildir_count(t.path(), "alice", ""),
        2,
        "the alias loop's copy and team's"
    );
}

#[test]
fn luser_relay_and_size_limit() {
    let t = TestDir::new("exp-luser");
    let mut c = conf("{ big = alice, bob, x@remote.test }", t.path());
    c.luser_relay = "bob+$user@example.org".into();
    let r = run(&c, t.path(), "nosuch@example.org");
    assert!(r.leaves[0].1.is_ok(), "{:?}", r.leaves);
    assert_eq!(maildir_count(t.path(), "bob", ".nosuch"), 1);
    c.expansion_size_limit = 2;
    let r = run(&c, t.path(), "big@example.org");
    assert_eq!(r.leaves[0].1.clone().unwrap_err().1, "5.3.0");
}

#[test]
fn quoted_local_part_finds_the_alias() {
    let t = TestDir::new("exp-quoted");
    let c = conf("{ quoted name = bob }", t.path());
    let r = run(&c, t.path(), "\"Quoted Name\"@example.org");
    assert!(r.leaves[0].1.is_ok(), "{:?}", r.leaves);
    assert_eq!(maildir_count(t.path(), "bob", ""), 1);
    assert_eq!(crate::expand::unquote_local(r#""a\"b""#), "a\"b");
}

/// Writes a list file (0644) into `dir`.
fn list(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn failures(r: &Run) -> Vec<Fail> {
    r.leaves
        .iter()
        .filter_map(|(_, res)| res.clone().err())
        .collect()
}

#[test]
fn include_nesting_is_limited() {
    use crate::expand::MAX_NESTING;
    let t = TestDir::new("exp-inc-deep");
    // chain0 -> chain1 -> ... -> chainN -> alice; the alias is level 0, chain k is
    // expanded at level k + 1, and alice one level below the last file.
    let chain = |n: usize| {
        for i in 0..n {
            let next = t.path().join(format!("chain{}", i + 1));
            list(
                t.path(),
                &format!("chain{i}"),
                &format!(":include:{}\n", next.display()),
            );
        }
        list(t.path(), &format!("chain{n}"), "alice\n");
        conf(
            &format!("deep=:include:{}", t.path().join("chain0").display()),
            t.path(),
        )
    };
    let c = chain(MAX_NESTING - 2);
    let r = run(&c, t.path(), "deep@example.org");
    assert!(failures(&r).is_empty(), "{:?}", r.leaves);
    assert_eq!(maildir_count(t.path(), "alice", ""), 1);
    // Far too deep: stopped at the limit (before the fix this recursed until the stack
    // overflowed), one 5.4.6 bounce naming the nesting limit.
    let c = chain(3000);
    let r = run(&c, t.path(), "deep@example.org");
    let f = failures(&r);
    assert_eq!(f.len(), 1, "{:?}", r.leaves);
    assert_eq!((f[0].0, f[0].1), (true, "5.4.6"));
    assert!(f[0].2.contains(":include: nesting limit"), "{}", f[0].2);
    assert_eq!(maildir_count(t.path(), "alice", ""), 1, "no second copy");
}

#[test]
fn include_loops_bounce() {
    let t = TestDir::new("exp-inc-loop");
    let own = t.path().join("self");
    list(t.path(), "self", &format!(":include:{}\n", own.display()));
    let (ping, pong) = (t.path().join("ping"), t.path().join("pong"));
    list(t.path(), "ping", &format!(":include:{}\n", pong.display()));
    list(
        t.path(),
        "pong",
        &format!("alice\n:include:{}\n", ping.display()),
    );
    let c = conf(
        &format!(
            "{{ selfinc = :include:{} }}, {{ mutual = :include:{} }}",
            own.display(),
            ping.display()
        ),
        t.path(),
    );
    // Before the fix, this expansion had no leaf at all, and the verdict of no leaves
    // is "delivered": the message vanished.
    let r = run(&c, t.path(), "selfinc@example.org");
    let f = failures(&r);
    assert_eq!(r.leaves.len(), 1, "{:?}", r.leaves);
    assert_eq!((f[0].0, f[0].1), (true, "5.4.6"));
    assert!(f[0]
        .2
        .starts_with("mail forwarding loop for selfinc@example.org"));
    // Two files including each other: alice (in pong) gets her copy, and the loop is
    // reported rather than skipped.
    let r = run(&c, t.path(), "mutual@example.org");
    assert_eq!(maildir_count(t.path(), "alice", ""), 1);
    let f = failures(&r);
    assert_eq!(f.len(), 1, "{:?}", r.leaves);
    assert_eq!(f[0].1, "5.4.6");
}

#[test]
fn includes_are_expanded_once_per_file_whatever_the_spelling() {
    let t = TestDir::new("exp-inc-dedupe");
    let members = list(t.path(), "members", "alice\nbob\n");
    // Two lists naming the same member file (under different spellings): a duplicate,
    // not a loop, so no failure; every member gets one copy.
    let spelled = t.path().join(".").join("members");
    let c = conf(
        &format!(
            "{{ both = :include:{}, :include:{} }}",
            members.display(),
            spelled.display()
        ),
        t.path(),
    );
    let r = run(&c, t.path(), "both@example.org");
    assert!(failures(&r).is_empty(), "{:?}", r.leaves);
    assert_eq!(maildir_count(t.path(), "alice", ""), 1);
    assert_eq!(maildir_count(t.path(), "bob", ""), 1);
    // A file listing hundreds of spellings of its own path: one loop notice and one
    // read of the file, not a walk through every order of the spellings (which, with
    // spellings told apart by their text, never finished).
    let mut text = String::from("alice\n");
    for i in 0..300 {
        let spelling = format!("{}/{}many", t.path().display(), "./".repeat(i));
        text.push_str(&format!(":include:{spelling}\n"));
    }
    let many = list(t.path(), "many", &text);
    let c = conf(&format!("many=:include:{}", many.display()), t.path());
    let started = std::time::Instant::now();
    let r = run(&c, t.path(), "many@example.org");
    assert!(started.elapsed() < Duration::from_secs(10));
    let f = failures(&r);
    assert_eq!(f.len(), 1, "{:?}", r.leaves);
    assert_eq!(f[0].1, "5.4.6");
    assert_eq!(
        maildir_count(t.path(), "alice", ""),
        2,
        "one copy from each of 2 runs"
    );
}

#[test]
fn include_rights_follow_postfix() {
    use crate::expand::{include_rights, IncludeRights};
    use nix::unistd::Uid;
    let (root, user2) = (Uid::from_raw(0), Uid::from_raw(1002));
    // A user's list never borrows the include file owner's rights...
    assert_eq!(include_rights(false, user2), IncludeRights::Inherit);
    assert_eq!(include_rights(false, root), IncludeRights::Inherit);
    // ...only root's rights (a root-owned alias table, root's .forward) give way to a
    // non-root owner's.
    assert_eq!(include_rights(true, user2), IncludeRights::FileOwner);
    assert_eq!(include_rights(true, root), IncludeRights::Inherit);
}
