//! The argument vector and environment of a service child (see ARCHITECTURE.md,
//! "master and its children").

use crate::plan::{type_name, PlannedService};
use std::path::Path;

/// `daemon_directory/COMMAND -n NAME -t TYPE [-c] [-u] [-l] [-z] [-o stress=yes]
/// ARGS...`; argv[0] is the program's full path. `stress=yes` goes before the master.cf
/// arguments, so that an explicit `-o` there still wins and non-option arguments stay
/// last.
pub fn child_argv(service: &PlannedService, stress: bool) -> Vec<String> {
    let entry = &service.entry;
    let mut argv = vec![
        service.program.display().to_string(),
        "-n".to_string(),
        entry.name.clone(),
        "-t".to_string(),
        type_name(entry.service_type).to_string(),
    ];
    if entry.chroot {
        argv.push("-c".to_string());
    }
    if entry.unpriv {
        argv.push("-u".to_string());
    }
    if entry.maxproc == 1 {
        argv.push("-l".to_string());
    }
    if entry.maxproc == 0 {
        argv.push("-z".to_string());
    }
    if stress {
        argv.push("-o".to_string());
        argv.push("stress=yes".to_string());
    }
    argv.extend(entry.args.iter().cloned());
    argv
}

/// The child's environment: what import_environment names (`NAME` copied from master's
/// own environment via `current`, `NAME=VALUE` as given), then MAIL_CONFIG, GENERATION
/// and LISTEN_FDS, which always win. Nothing else of master's environment leaks.
pub fn child_env(
    import_environment: &[String],
    current: &dyn Fn(&str) -> Option<String>,
    config_dir: &Path,
    generation: u32,
    listen_fds: usize,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: String| {
        env.retain(|(n, _)| n != name);
        env.push((name.to_string(), value));
    };
    for item in import_environment {
        match item.split_once('=') {
            Some((name, value)) if !name.is_empty() => set(name, value.to_string()),
            Some(_) => {}
            None => {
                if let Some(value) = current(item) {
                    set(item, value);
                }
            }
        }
    }
    set("MAIL_CONFIG", config_dir.display().to_string());
    set("GENERATION", generation.to_string());
    set("LISTEN_FDS", listen_fds.to_string());
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Endpoint, ServiceKey};
    use rostfix_config::{ServiceEntry, ServiceType};
    use std::path::PathBuf;

    fn service(maxproc: u32, chroot: bool, unpriv: bool, args: &[&str]) -> PlannedService {
        let entry = ServiceEntry {
            name: "127.0.0.1:2525".to_string(),
            service_type: ServiceType::Inet,
            private: false,
            unpriv,
            chroot,
            wakeup: None,
            maxproc,
            command: "smtpd".to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            file: PathBuf::from("master.cf"),
            line: 1,
        };
        PlannedService {
            key: ServiceKey {
                name: entry.name.clone(),
                service_type: entry.service_type,
            },
            entry,
            program: PathBuf::from("/usr/lib/rostfix/smtpd"),
            endpoints: vec![Endpoint::Inet("127.0.0.1:2525".parse().unwrap())],
        }
    }

    #[test]
    fn argv_flags_follow_the_columns() {
        let argv = child_argv(
            &service(100, true, true, &["-o", "smtpd_banner=hi there", "-v"]),
            false,
        );
        assert_eq!(
            argv,
            [
                "/usr/lib/rostfix/smtpd",
                "-n",
                "127.0.0.1:2525",
                "-t",
                "inet",
                "-c",
                "-u",
                "-o",
                "smtpd_banner=hi there",
                "-v"
            ]
        );
        assert_eq!(
            child_argv(&service(1, false, false, &[]), false)[5..],
            ["-l"]
        );
        assert_eq!(
            child_argv(&service(0, false, true, &[]), false)[5..],
            ["-u", "-z"]
        );
        assert_eq!(child_argv(&service(5, false, false, &[]), false).len(), 5);
        assert_eq!(
            child_argv(&service(5, false, false, &["-o", "stress=", "x"]), true)[5..],
            ["-o", "stress=yes", "-o", "stress=", "x"]
        );
    }

    #[test]
    fn env_imports_only_what_is_named() {
        let current = |name: &str| match name {
            "TZ" => Some("UTC".to_string()),
            "MAIL_CONFIG" => Some("/wrong".to_string()),
            _ => None,
        };
        let import: Vec<String> = ["MAIL_CONFIG", "TZ", "DISPLAY", "LANG=C"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let env = child_env(&import, &current, Path::new("/etc/rostfix"), 3, 2);
        let pairs: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("TZ", "UTC"),
                ("LANG", "C"),
                ("MAIL_CONFIG", "/etc/rostfix"),
                ("GENERATION", "3"),
                ("LISTEN_FDS", "2")
            ]
        );
    }
}
