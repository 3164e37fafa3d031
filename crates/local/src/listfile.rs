//! Reading `.forward` and `:include:` files. The caller already switched to the
//! identity the file must be read with (the user for .forward; for :include: the
//! including list's rights, or root's when the list had root's rights, as Postfix
//! does), so the kernel enforces what that identity may read; these functions add
//! Postfix's ownership rules and a size bound.
//!
//! - `.forward`: must be a regular file owned by the user (or root) and not writable by
//!   group or others; otherwise it is ignored with a warning, as a file anyone could
//!   have edited must not redirect someone's mail. Missing or unreadable: ignored.
//! - `:include:`: must be a regular file, not writable by others; a file that cannot
//!   be opened bounces (5.3.0, "cannot open include file"), as in Postfix.

use crate::failure::{errtext, Failure};
use nix::unistd::{Gid, Uid};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Longest list file read (anything beyond is ignored with a warning).
pub const MAX_LIST_FILE: u64 = 1 << 20;

/// An opened list file: its text and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFile {
    pub text: String,
    pub uid: Uid,
    pub gid: Gid,
}

fn open(path: &Path) -> std::io::Result<File> {
    // O_NONBLOCK: a FIFO planted as .forward must not hang the agent.
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

fn read_bounded(file: File, path: &Path) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    file.take(MAX_LIST_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_LIST_FILE {
        log::warn!(
            "{}: longer than {MAX_LIST_FILE} bytes; the rest is ignored",
            path.display()
        );
        bytes.truncate(MAX_LIST_FILE as usize);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads a `.forward` file of user `uid`. Ok(None): no usable file (missing,
/// unreadable, or failing the ownership rules: logged). Err: a system problem that
/// should defer delivery.
pub fn read_forward(path: &Path, uid: Uid) -> Result<Option<ListFile>, Failure> {
    let file = match open(path) {
        Ok(f) => f,
        Err(e) => {
            return match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) => Ok(None),
                Some(libc::EACCES) | Some(libc::EPERM) => {
                    log::warn!("cannot open {}: {}", path.display(), errtext(&e));
                    Ok(None)
                }
                _ => Err(Failure::defer(
                    "4.3.0",
                    format!("cannot open {}: {}", path.display(), errtext(&e)),
                )),
            };
        }
    };
    let meta = file.metadata().map_err(|e| {
        Failure::defer(
            "4.3.0",
            format!("cannot stat {}: {}", path.display(), errtext(&e)),
        )
    })?;
    if !meta.file_type().is_file() {
        log::warn!("{}: not a regular file; ignored", path.display());
        return Ok(None);
    }
    if meta.uid() != uid.as_raw() && meta.uid() != 0 {
        log::warn!(
            "{}: owned by uid {}, not the recipient (uid {uid}); ignored",
            path.display(),
            meta.uid()
        );
        return Ok(None);
    }
    if meta.mode() & 0o022 != 0 {
        log::warn!("{}: writable by group or others; ignored", path.display());
        return Ok(None);
    }
    let text = read_bounded(file, path).map_err(|e| {
        Failure::defer(
            "4.3.0",
            format!("cannot read {}: {}", path.display(), errtext(&e)),
        )
    })?;
    Ok(Some(ListFile {
        text,
        uid: Uid::from_raw(meta.uid()),
        gid: Gid::from_raw(meta.gid()),
    }))
}

/// An `:include:` file that passed the checks, opened but not read yet: the expansion
/// first compares its identity (device and inode, whatever path spelling named it)
/// with the files already being expanded, so a loop or a duplicate costs an open and
/// an fstat, not a read.
#[derive(Debug)]
pub struct OpenInclude {
    file: File,
    pub uid: Uid,
    pub gid: Gid,
    /// The device and inode: the file's identity for loop and duplicate checks.
    pub dev: u64,
    pub ino: u64,
}

impl OpenInclude {
    /// Reads the whole list (bounded by [`MAX_LIST_FILE`]).
    pub fn read(self, path: &Path) -> Result<ListFile, Failure> {
        let (uid, gid) = (self.uid, self.gid);
        let text = read_bounded(self.file, path)
            .map_err(|e| Failure::defer("4.3.0", format!("cannot read {}: {e}", path.display())))?;
        Ok(ListFile { text, uid, gid })
    }
}

/// Opens an `:include:` file with the caller's current identity and checks it.
pub fn open_include(path: &Path) -> Result<OpenInclude, Failure> {
    if !path.is_absolute() {
        return Err(Failure::bounce(
            "5.3.5",
            format!(":include:{} is not an absolute path", path.display()),
        ));
    }
    let bounce = |what: String| Failure::bounce("5.3.0", what);
    let file = open(path).map_err(|e| {
        let text = format!(
            "cannot open include file {}: {}",
            path.display(),
            errtext(&e)
        );
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::EACCES) | Some(libc::ENOTDIR) => bounce(text),
            _ => Failure::defer("4.3.0", text),
        }
    })?;
    let meta = file
        .metadata()
        .map_err(|e| Failure::defer("4.3.0", format!("cannot stat {}: {e}", path.display())))?;
    if !meta.file_type().is_file() {
        return Err(bounce(format!(
            "include file {} is not a regular file",
            path.display()
        )));
    }
    if meta.mode() & 0o002 != 0 {
        return Err(bounce(format!(
            "include file {} is world writable",
            path.display()
        )));
    }
    Ok(OpenInclude {
        file,
        uid: Uid::from_raw(meta.uid()),
        gid: Gid::from_raw(meta.gid()),
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// Opens, checks and reads an `:include:` file.
pub fn read_include(path: &Path) -> Result<ListFile, Failure> {
    open_include(path)?.read(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TestDir;
    use std::os::unix::fs::PermissionsExt;

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn forward_rules() {
        let t = TestDir::new("listfile-fwd");
        let me = nix::unistd::geteuid();
        let p = t.path().join(".forward");
        assert_eq!(read_forward(&p, me).unwrap(), None);
        write(&p, "bob@example.org\n", 0o644);
        assert_eq!(
            read_forward(&p, me).unwrap().unwrap().text,
            "bob@example.org\n"
        );
        write(&p, "evil@example.org\n", 0o666);
        assert_eq!(read_forward(&p, me).unwrap(), None, "world writable");
        write(&p, "x\n", 0o620);
        assert_eq!(read_forward(&p, me).unwrap(), None, "group writable");
        // Owned by someone else than the recipient (and not root).
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        if me.is_root() {
            nix::unistd::chown(&p, Some(Uid::from_raw(65534)), None).unwrap();
            assert_eq!(read_forward(&p, Uid::from_raw(1234)).unwrap(), None);
        }
        let d = t.path().join("dir");
        std::fs::create_dir(&d).unwrap();
        assert_eq!(read_forward(&d, me).unwrap(), None, "directory");
    }

    #[test]
    fn include_rules() {
        let t = TestDir::new("listfile-inc");
        let p = t.path().join("list");
        let f = read_include(&p).unwrap_err();
        assert_eq!((f.permanent, f.dsn), (true, "5.3.0"));
        assert!(f.text.starts_with("cannot open include file"), "{}", f.text);
        write(&p, "alice\nbob\n", 0o644);
        let l = read_include(&p).unwrap();
        assert_eq!(l.text, "alice\nbob\n");
        assert_eq!(l.uid, nix::unistd::geteuid());
        write(&p, "alice\n", 0o646);
        assert!(read_include(&p)
            .unwrap_err()
            .text
            .contains("world writable"));
        assert_eq!(
            read_include(Path::new("relative")).unwrap_err().dsn,
            "5.3.5"
        );
    }

    #[test]
    fn include_identity_ignores_the_spelling() {
        let t = TestDir::new("listfile-inc-id");
        let p = t.path().join("list");
        write(&p, "alice\n", 0o644);
        let spelled = t.path().join(".").join("list");
        let a = open_include(&p).unwrap();
        let b = open_include(&spelled).unwrap();
        assert_eq!((a.dev, a.ino), (b.dev, b.ino));
        let other = t.path().join("other");
        write(&other, "alice\n", 0o644);
        assert_ne!(open_include(&other).unwrap().ino, a.ino);
        assert_eq!(b.read(&spelled).unwrap().text, "alice\n");
    }
}
