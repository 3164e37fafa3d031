//! master.cf -> the services master runs: which entries are supported, where each
//! listens, and the warning for every entry that is skipped.

use crate::endpoint::{inet_endpoints, Protocols};
use crate::MasterError;
use rostfix_config::{folded_into_postscreen, MasterCf, ServiceEntry, ServiceType};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The daemons Rostfix ships; master runs only these.
pub const SUPPORTED_COMMANDS: [&str; 19] = [
    "smtpd",
    "qmgr",
    "local",
    "smtp",
    "pickup",
    "bounce",
    "lmtp",
    "virtual",
    "anvil",
    "showq",
    "postscreen",
    "pipe",
    "spawn",
    "proxymap",
    "verify",
    "metrics",
    "mtasts",
    "tlsrpt",
    "bus",
];

/// master.cf's type column as written.
pub fn type_name(service_type: ServiceType) -> &'static str {
    match service_type {
        ServiceType::Inet => "inet",
        ServiceType::Unix => "unix",
        ServiceType::UnixDgram => "unix-dgram",
        ServiceType::Fifo => "fifo",
        ServiceType::Pass => "pass",
    }
}

/// A service's identity: master.cf keys entries by (name, type).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub name: String,
    pub service_type: ServiceType,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, type_name(self.service_type))
    }
}

/// One socket a service listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Inet(SocketAddr),
    /// Absolute path of the socket (queue_directory/private/NAME or public/NAME).
    Unix(PathBuf),
}

/// A service master will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedService {
    pub key: ServiceKey,
    pub entry: ServiceEntry,
    /// daemon_directory/COMMAND.
    pub program: PathBuf,
    pub endpoints: Vec<Endpoint>,
}

/// What planning needs from main.cf.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub daemon_directory: PathBuf,
    pub queue_directory: PathBuf,
    pub inet_interfaces: Vec<String>,
    pub protocols: Protocols,
}

/// The services to run plus a warning (log text, without `warning: `) per skipped entry.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub services: Vec<PlannedService>,
    pub skipped: Vec<String>,
}

fn where_(entry: &ServiceEntry) -> String {
    format!("{}, line {}", entry.file.display(), entry.line)
}

/// Decides, for each master.cf entry, whether it runs and where it listens.
/// `program_exists` says whether daemon_directory/COMMAND is there (a parameter so that
/// tests need no files). Errors are entries that should run but are malformed.
pub fn make_plan(
    master: &MasterCf,
    settings: &PlanSettings,
    program_exists: &dyn Fn(&Path) -> bool,
) -> Result<Plan, MasterError> {
    let mut plan = Plan::default();
    for entry in &master.services {
        let fifo_entry;
        let entry = match fifo_as_unix(entry) {
            Some(unix) => {
                plan.skipped.push(format!(
                    "{}: service {}/fifo ({}) runs as {}/unix: Rostfix's wake-up triggers \
                     use a unix socket at the same path",
                    where_(entry),
                    entry.name,
                    entry.command,
                    entry.name
                ));
                fifo_entry = unix;
                &fifo_entry
            }
            None => entry,
        };
        let key = ServiceKey {
            name: entry.name.clone(),
            service_type: entry.service_type,
        };
        let not_supported = || {
            format!(
                "{}: service {key} ({}) is not supported yet; skipped",
                where_(entry),
                entry.command
            )
        };
        if let Some(why) = folded_into_postscreen(&entry.command) {
            plan.skipped.push(format!(
                "{}: service {key} ({}) is not needed, folded into postscreen: {why}; skipped",
                where_(entry),
                entry.command
            ));
            continue;
        }
        // `pass` services listen on a unix socket like `unix` ones; the child receives
        // client connections over it (rostfix_service::pass).
        let supported_type = matches!(
            entry.service_type,
            ServiceType::Inet | ServiceType::Unix | ServiceType::Pass
        );
        // Postfix runs bounce under three names; Rostfix's bounce serves the one name.
        let bounce_alias =
            entry.command == "bounce" && (entry.name == "defer" || entry.name == "trace");
        if !supported_type || bounce_alias || !SUPPORTED_COMMANDS.contains(&entry.command.as_str())
        {
            plan.skipped.push(not_supported());
            continue;
        }
        if plan.services.iter().any(|s| s.key == key) {
            plan.skipped.push(format!(
                "{}: duplicate service {key}; skipped",
                where_(entry)
            ));
            continue;
        }
        let program = settings.daemon_directory.join(&entry.command);
        if !program_exists(&program) {
            plan.skipped.push(format!(
                "{}: service {key}: {}: no such program; skipped",
                where_(entry),
                program.display()
            ));
            continue;
        }
        let endpoints = endpoints_of(entry, &key, settings)?;
        plan.services.push(PlannedService {
            key,
            entry: entry.clone(),
            program,
            endpoints,
        });
    }
    Ok(plan)
}

