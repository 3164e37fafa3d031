//! The Dovecot part of the switch: Dovecot's `unix_listener` blocks that put its auth
//! and LMTP sockets into Postfix's queue directory (as the usual guides do) are found
//! and the complete replacement is written out: the path in Rostfix's queue
//! directory, and user and group Rostfix's mail_owner and its group (a socket left
//! `user = postfix` refuses Rostfix's smtpd and lmtp client even at the right path).
//!
//! Dovecot's files are not edited: they belong to another package, and Dovecot must
//! be restarted by its administrator anyway. Keeping the sockets where they are
//! instead would need Rostfix's chrooted smtpd to reach outside its chroot.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// One `unix_listener PATH { ... }` block of a Dovecot file whose path is under
/// Postfix's queue directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub file: PathBuf,
    /// 1-based line of the `unix_listener` line.
    pub line: usize,
    pub path: String,
    pub mode: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// Who Rostfix's side of the sockets runs as, and where its queue is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub queue_directory: String,
    pub user: String,
    pub group: String,
}

/// Every listener under `postfix_queue` in the files under `dir` (e.g. /etc/dovecot).
pub fn listeners(dir: &Path, postfix_queue: &str) -> Vec<Listener> {
    let mut found = Vec::new();
    let mut files = Vec::new();
    collect(dir, 0, &mut files);
    files.sort();
    for file in files {
        if let Ok(text) = fs::read_to_string(&file) {
            found.extend(parse(&file, &text, postfix_queue));
        }
    }
    found
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(kind) if kind.is_dir() && depth < 3 => collect(&entry.path(), depth + 1, out),
            // Configuration files are small; anything big is not one.
            Ok(kind) if kind.is_file() && entry.metadata().is_ok_and(|m| m.len() < 1 << 20) => {
                out.push(entry.path())
            }
            _ => {}
        }
    }
}

/// The listener blocks of one file: `unix_listener PATH {`, then `key = value` lines
/// up to the `}` that closes it (Dovecot's syntax; `#` starts a comment).
fn parse(file: &Path, text: &str, postfix_queue: &str) -> Vec<Listener> {
    let prefix = format!("{}/", postfix_queue.trim_end_matches('/'));
    let mut found = Vec::new();
    let mut open: Option<Listener> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(listener) = open.as_mut() {
            if line.starts_with('}') {
                found.extend(open.take());
            } else if let Some((key, value)) = line.split_once('=') {
                let value = Some(value.trim().to_string());
                match key.trim() {
                    "mode" => listener.mode = value,
                    "user" => listener.user = value,
                    "group" => listener.group = value,
                    _ => {}
                }
            }
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("unix_listener") {
            continue;
        }
        let Some(path) = words.next().filter(|path| path.starts_with(&prefix)) else {
            continue;
        };
        let listener = Listener {
            file: file.to_path_buf(),
            line: index + 1,
            path: path.to_string(),
            mode: None,
            user: None,
            group: None,
        };
        if words.next() == Some("{") && !line.ends_with('}') {
            open = Some(listener);
        } else {
            found.push(listener);
        }
    }
    found
}

/// The report's items for `found`: for each listener the block as it is and as it
/// must become; empty when there is nothing to change.
pub fn report(found: &[Listener], postfix_queue: &str, target: &Target) -> Vec<String> {
    let old_prefix = postfix_queue.trim_end_matches('/');
    let new_prefix = target.queue_directory.trim_end_matches('/');
    let mut items = Vec::new();
    for listener in found {
        let new_path = format!("{new_prefix}{}", &listener.path[old_prefix.len()..]);
        let mut text = format!(
            "{}, line {}: replace the block\n{}      with\n{}",
            listener.file.display(),
            listener.line,
            block(
                &listener.path,
                listener.mode.as_deref(),
                listener.user.as_deref(),
                listener.group.as_deref()
            ),
            block(
                &new_path,
                listener.mode.as_deref(),
                Some(&target.user),
                Some(&target.group)
            ),
        );
        let _ = write!(text, "      ({})", purpose(&listener.path));
        items.push(text);
    }
    if !items.is_empty() {
        items.push(
            "then restart Dovecot (systemctl restart dovecot): it creates the sockets in \
             Rostfix's queue directory, which exists now"
                .into(),
        );
    }
    items
}

fn block(path: &str, mode: Option<&str>, user: Option<&str>, group: Option<&str>) -> String {
    let mut text = format!("        unix_listener {path} {{\n");
    for (key, value) in [("mode", mode), ("user", user), ("group", group)] {
        if let Some(value) = value {
            let _ = writeln!(text, "          {key} = {value}");
        }
    }
    text.push_str("        }\n");
    text
}

/// What stops working while the socket is not moved.
fn purpose(path: &str) -> &'static str {
    if path.contains("lmtp") {
        "mailbox_transport or virtual_transport lmtp:unix:... delivers through it: mail \
         is deferred until it is moved"
    } else if path.contains("auth") {
        "smtpd_sasl_path reaches Dovecot's authentication through it: SMTP AUTH fails \
         until it is moved"
    } else {
        "a socket in Postfix's queue directory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = "\
service auth {
  # Postfix smtp-auth
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
  unix_listener auth-userdb {
    mode = 0600
  }
}
service lmtp {
 unix_listener /var/spool/postfix/private/dovecot-lmtp {
   mode = 0600
   user = postfix   # the MTA
  }
}
#unix_listener /var/spool/postfix/private/old {
";

    fn found() -> Vec<Listener> {
        parse(
            Path::new("/etc/dovecot/conf.d/10-master.conf"),
            GUIDE,
            "/var/spool/postfix",
        )
    }

    #[test]
    fn finds_the_guide_listeners_with_their_settings() {
        let found = found();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].line, 3);
        assert_eq!(found[0].path, "/var/spool/postfix/private/auth");
        assert_eq!(found[0].mode.as_deref(), Some("0660"));
        assert_eq!(found[0].user.as_deref(), Some("postfix"));
        assert_eq!(found[0].group.as_deref(), Some("postfix"));
        assert_eq!(found[1].line, 13);
        assert_eq!(found[1].user.as_deref(), Some("postfix"));
        assert_eq!(found[1].group, None);
    }

    #[test]
    fn report_gives_path_user_and_group() {
        let target = Target {
            queue_directory: "/var/spool/rostfix".into(),
            user: "rostfix".into(),
            group: "rostfix".into(),
        };
        let items = report(&found(), "/var/spool/postfix", &target);
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(
            items[0].contains(
                "with\n        unix_listener /var/spool/rostfix/private/auth {\n          \
                 mode = 0660\n          user = rostfix\n          group = rostfix\n        }\n"
            ),
            "{}",
            items[0]
        );
        assert!(items[0].contains("SMTP AUTH fails"), "{}", items[0]);
        // A block without group gets one: the socket must be Rostfix's either way.
        assert!(
            items[1].contains(
                "unix_listener /var/spool/rostfix/private/dovecot-lmtp {\n          \
                 mode = 0600\n          user = rostfix\n          group = rostfix\n"
            ),
            "{}",
            items[1]
        );
        assert!(items[2].starts_with("then restart Dovecot"));
        assert!(report(&[], "/var/spool/postfix", &target).is_empty());
    }
}
