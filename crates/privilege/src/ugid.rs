//! Giving up root for good, like Postfix's set_ugid(): rostsuper does its queue work
//! as mail_owner, so nothing a mail_owner process planted in the queue (a symbolic
//! link, a hard link to a system file) can borrow root's rights.

use crate::Ids;
use nix::unistd::{getegid, geteuid, getgid, getuid, setgid, setgroups, setuid, Gid, Uid};

/// Dropping to a user failed; the caller must not go on.
#[derive(Debug, thiserror::Error)]
pub enum UgidError {
    #[error("cannot become uid {uid} gid {gid}: {what}: {source}")]
    Call {
        uid: Uid,
        gid: Gid,
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("cannot become uid {uid} gid {gid}: still uid {real}/{effective}")]
    NotDropped {
        uid: Uid,
        gid: Gid,
        real: Uid,
        effective: Uid,
    },
}

/// Becomes `ids` for good (real, effective and saved ids; supplementary groups just
/// the one) when running as root; without root nothing changes.
pub fn drop_to(ids: Ids) -> Result<(), UgidError> {
    if !geteuid().is_root() {
        return Ok(());
    }
    let fail = |what, source| UgidError::Call {
        uid: ids.uid,
        gid: ids.gid,
        what,
        source,
    };
    setgroups(&[ids.gid]).map_err(|e| fail("setgroups", e))?;
    setgid(ids.gid).map_err(|e| fail("setgid", e))?;
    setuid(ids.uid).map_err(|e| fail("setuid", e))?;
    if getuid() != ids.uid || geteuid() != ids.uid || getgid() != ids.gid || getegid() != ids.gid {
        return Err(UgidError::NotDropped {
            uid: ids.uid,
            gid: ids.gid,
            real: getuid(),
            effective: geteuid(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(unsafe_code)] // fork/_exit in tests, each stating why it is sound
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    #[test]
    fn dropped_for_good() {
        if !geteuid().is_root() {
            assert!(drop_to(Ids {
                uid: Uid::from_raw(1),
                gid: Gid::from_raw(1)
            })
            .is_ok());
            return;
        }
        // SAFETY: the child makes only system calls before _exit (see eugid.rs tests).
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let ids = Ids {
                    uid: Uid::from_raw(65534),
                    gid: Gid::from_raw(65534),
                };
                let code = match drop_to(ids) {
                    // The way back must be closed.
                    Ok(()) if seteuid(Uid::from_raw(0)).is_err() => 0,
                    Ok(()) => 1,
                    Err(_) => 2,
                };
                // SAFETY: ends the child without the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                assert!(matches!(
                    waitpid(child, None).unwrap(),
                    WaitStatus::Exited(_, 0)
                ));
            }
        }
    }

    use nix::unistd::seteuid;
}
