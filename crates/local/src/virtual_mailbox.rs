//! The `virtual` delivery agent's logic (Postfix's virtual(8)): mail for
//! virtual_mailbox_domains, which the resolver sends to virtual_transport (default
//! `virtual`), goes into `$virtual_mailbox_base/PATH` where PATH comes from
//! virtual_mailbox_maps (`user@domain  domain/user/`: a trailing `/` means Maildir,
//! anything else an mbox file), with the uid and gid found in virtual_uid_maps and
//! virtual_gid_maps (`static:5000` or tables with the same keys).
//!
//! Lookups use Postfix's address order (full address, `user@domain` without the
//! extension, `@domain` catch-all). A lookup error defers (4.3.0); an address with
//! no mailbox bounces 5.1.1; a uid below virtual_minimum_uid, an unparsable id or a
//! path that leaves the base (`..`, absolute) is a configuration error (4.3.5,
//! deferred so that nothing is lost while the administrator fixes it).
//! virtual_mailbox_limit caps the message and mbox size; virtual_mailbox_lock says
//! whether mbox files get a dotlock besides the fcntl lock. No aliases, no .forward,
//! no commands: that is what local is for.

use crate::deliver::Message;
use crate::failure::Failure;
use crate::headers::{delivered_copy, has_delivered_to};
use crate::maildir;
use crate::mbox::{self, MboxOptions};
use crate::privileges::{Identity, PrivGuard};
use nix::unistd::{Gid, Uid};
use rostfix_maps::{lookup_address, Map};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// The main.cf values of the virtual agent.
pub struct VirtualConf {
    pub hostname: String,
    pub base: PathBuf,
    pub mailbox_maps: Vec<Box<dyn Map>>,
    pub uid_maps: Vec<Box<dyn Map>>,
    pub gid_maps: Vec<Box<dyn Map>>,
    pub minimum_uid: u32,
    /// virtual_mailbox_lock contains `dotlock`.
    pub dotlock: bool,
    /// virtual_mailbox_limit; 0 = none.
    pub limit: u64,
    pub recipient_delimiter: String,
    pub lock_wait: Duration,
}

fn find(maps: &[Box<dyn Map>], address: &str, delim: &str) -> Result<Option<String>, Failure> {
    for map in maps {
        match lookup_address(map.as_ref(), address, delim, false) {
            Ok(Some(v)) => return Ok(Some(v.trim().to_string())),
            Ok(None) => {}
            Err(e) => {
                return Err(Failure::defer(
                    "4.3.0",
                    format!("lookup of {address} in {} failed: {e}", map.spec()),
                ))
            }
        }
    }
    Ok(None)
}

fn config_error(text: String) -> Failure {
    Failure::defer("4.3.5", text)
}

/// The mailbox path under the base: relative, no `..`, no empty result.
pub fn mailbox_path(base: &Path, value: &str) -> Option<PathBuf> {
    let rel = Path::new(value);
    let ok = !value.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    ok.then(|| base.join(rel))
}

