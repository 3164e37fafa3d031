//! Where a user's mail goes: `home_mailbox` under the home directory when set (a
//! trailing `/` means Maildir), else `mail_spool_directory/USER` (a trailing `/` on the
//! spool directory means Maildir there, as in Postfix).

use std::path::{Path, PathBuf};

/// The mailbox of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Maildir(PathBuf),
    /// `spool`: the file lives in mail_spool_directory (opened and dotlocked as root,
    /// then handed to the user) rather than in the user's home.
    Mbox {
        path: PathBuf,
        spool: bool,
    },
}

/// Picks the destination from the two parameters, the user name and home directory.
pub fn destination(
    home_mailbox: &str,
    spool_directory: &str,
    user: &str,
    home: &Path,
) -> Destination {
    let home_mailbox = home_mailbox.trim();
    if !home_mailbox.is_empty() {
        // home_mailbox is relative to the home directory; a leading `/` would make
        // join() discard the home, so it is dropped.
        let path = home.join(home_mailbox.trim_start_matches('/'));
        if home_mailbox.ends_with('/') {
            Destination::Maildir(path)
        } else {
            Destination::Mbox { path, spool: false }
        }
    } else {
        let spool = spool_directory.trim();
        let path = Path::new(spool.trim_end_matches('/')).join(user);
        if spool.ends_with('/') {
            Destination::Maildir(path)
        } else {
            Destination::Mbox { path, spool: true }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_maildir_and_mbox() {
        let home = Path::new("/home/alice");
        assert_eq!(
            destination("Maildir/", "/var/mail", "alice", home),
            Destination::Maildir("/home/alice/Maildir/".into())
        );
        assert_eq!(
            destination("Mailbox", "/var/mail", "alice", home),
            Destination::Mbox {
                path: "/home/alice/Mailbox".into(),
                spool: false
            }
        );
        assert_eq!(
            destination("/abs", "/var/mail", "alice", home),
            Destination::Mbox {
                path: "/home/alice/abs".into(),
                spool: false
            }
        );
    }

    #[test]
    fn spool_mbox_and_maildir() {
        let home = Path::new("/home/bob");
        assert_eq!(
            destination("", "/var/mail", "bob", home),
            Destination::Mbox {
                path: "/var/mail/bob".into(),
                spool: true
            }
        );
        assert_eq!(
            destination("", "/var/mail/", "bob", home),
            Destination::Maildir("/var/mail/bob".into())
        );
    }
}
