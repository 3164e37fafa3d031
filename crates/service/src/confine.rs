//! Confinement after a daemon opened what it needs: chdir to queue_directory, then as
//! root chroot there (`-c`) and become mail_owner with no capabilities (`-u`).

#![allow(unsafe_code)] // every unsafe block here states why it is sound

use crate::{ServiceArgs, ServiceError};
use caps::CapSet;
use nix::unistd::{Gid, Uid, User};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The unconfined notice is logged once per process.
static UNCONFINED_LOGGED: AtomicBool = AtomicBool::new(false);

/// Every capability set a process has that can hold privileges (the bounding set only
/// limits what exec can gain and needs CAP_SETPCAP to change, so it is left alone).
const CAP_SETS: [CapSet; 4] = [
    CapSet::Ambient,
    CapSet::Inheritable,
    CapSet::Effective,
    CapSet::Permitted,
];

/// Applies the confinement `args` ask for. `queue_directory` and `mail_owner` are the
/// expanded main.cf values.
pub(crate) fn confine(
    args: &ServiceArgs,
    queue_directory: &str,
    mail_owner: &str,
) -> Result<(), ServiceError> {
    nix::unistd::chdir(Path::new(queue_directory))
        .map_err(|e| sys(format!("chdir {queue_directory}"), e))?;
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        if (args.chroot || args.unpriv) && !UNCONFINED_LOGGED.swap(true, Ordering::SeqCst) {
            log::info!(
                "running as uid {euid} without chroot or privilege change (not started by root)"
            );
        }
        return Ok(());
    }
    // Look the user up before the chroot hides /etc/passwd.
    let owner = if args.unpriv {
        Some(lookup_owner(mail_owner)?)
    } else {
        None
    };
    if args.chroot {
        nix::unistd::chroot(".").map_err(|e| sys(format!("chroot {queue_directory}"), e))?;
        nix::unistd::chdir("/").map_err(|e| sys("chdir / in chroot".to_string(), e))?;
    }
    if let Some((uid, gid)) = owner {
        drop_privileges(uid, gid)?;
        clear_capabilities()?;
    }
    Ok(())
}

fn lookup_owner(mail_owner: &str) -> Result<(Uid, Gid), ServiceError> {
    match User::from_name(mail_owner) {
        Ok(Some(user)) if user.uid.is_root() => Err(ServiceError::Sys {
            what: format!("mail_owner {mail_owner}"),
            source: std::io::Error::other("must not be a user with uid 0"),
        }),
        Ok(Some(user)) => Ok((user.uid, user.gid)),
        Ok(None) => Err(ServiceError::UnknownUser(mail_owner.to_string())),
        Err(e) => Err(sys(format!("look up user {mail_owner}"), e)),
    }
}

/// setgroups, setgid, setuid (in that order: each later step removes the right to do
/// the earlier ones), then proves root cannot be regained.
fn drop_privileges(uid: Uid, gid: Gid) -> Result<(), ServiceError> {
    nix::unistd::setgroups(&[gid]).map_err(|e| sys(format!("setgroups {gid}"), e))?;
    nix::unistd::setgid(gid).map_err(|e| sys(format!("setgid {gid}"), e))?;
    nix::unistd::setuid(uid).map_err(|e| sys(format!("setuid {uid}"), e))?;
    let ids_ok = nix::unistd::getuid() == uid
        && nix::unistd::geteuid() == uid
        && nix::unistd::getgid() == gid
        && nix::unistd::getegid() == gid;
    if !ids_ok || nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(ServiceError::Sys {
            what: format!("drop privileges to uid {uid}"),
            source: std::io::Error::other("ids did not change as requested"),
        });
    }
    Ok(())
}

/// Empties every capability set and checks that they are empty. setuid away from root
/// already cleared them unless securebits say otherwise; this does not rely on that.
fn clear_capabilities() -> Result<(), ServiceError> {
    for set in CAP_SETS {
        caps::clear(None, set).map_err(|e| caps_error(format!("clear {set:?} capabilities"), e))?;
    }
    for set in CAP_SETS {
        let held = caps::read(None, set)
            .map_err(|e| caps_error(format!("read {set:?} capabilities"), e))?;
        if !held.is_empty() {
            return Err(ServiceError::Sys {
                what: format!("clear {set:?} capabilities"),
                source: std::io::Error::other(format!("still held: {held:?}")),
            });
        }
    }
    Ok(())
}

fn sys(what: String, errno: nix::errno::Errno) -> ServiceError {
    ServiceError::Sys {
        what,
        source: std::io::Error::from(errno),
    }
}

fn caps_error(what: String, e: caps::errors::CapsError) -> ServiceError {
    ServiceError::Sys {
        what,
        source: std::io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_queue_directory_is_a_sys_error() {
        let args = ServiceArgs::default();
        match confine(&args, "/nonexistent/rostfix-queue", "nobody") {
            Err(ServiceError::Sys { what, .. }) => {
                assert_eq!(what, "chdir /nonexistent/rostfix-queue")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_mail_owner() {
        match lookup_owner("rostfix-no-such-user-x") {
            Err(ServiceError::UnknownUser(name)) => assert_eq!(name, "rostfix-no-such-user-x"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn root_is_refused_as_mail_owner() {
        assert!(matches!(
            lookup_owner("root"),
            Err(ServiceError::Sys { .. })
        ));
    }

    /// The real drop runs in a forked child so the test process keeps its privileges.
    #[test]
    fn drop_to_nobody_in_a_child() {
        if !nix::unistd::geteuid().is_root() {
            return; // needs root; covered by the end-to-end tests otherwise
        }
        let Ok((uid, gid)) = lookup_owner("nobody") else {
            return;
        };
        // SAFETY: the child only makes async-signal-safe-enough system calls (setgroups,
        // setgid, setuid, capget/capset via caps) and leaves with _exit, never returning
        // into the test harness.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = drop_privileges(uid, gid).is_ok() && clear_capabilities().is_ok();
                let code = if ok && nix::unistd::geteuid() == uid {
                    0
                } else {
                    1
                };
                // SAFETY: _exit ends the child at once, without running the parent's
                // atexit handlers or destructors twice.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
