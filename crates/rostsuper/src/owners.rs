//! -s's ownership repair: the one piece of work rostsuper does as root, before it
//! becomes mail_owner for everything else (as postsuper does its work as mail_owner).
//! Queue directories belong to mail_owner, whose processes could plant a symbolic link
//! or a hard link to a system file under a queue file's name, so nothing here is done
//! by path: each file is opened without following a link (O_NOFOLLOW, and O_NONBLOCK
//! so a FIFO cannot stall us), checked through that descriptor to be a regular file
//! with exactly one link, and changed through it (fchown).

use crate::repair::Report;
use rostfix_queue::{is_valid_queue_id, QueueName};
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Why one file's ownership was not repaired.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("open: {0}")]
    Open(std::io::Error),
    #[error("fstat: {0}")]
    Stat(std::io::Error),
    #[error("{links} links to it: left alone (a queue file has one)")]
    Linked { links: u64 },
    #[error("fchown: {0}")]
    Chown(std::io::Error),
}

/// Opens `path` for changes through the descriptor: a symbolic link (ELOOP) and
/// anything but a regular file yield None, a file with other names an error.
pub fn open_queue_file(path: &Path) -> Result<Option<(File, std::fs::Metadata)>, OwnerError> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OwnerError::Open(e)),
    };
    let meta = file.metadata().map_err(OwnerError::Stat)?;
    if !meta.is_file() {
        return Ok(None);
    }
    // A second name means the file is also elsewhere: perhaps a system file that a
    // mail_owner process linked here to have it handed over.
    if meta.nlink() != 1 {
        return Err(OwnerError::Linked {
            links: meta.nlink(),
        });
    }
    Ok(Some((file, meta)))
}

/// Gives every queue file in `queues` to `uid`:`gid` (mail_owner).
pub fn fix_owners(root: &Path, queues: &[QueueName], uid: u32, gid: u32) -> Report {
    let mut rep = Report::default();
    for &q in queues {
        let Ok(entries) = std::fs::read_dir(root.join(q.as_str())) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_valid_queue_id(&name) {
                continue;
            }
            let path = entry.path();
            match fix_owner(&path, uid, gid) {
                Ok(Some((old_uid, old_gid))) => rep.lines.push(format!(
                    "{}/{name}: owner {old_uid}:{old_gid} changed to {uid}:{gid}",
                    q.as_str()
                )),
                Ok(None) => {}
                Err(e) => rep.warnings.push(format!("{}: {e}", path.display())),
            }
        }
    }
    rep
}

/// The previous owner when it had to change.
fn fix_owner(path: &Path, uid: u32, gid: u32) -> Result<Option<(u32, u32)>, OwnerError> {
    let Some((file, meta)) = open_queue_file(path)? else {
        return Ok(None);
    };
    if (meta.uid(), meta.gid()) == (uid, gid) {
        return Ok(None);
    }
    std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(OwnerError::Chown)?;
    Ok(Some((meta.uid(), meta.gid())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let root =
            std::env::temp_dir().join(format!("rostsuper-own-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("deferred")).unwrap();
        root
    }

    #[test]
    fn links_are_never_opened_for_changes() {
        let root = scratch("links");
        let outside = root.join("outside");
        std::fs::write(&outside, b"system file").unwrap();
        let symlink = root.join("deferred/ABCDEF1");
        std::os::unix::fs::symlink(&outside, &symlink).unwrap();
        assert!(open_queue_file(&symlink).unwrap().is_none());
        let hard = root.join("deferred/ABCDEF2");
        std::fs::hard_link(&outside, &hard).unwrap();
        assert!(matches!(
            open_queue_file(&hard),
            Err(OwnerError::Linked { links: 2 })
        ));
        let plain = root.join("deferred/ABCDEF3");
        std::fs::write(&plain, b"x").unwrap();
        assert!(open_queue_file(&plain).unwrap().is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn owners_fixed_through_the_descriptor() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to chown");
            return;
        }
        let root = scratch("fix");
        let outside = root.join("outside");
        std::fs::write(&outside, b"system file").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("deferred/ABCDEF1")).unwrap();
        std::fs::hard_link(&outside, root.join("deferred/ABCDEF2")).unwrap();
        let plain = root.join("deferred/ABCDEF3");
        std::fs::write(&plain, b"x").unwrap();
        let rep = fix_owners(&root, &[QueueName::Deferred], 65534, 65534);
        let outside_meta = std::fs::metadata(&outside).unwrap();
        let plain_meta = std::fs::metadata(&plain).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!((outside_meta.uid(), outside_meta.gid()), (0, 0));
        assert_eq!((plain_meta.uid(), plain_meta.gid()), (65534, 65534));
        assert_eq!(
            rep.lines,
            ["deferred/ABCDEF3: owner 0:0 changed to 65534:65534"]
        );
        assert_eq!(rep.warnings.len(), 1, "{rep:?}");
        assert!(rep.warnings[0].contains("2 links"), "{rep:?}");
    }
}
