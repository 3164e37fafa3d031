//! Privilege handling shared by master, the daemons and the commands, so each rule has
//! one implementation:
//!
//! - [`eugid`]: doing work in a less privileged user's directory with that user's
//!   EFFECTIVE ids, then returning to root (Postfix's set_eugid);
//! - [`ugid`]: giving up root for good (Postfix's set_ugid);
//! - [`hygiene`]: start-up of a set-group-id command run by a possibly hostile user
//!   (standard descriptors, environment, umask);
//! - [`config_dir`]: which configuration directory such a command may use
//!   (alternate_config_directories).

#![deny(unsafe_code)]

pub mod config_dir;
pub mod eugid;
pub mod hygiene;
pub mod ugid;

pub use config_dir::{choose_config_dir, ConfigDirError};
pub use eugid::{EugidError, EugidGuard};
pub use ugid::{drop_to, UgidError};

/// A user and group, as numeric ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: nix::unistd::Uid,
    pub gid: nix::unistd::Gid,
}

impl Ids {
    /// The process's effective ids now.
    pub fn current() -> Ids {
        Ids {
            uid: nix::unistd::geteuid(),
            gid: nix::unistd::getegid(),
        }
    }
}