/// Delivers `msg` to the virtual mailbox of `address`.
pub fn deliver_virtual(
    conf: &VirtualConf,
    msg: Message<'_>,
    address: &str,
) -> Result<&'static str, Failure> {
    if has_delivered_to(msg.content, address) {
        return Err(Failure::bounce(
            "5.4.6",
            format!("mail forwarding loop for {address}"),
        ));
    }
    let delim = &conf.recipient_delimiter;
    let Some(value) = find(&conf.mailbox_maps, address, delim)? else {
        return Err(Failure::bounce(
            "5.1.1",
            format!("unknown user: \"{}\"", address.to_lowercase()),
        ));
    };
    if conf.base.as_os_str().is_empty() {
        return Err(config_error("virtual_mailbox_base is not set".into()));
    }
    let Some(path) = mailbox_path(&conf.base, &value) else {
        return Err(config_error(format!(
            "bad virtual_mailbox_maps result for {address}: \"{value}\""
        )));
    };
    let id = |maps: &[Box<dyn Map>], what: &str| -> Result<u32, Failure> {
        match find(maps, address, delim)? {
            Some(v) => v
                .parse::<u32>()
                .map_err(|_| config_error(format!("bad {what} for {address}: \"{v}\""))),
            None => Err(config_error(format!("no {what} for {address}"))),
        }
    };
    let uid = id(&conf.uid_maps, "virtual_uid_maps result")?;
    let gid = id(&conf.gid_maps, "virtual_gid_maps result")?;
    if uid < conf.minimum_uid {
        return Err(config_error(format!(
            "uid {uid} for {address} is below virtual_minimum_uid {}",
            conf.minimum_uid
        )));
    }
    let ident = Identity {
        uid: Uid::from_raw(uid),
        gid: Gid::from_raw(gid),
    };
    let copy = delivered_copy(msg.sender, msg.original, address, msg.content);
    let _guard = PrivGuard::switch(ident).map_err(|e| Failure::defer("4.3.0", e.to_string()))?;
    if value.ends_with('/') {
        let placement = maildir::Placement {
            stamp: msg.commit.stamp,
            sync_dir: true,
        };
        maildir::deliver_placed(
            &path,
            &copy,
            &conf.hostname,
            conf.limit,
            ident.uid,
            placement,
        )
        .map(|_| "delivered to maildir")
        .map_err(|e| {
            let text = format!("maildir delivery failed for {address}: {e}");
            match e {
                maildir::MaildirError::Full { .. } => Failure::bounce("5.2.2", text),
                ref other => match other.io_error() {
                    Some(io) => Failure::from_io(io, text),
                    None => Failure::defer("4.2.0", text),
                },
            }
        })
    } else {
        let record = mbox::format_record(msg.sender, &mbox::asctime(msg.now), &copy);
        let opts = MboxOptions {
            size_limit: conf.limit,
            lock_wait: conf.lock_wait,
            dotlock: conf.dotlock,
            owner: None,
        };
        mbox::deliver(&path, &record, &opts)
            .map(|()| "delivered to mailbox")
            .map_err(|e| {
                let text = format!(
                    "cannot update mailbox {} for {address}: {e}",
                    path.display()
                );
                match e {
                    mbox::MboxError::Full { .. } => Failure::bounce("5.2.2", text),
                    ref other => match other.io_error() {
                        Some(io) => Failure::from_io(io, text),
                        None => Failure::defer("4.2.0", text),
                    },
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use rostfix_maps::open_map;

    fn conf(base: &Path) -> VirtualConf {
        let me = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        VirtualConf {
            hostname: "mx.example.org".into(),
            base: base.to_path_buf(),
            mailbox_maps: vec![open_map(
                "inline:{ alice@one.test=one.test/alice/, bob@two.test=two.test/bob, @three.test=three.test/catchall/ }",
            )
            .unwrap()],
            uid_maps: vec![open_map(&format!("static:{me}")).unwrap()],
            gid_maps: vec![open_map(&format!("static:{gid}")).unwrap()],
            minimum_uid: 0,
            dotlock: true,
            limit: 0,
            recipient_delimiter: "+".into(),
            lock_wait: Duration::from_secs(5),
        }
    }

    fn msg() -> Message<'static> {
        Message {
            sender: "carol@example.net",
            original: "Info@Alias.test",
            content: b"Subject: hi\n\nFrom me\n",
            now: 1_700_000_000,
            commit: crate::deliver::Commit::default(),
        }
    }

    #[test]
    fn maildir_mbox_and_catchall() {
        let t = TestDir::new("virtual");
        let c = conf(t.path());
        assert_eq!(
            deliver_virtual(&c, msg(), "Alice+x@One.test").unwrap(),
            "delivered to maildir"
        );
        let new: Vec<_> = std::fs::read_dir(t.path().join("one.test/alice/new"))
            .unwrap()
            .collect();
        assert_eq!(new.len(), 1);
        std::fs::create_dir_all(t.path().join("two.test")).unwrap();
        assert_eq!(
            deliver_virtual(&c, msg(), "bob@two.test").unwrap(),
            "delivered to mailbox"
        );
        let mbox = std::fs::read_to_string(t.path().join("two.test/bob")).unwrap();
        assert!(mbox.starts_with("From carol@example.net "));
        assert!(mbox.contains("X-Original-To: Info@Alias.test\nDelivered-To: bob@two.test\n"));
        assert!(mbox.contains("\n>From me\n"));
        deliver_virtual(&c, msg(), "anyone@three.test").unwrap();
        assert!(t.path().join("three.test/catchall/new").is_dir());
    }

    #[test]
    fn unknown_loop_and_config_errors() {
        let t = TestDir::new("virtual-err");
        let mut c = conf(t.path());
        let f = deliver_virtual(&c, msg(), "nobody@one.test").unwrap_err();
        assert_eq!((f.permanent, f.dsn), (true, "5.1.1"));
        let looped = Message {
            content: b"Delivered-To: alice@one.test\n\nx\n",
            ..msg()
        };
        assert_eq!(
            deliver_virtual(&c, looped, "alice@one.test")
                .unwrap_err()
                .dsn,
            "5.4.6"
        );
        c.minimum_uid = u32::MAX;
        let f = deliver_virtual(&c, msg(), "alice@one.test").unwrap_err();
        assert_eq!((f.permanent, f.dsn), (false, "4.3.5"));
        assert!(f.text.contains("virtual_minimum_uid"), "{}", f.text);
        c.minimum_uid = 0;
        c.uid_maps = vec![open_map("static:notanumber").unwrap()];
        assert_eq!(
            deliver_virtual(&c, msg(), "alice@one.test")
                .unwrap_err()
                .dsn,
            "4.3.5"
        );
    }

    #[test]
    fn paths_stay_under_the_base() {
        let base = Path::new("/var/vmail");
        assert_eq!(
            mailbox_path(base, "a.test/u/"),
            Some(PathBuf::from("/var/vmail/a.test/u/"))
        );
        assert_eq!(mailbox_path(base, "../etc/passwd"), None);
        assert_eq!(mailbox_path(base, "/etc/passwd"), None);
        assert_eq!(mailbox_path(base, "a/../../x"), None);
        assert_eq!(mailbox_path(base, ""), None);
    }
}
