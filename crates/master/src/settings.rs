//! What master takes from main.cf, with relative directories made absolute against
//! the directory master was started in (children must see the same paths).

use crate::endpoint::parse_protocols;
use crate::listen::SocketOwner;
use crate::plan::PlanSettings;
use crate::MasterError;
use rostfix_config::MainCf;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// master's view of main.cf.
#[derive(Debug, Clone)]
pub struct Settings {
    pub plan: PlanSettings,
    pub default_process_limit: u32,
    pub throttle_time: Duration,
    pub import_environment: Vec<String>,
    pub mail_owner: String,
}

/// `path` if absolute, else `base/path`.
pub fn absolute(path: &Path, base: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

impl Settings {
    pub fn from_main(main: &MainCf, cwd: &Path) -> Result<Settings, MasterError> {
        let protocols =
            parse_protocols(&main.get_list("inet_protocols")).map_err(MasterError::Setting)?;
        Ok(Settings {
            plan: PlanSettings {
                daemon_directory: absolute(Path::new(&main.get("daemon_directory")), cwd),
                queue_directory: absolute(Path::new(&main.get("queue_directory")), cwd),
                inet_interfaces: main.get_list("inet_interfaces"),
                protocols,
            },
            default_process_limit: u32::try_from(main.get_int("default_process_limit"))
                .unwrap_or(u32::MAX),
            throttle_time: main.get_time("service_throttle_time"),
            import_environment: main.get_list("import_environment"),
            mail_owner: main.get("mail_owner"),
        })
    }

    /// queue_directory/pid/master.pid.
    pub fn pid_file(&self) -> PathBuf {
        self.plan.queue_directory.join("pid").join("master.pid")
    }

    /// mail_owner's uid and gid when master runs as root (unix sockets are made with
    /// its effective ids, see listen.rs); None otherwise.
    pub fn socket_owner(&self) -> Result<Option<SocketOwner>, MasterError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(None);
        }
        match nix::unistd::User::from_name(&self.mail_owner) {
            Ok(Some(user)) => Ok(Some(SocketOwner {
                uid: user.uid,
                gid: user.gid,
            })),
            Ok(None) => Err(MasterError::UnknownUser(self.mail_owner.clone())),
            Err(e) => Err(MasterError::sys(
                format!("look up user {}", self.mail_owner),
                crate::error::io(e),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_absolutizes() {
        let text = "queue_directory = spool\ndaemon_directory = /opt/rf\ninet_protocols = ipv4\n\
                    service_throttle_time = 2s\ndefault_process_limit = 7\n";
        let main = MainCf::parse(text, Path::new("/etc/rf/main.cf")).unwrap();
        let s = Settings::from_main(&main, Path::new("/home/dev")).unwrap();
        assert_eq!(s.plan.queue_directory, PathBuf::from("/home/dev/spool"));
        assert_eq!(s.plan.daemon_directory, PathBuf::from("/opt/rf"));
        assert!(s.plan.protocols.v4 && !s.plan.protocols.v6);
        assert_eq!(s.throttle_time, Duration::from_secs(2));
        assert_eq!(s.default_process_limit, 7);
        assert_eq!(
            s.pid_file(),
            PathBuf::from("/home/dev/spool/pid/master.pid")
        );
        let bad = MainCf::parse("inet_protocols = ipx\n", Path::new("/etc/rf/main.cf")).unwrap();
        assert!(Settings::from_main(&bad, Path::new("/")).is_err());
    }
}