/// Postfix's older master.cf runs pickup and qmgr as `fifo` services (triggers are
/// written into a FIFO). Rostfix's triggers are unix stream sockets at the same path
/// (public/pickup, public/qmgr), so such an entry runs as the `unix` service.
fn fifo_as_unix(entry: &ServiceEntry) -> Option<ServiceEntry> {
    if entry.service_type != ServiceType::Fifo
        || !matches!(entry.command.as_str(), "pickup" | "qmgr")
    {
        return None;
    }
    let mut unix = entry.clone();
    unix.service_type = ServiceType::Unix;
    Some(unix)
}

fn endpoints_of(
    entry: &ServiceEntry,
    key: &ServiceKey,
    settings: &PlanSettings,
) -> Result<Vec<Endpoint>, MasterError> {
    let error = |message: String| MasterError::Plan {
        file: entry.file.clone(),
        line: entry.line,
        service: key.to_string(),
        message,
    };
    match entry.service_type {
        ServiceType::Inet => {
            let addrs = inet_endpoints(&entry.name, &settings.inet_interfaces, settings.protocols)
                .map_err(error)?;
            Ok(addrs.into_iter().map(Endpoint::Inet).collect())
        }
        _ => {
            if entry.name.is_empty()
                || entry.name.contains('/')
                || entry.name == "."
                || entry.name == ".."
            {
                return Err(error(format!("bad unix service name \"{}\"", entry.name)));
            }
            let dir = if entry.private { "private" } else { "public" };
            Ok(vec![Endpoint::Unix(
                settings.queue_directory.join(dir).join(&entry.name),
            )])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_config::Wakeup;

    #[test]
    fn fifo_pickup_and_qmgr_run_as_unix_services() {
        let master = MasterCf {
            services: vec![
                entry(1, "pickup", ServiceType::Fifo, false, "pickup"),
                entry(2, "qmgr", ServiceType::Fifo, false, "qmgr"),
                entry(3, "other", ServiceType::Fifo, false, "smtpd"),
            ],
        };
        let plan = make_plan(&master, &settings(), &|_| true).unwrap();
        let keys: Vec<String> = plan.services.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(keys, vec!["pickup/unix", "qmgr/unix"]);
        assert!(plan.skipped[0].contains("service pickup/fifo (pickup) runs as pickup/unix"));
        assert!(plan.skipped[2].contains("service other/fifo (smtpd) is not supported yet"));
    }

    fn entry(
        line: usize,
        name: &str,
        service_type: ServiceType,
        private: bool,
        command: &str,
    ) -> ServiceEntry {
        ServiceEntry {
            name: name.to_string(),
            service_type,
            private,
            unpriv: true,
            chroot: false,
            wakeup: None,
            maxproc: 100,
            command: command.to_string(),
            args: Vec::new(),
            file: PathBuf::from("/etc/rostfix/master.cf"),
            line,
        }
    }

    fn settings() -> PlanSettings {
        PlanSettings {
            daemon_directory: PathBuf::from("/usr/lib/rostfix"),
            queue_directory: PathBuf::from("/var/spool/rostfix"),
            inet_interfaces: vec!["127.0.0.1".to_string()],
            protocols: Protocols { v4: true, v6: true },
        }
    }

    fn all_exist(_: &Path) -> bool {
        true
    }

    #[test]
    fn runs_supported_and_skips_the_rest_with_one_warning_each() {
        let mut pickup = entry(3, "pickup", ServiceType::Unix, false, "pickup");
        pickup.wakeup = Some(Wakeup {
            seconds: 60,
            after_first_use: false,
        });
        let master = MasterCf {
            services: vec![
                entry(1, "smtp", ServiceType::Inet, false, "smtpd"),
                entry(2, "cleanup", ServiceType::Unix, false, "cleanup"),
                pickup,
                entry(4, "bounce", ServiceType::Unix, true, "bounce"),
                entry(5, "defer", ServiceType::Unix, true, "bounce"),
                entry(6, "trace", ServiceType::Unix, true, "bounce"),
                entry(7, "relay", ServiceType::Unix, true, "smtp"),
                entry(8, "postlog", ServiceType::UnixDgram, false, "postlogd"),
                entry(9, "smtpfifo", ServiceType::Fifo, false, "smtpd"),
            ],
        };
        let plan = make_plan(&master, &settings(), &all_exist).unwrap();
        let keys: Vec<String> = plan.services.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(
            keys,
            ["smtp/inet", "pickup/unix", "bounce/unix", "relay/unix"]
        );
        assert_eq!(plan.skipped.len(), 5);
        assert_eq!(
            plan.skipped[0],
            "/etc/rostfix/master.cf, line 2: service cleanup/unix (cleanup) is not supported yet; skipped"
        );
        assert!(plan.skipped[1].contains("line 5: service defer/unix (bounce)"));
        assert!(plan.skipped[3].contains("postlog/unix-dgram (postlogd)"));
        assert!(plan.skipped[4].contains("smtpfifo/fifo"));
        assert_eq!(
            plan.services[0].program,
            PathBuf::from("/usr/lib/rostfix/smtpd")
        );
        assert_eq!(
            plan.services[0].endpoints,
            vec![Endpoint::Inet("127.0.0.1:25".parse().unwrap())]
        );
        assert_eq!(
            plan.services[1].endpoints,
            vec![Endpoint::Unix("/var/spool/rostfix/public/pickup".into())]
        );
        assert_eq!(
            plan.services[2].endpoints,
            vec![Endpoint::Unix("/var/spool/rostfix/private/bounce".into())]
        );
        assert_eq!(
            plan.services[3].program,
            PathBuf::from("/usr/lib/rostfix/smtp")
        );
    }

    #[test]
    fn missing_program_is_skipped_not_fatal() {
        let master = MasterCf {
            services: vec![entry(1, "qmgr", ServiceType::Unix, false, "qmgr")],
        };
        let plan = make_plan(&master, &settings(), &|_| false).unwrap();
        assert!(plan.services.is_empty());
        assert_eq!(
            plan.skipped,
            ["/etc/rostfix/master.cf, line 1: service qmgr/unix: /usr/lib/rostfix/qmgr: no such program; skipped"]
        );
    }

    #[test]
    fn bad_inet_name_names_the_line() {
        let master = MasterCf {
            services: vec![entry(7, "imap", ServiceType::Inet, false, "smtpd")],
        };
        let err = make_plan(&master, &settings(), &all_exist)
            .unwrap_err()
            .to_string();
        assert!(err.contains("master.cf, line 7"), "{err}");
        assert!(
            err.contains("imap/inet") && err.contains("unknown service port"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_and_bad_unix_names() {
        let master = MasterCf {
            services: vec![
                entry(1, "local", ServiceType::Unix, true, "local"),
                entry(2, "local", ServiceType::Unix, true, "local"),
                entry(3, "local", ServiceType::Inet, false, "smtpd"),
            ],
        };
        let err = make_plan(&master, &settings(), &all_exist)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        let master = MasterCf {
            services: vec![
                entry(1, "local", ServiceType::Unix, true, "local"),
                entry(2, "local", ServiceType::Unix, true, "local"),
            ],
        };
        let plan = make_plan(&master, &settings(), &all_exist).unwrap();
        assert_eq!(plan.services.len(), 1);
        assert!(plan.skipped[0].contains("duplicate service local/unix"));
        let master = MasterCf {
            services: vec![entry(1, "../x", ServiceType::Unix, true, "local")],
        };
        assert!(make_plan(&master, &settings(), &all_exist).is_err());
    }

    #[test]
    fn postscreen_and_its_pass_service_run_and_its_helpers_are_folded() {
        let master = MasterCf {
            services: vec![
                entry(1, "smtp", ServiceType::Inet, false, "postscreen"),
                entry(2, "smtpd", ServiceType::Pass, true, "smtpd"),
                entry(3, "dnsblog", ServiceType::Unix, true, "dnsblog"),
                entry(4, "tlsproxy", ServiceType::Unix, true, "tlsproxy"),
            ],
        };
        let plan = make_plan(&master, &settings(), &all_exist).unwrap();
        let keys: Vec<String> = plan.services.iter().map(|s| s.key.to_string()).collect();
        assert_eq!(keys, ["smtp/inet", "smtpd/pass"]);
        assert_eq!(
            plan.services[1].endpoints,
            vec![Endpoint::Unix("/var/spool/rostfix/private/smtpd".into())]
        );
        assert_eq!(plan.skipped.len(), 2);
        assert!(plan.skipped[0]
            .contains("dnsblog/unix (dnsblog) is not needed, folded into postscreen"));
        assert!(plan.skipped[1]
            .contains("tlsproxy/unix (tlsproxy) is not needed, folded into postscreen"));
    }
}
