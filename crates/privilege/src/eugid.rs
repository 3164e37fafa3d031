//! Working with another user's EFFECTIVE ids while keeping the way back to root, like
//! Postfix's set_eugid(): master binds unix sockets in mail_owner's public/ and
//! private/ this way, so that a symbolic link planted there gives root's rights to no
//! one (the kernel checks the effective ids at every path lookup).
//!
//! Threads: nix's seteuid/setegid/setgroups call glibc's, which apply the change to
//! EVERY thread of the process (glibc's setxid broadcast, POSIX semantics), although
//! the raw Linux system calls are per thread. So the switch is process-wide, and a
//! caller with other threads doing privileged work at the same time would see them
//! lose root too; the users of this module (master, rostsuper) are single-threaded.

use crate::Ids;
use nix::unistd::{getegid, geteuid, getgroups, setegid, seteuid, setgroups, Gid, Uid};

/// Switching to another user's effective ids failed (nothing was done as that user).
#[derive(Debug, thiserror::Error)]
#[error("cannot switch to uid {uid} gid {gid}: {what}: {source}")]
pub struct EugidError {
    uid: Uid,
    gid: Gid,
    what: &'static str,
    #[source]
    source: nix::Error,
}

/// What to go back to.
#[derive(Debug)]
struct Saved {
    egid: Gid,
    groups: Vec<Gid>,
}

/// While alive, the process has another user's effective uid, gid and groups; dropping
/// it restores root's. A process that cannot get back aborts: carrying on as the
/// wrong user would be worse than stopping.
#[must_use = "the identity is restored when the guard is dropped"]
#[derive(Debug)]
pub struct EugidGuard {
    saved: Option<Saved>,
}

impl EugidGuard {
    /// Switches to `ids` when the effective uid is root: groups first (only root may
    /// change them), then the effective gid, then the effective uid. Not root: a guard
    /// that does nothing, the process already has no more rights than its own.
    pub fn switch(ids: Ids) -> Result<EugidGuard, EugidError> {
        if !geteuid().is_root() {
            return Ok(EugidGuard { saved: None });
        }
        let fail = |what, source| EugidError {
            uid: ids.uid,
            gid: ids.gid,
            what,
            source,
        };
        let saved = Saved {
            egid: getegid(),
            groups: getgroups().map_err(|e| fail("getgroups", e))?,
        };
        // Created before the first change so that a failure half way is undone by Drop.
        let guard = EugidGuard { saved: Some(saved) };
        setgroups(&[ids.gid]).map_err(|e| fail("setgroups", e))?;
        setegid(ids.gid).map_err(|e| fail("setegid", e))?;
        seteuid(ids.uid).map_err(|e| fail("seteuid", e))?;
        Ok(guard)
    }

    /// Whether this guard really switched (false when the process was not root).
    pub fn switched(&self) -> bool {
        self.saved.is_some()
    }

    /// Runs `work` as `ids` (see [`EugidGuard::switch`]) and returns to root.
    pub fn run_as<T, E: From<EugidError>>(
        ids: Ids,
        work: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let _guard = EugidGuard::switch(ids)?;
        work()
    }
}

/// Back to root: the uid first (changing the gid and groups needs it).
fn restore(saved: &Saved) -> nix::Result<()> {
    seteuid(Uid::from_raw(0))?;
    setegid(saved.egid)?;
    setgroups(&saved.groups)
}

impl Drop for EugidGuard {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            if let Err(e) = restore(saved) {
                rostfix_maillog::fatal!("cannot restore root privileges: {e}");
                eprintln!("fatal: cannot restore root privileges: {e}");
                std::process::abort();
            }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // fork/_exit in tests, each stating why it is sound
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    /// Runs `check` in a child process (the ids are process-wide and the test harness
    /// has threads) and returns its exit code.
    fn in_child(check: fn() -> i32) -> i32 {
        // SAFETY: the child only makes system calls and small allocations before it
        // leaves with _exit; no lock another test thread could hold is taken by
        // setgroups/seteuid/open.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = check();
                // SAFETY: _exit ends the child without running the parent's atexit
                // handlers or flushing its copies of buffers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, code) => code,
                other => panic!("child ended with {other:?}"),
            },
        }
    }

    #[test]
    fn switch_and_back_as_root() {
        if !geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let code = in_child(|| {
            let nobody = Ids {
                uid: Uid::from_raw(65534),
                gid: Gid::from_raw(65534),
            };
            let secret = std::env::temp_dir().join(format!("eugid-{}", std::process::id()));
            if std::fs::write(&secret, "root only").is_err() {
                return 5;
            }
            let _ = nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                &secret,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            );
            let code = (|| {
                {
                    let Ok(_guard) = EugidGuard::switch(nobody) else {
                        return 1;
                    };
                    if geteuid() != nobody.uid || getegid() != nobody.gid {
                        return 2;
                    }
                    if std::fs::File::open(&secret).is_ok() {
                        return 3;
                    }
                }
                if !geteuid().is_root() || getegid().as_raw() != 0 {
                    return 4;
                }
                if std::fs::File::open(&secret).is_err() {
                    return 6;
                }
                0
            })();
            let _ = std::fs::remove_file(&secret);
            code
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn not_root_is_a_no_op() {
        if geteuid().is_root() {
            let code = in_child(|| {
                let Ok(()) = seteuid(Uid::from_raw(65534)) else {
                    return 1;
                };
                let ids = Ids {
                    uid: Uid::from_raw(1),
                    gid: Gid::from_raw(1),
                };
                match EugidGuard::switch(ids) {
                    Ok(guard) if guard.saved.is_none() && geteuid().as_raw() == 65534 => 0,
                    _ => 2,
                }
            });
            assert_eq!(code, 0);
        } else {
            let guard = EugidGuard::switch(Ids {
                uid: Uid::from_raw(1),
                gid: Gid::from_raw(1),
            })
            .unwrap();
            assert!(guard.saved.is_none());
        }
    }
}
