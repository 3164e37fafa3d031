//! Delivering with the recipient's identity, like Postfix's set_eugid(): only the
//! EFFECTIVE user and group ids (and the supplementary groups) change, so the process
//! can return to root after each delivery. [`PrivGuard`] restores root when dropped
//! and aborts the process if it cannot: carrying on with a wrong identity would deliver
//! the next recipient's mail with someone else's rights.
//!
//! When the agent does not run as root (a developer's `make run`) nothing switches and
//! every delivery happens as the invoking user.
//!
//! Between deliveries, and while it reads and marks queue files, the agent rests with
//! mail_owner's effective ids ([`rest_as`]), as Postfix's local does: a queue file a
//! mail_owner process replaced by a link, or any other path mail_owner controls, is
//! then opened with no more than mail_owner's rights. [`RootGuard`] takes root back
//! for one recipient's delivery only.
//!
//! The effective ids are per process (glibc applies them to every thread), so only a
//! single-threaded process, like the local daemon, may switch.

use nix::unistd::{geteuid, setegid, seteuid, setgroups, Gid, Uid};
use std::sync::OnceLock;

/// Who a delivery runs as (the privilege crate's user and group ids).
pub use rostfix_privilege::Ids as Identity;

/// While alive, the process runs with another effective identity; dropping it returns
/// to root (aborting the process if it cannot). The privilege crate's guard, which
/// master and rostsuper use too.
pub use rostfix_privilege::EugidGuard as PrivGuard;

/// Switching identity failed (before anything was delivered).
#[derive(Debug, thiserror::Error)]
#[error("cannot switch to uid {uid} gid {gid}: {what}: {source}")]
pub struct PrivError {
    uid: Uid,
    gid: Gid,
    what: &'static str,
    #[source]
    source: nix::Error,
}

/// A command or file delivery that would run as root, with no default_privs to run
/// it as instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to deliver to a command or file with {what} 0: default_privs is unknown or privileged"
)]
pub struct RootDelivery {
    /// "uid" or "gid".
    what: &'static str,
}

/// The identity a command or file delivery runs as, as Postfix's local(8) decides it:
/// never root. A uid 0 (mail for root, its .forward and mailbox_command, lists that
/// root owns) becomes default_privs' uid, a gid 0 default_privs' gid; when that is
/// still 0 (or default_privs is unknown) the delivery is refused.
pub fn unprivileged(
    id: Identity,
    default_privs: Option<Identity>,
) -> Result<Identity, RootDelivery> {
    let mut out = id;
    if out.uid.is_root() {
        out.uid = default_privs
            .map(|d| d.uid)
            .filter(|u| !u.is_root())
            .ok_or(RootDelivery { what: "uid" })?;
    }
    if out.gid.as_raw() == 0 {
        out.gid = default_privs
            .map(|d| d.gid)
            .filter(|g| g.as_raw() != 0)
            .ok_or(RootDelivery { what: "gid" })?;
    }
    Ok(out)
}

/// True when this process has root's effective uid and so must switch per delivery.
pub fn running_as_root() -> bool {
    geteuid().is_root()
}

/// Back to root: the uid first (only root may change the group ids), then gid, groups.
fn restore_root() -> nix::Result<()> {
    seteuid(Uid::from_raw(0))?;
    setegid(Gid::from_raw(0))?;
    setgroups(&[Gid::from_raw(0)])
}

/// The identity the agent rests with between deliveries (set once, by [`rest_as`]).
static RESTING: OnceLock<Identity> = OnceLock::new();

/// Gives up root's effective ids for `id` (mail_owner) until a [`RootGuard`] takes them
/// back; called once after confinement by a daemon running as root. The real uid stays
/// 0, so root can be regained for each delivery.
pub fn rest_as(id: Identity) -> Result<(), PrivError> {
    if !running_as_root() {
        return Ok(());
    }
    if RESTING.set(id).is_err() {
        return Ok(());
    }
    become_resting(id).map_err(|(what, source)| PrivError {
        uid: id.uid,
        gid: id.gid,
        what,
        source,
    })
}

fn become_resting(id: Identity) -> Result<(), (&'static str, nix::Error)> {
    setgroups(&[id.gid]).map_err(|e| ("setgroups", e))?;
    setegid(id.gid).map_err(|e| ("setegid", e))?;
    seteuid(id.uid).map_err(|e| ("seteuid", e))
}

/// While alive, a resting agent has root's effective ids again (to switch to each
/// recipient with [`PrivGuard`]); dropping it returns to the resting identity. An agent
/// that never rested (not started as root, or before [`rest_as`]) gets a guard that
/// does nothing.
#[must_use = "the resting identity returns when the guard is dropped"]
#[derive(Debug)]
pub struct RootGuard {
    resting: Option<Identity>,
}

impl RootGuard {
    /// Takes root back for one delivery.
    pub fn regain() -> Result<RootGuard, PrivError> {
        let Some(&id) = RESTING.get() else {
            return Ok(RootGuard { resting: None });
        };
        // Created first so that a failure half way returns to the resting identity.
        let guard = RootGuard { resting: Some(id) };
        restore_root().map_err(|source| PrivError {
            uid: Uid::from_raw(0),
            gid: Gid::from_raw(0),
            what: "regain root",
            source,
        })?;
        Ok(guard)
    }
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        if let Some(id) = self.resting {
            if let Err((what, e)) = become_resting(id) {
                // Going on as root would read the next queue file with root's rights.
                log::error!("cannot return to uid {} ({what}): {e}; aborting", id.uid);
                eprintln!(
                    "local: cannot return to uid {} ({what}): {e}; aborting",
                    id.uid
                );
                std::process::abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Switching for real is tested in tests/privileges.rs, in a process of its own:
    // it changes the ids of every thread, which would disturb parallel unit tests.

    fn id(uid: u32, gid: u32) -> Identity {
        Identity {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
        }
    }

    #[test]
    fn root_becomes_default_privs_for_commands_and_files() {
        let nobody = Some(id(65534, 65534));
        assert_eq!(unprivileged(id(0, 0), nobody), Ok(id(65534, 65534)));
        // Only the privileged half is replaced.
        assert_eq!(unprivileged(id(0, 100), nobody), Ok(id(65534, 100)));
        assert_eq!(unprivileged(id(1000, 0), nobody), Ok(id(1000, 65534)));
        assert_eq!(unprivileged(id(1000, 100), None), Ok(id(1000, 100)));
    }

    #[test]
    fn root_default_privs_is_refused() {
        let err = unprivileged(id(0, 0), Some(id(0, 0))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "refusing to deliver to a command or file with uid 0: \
             default_privs is unknown or privileged"
        );
        assert!(unprivileged(id(0, 5), None).is_err());
        assert!(unprivileged(id(5, 0), Some(id(7, 0))).is_err());
    }

    #[test]
    fn non_root_guard_is_a_no_op() {
        if running_as_root() {
            eprintln!("note: running as root; the no-op path is covered by non-root runs");
            return;
        }
        let before = Identity::current();
        let g = PrivGuard::switch(Identity {
            uid: Uid::from_raw(0),
            gid: Gid::from_raw(0),
        })
        .expect("no-op guard");
        assert!(!g.switched());
        drop(g);
        assert_eq!(Identity::current(), before);
    }
}
