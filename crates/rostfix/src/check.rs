//! `rostfix check` (also the first step of start): configuration loads (its warnings
//! include the settings Rostfix accepts but does not implement), users and
//! groups exist, queue directories are right, master.cf's programs are installed,
//! and the file checks of check_files.rs (queue files, set-group-id commands, config
//! files, lookup tables).

use crate::check_files::{
    check_config_files, check_queue_files, check_setgid_commands, check_table, tables_in, Findings,
};
use crate::dirs::{ensure_queue_dirs, Ids};
use crate::Fatal;
use rostfix_config::ineffective::setting_warnings;
use rostfix_config::{MainCf, MasterCf, ServiceType};
use std::path::{Path, PathBuf};

/// What a successful check found, for the commands that follow it.
#[derive(Debug)]
pub struct Checked {
    pub queue_directory: PathBuf,
    pub daemon_directory: PathBuf,
    /// What stops mail: lookup tables that cannot be read (or whose type Rostfix
    /// lacks) and smtpd services that cannot start. Fatal for `rostfix check`,
    /// warnings for start (a table may be fixed while the suite runs; maps reload it).
    pub errors: Vec<String>,
}

/// `path` if absolute, else relative to the current directory (as master resolves it).
pub fn absolute(path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_absolute() {
        return path;
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(&path))
        .unwrap_or(path)
}

/// The ids the queue directories are given; checks mail_owner and setgid_group exist
/// (when root; otherwise everything belongs to the invoker).
fn ids(main: &MainCf) -> Result<Ids, Fatal> {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        return Ok(Ids {
            root,
            mail_uid: 0,
            mail_gid: 0,
            setgid_gid: 0,
        });
    }
    let owner_name = main.get("mail_owner");
    let owner = nix::unistd::User::from_name(&owner_name)
        .ok()
        .flatten()
        .ok_or_else(|| {
            Fatal::Check(format!(
                "mail_owner: unknown user \"{owner_name}\"; create it or set mail_owner"
            ))
        })?;
    if owner.uid.is_root() {
        return Err(Fatal::Check(format!(
            "mail_owner: user \"{owner_name}\" must not be root"
        )));
    }
    let group_name = main.get("setgid_group");
    let group = nix::unistd::Group::from_name(&group_name)
        .ok()
        .flatten()
        .ok_or_else(|| {
            Fatal::Check(format!(
                "setgid_group: unknown group \"{group_name}\"; create it or set setgid_group"
            ))
        })?;
    Ok(Ids {
        root,
        mail_uid: owner.uid.as_raw(),
        mail_gid: owner.gid.as_raw(),
        setgid_gid: group.gid.as_raw(),
    })
}

/// Runs every check; warnings go to `warn` (phrased without `warning: `).
pub fn check(config_dir: &Path, warn: &mut dyn FnMut(&str)) -> Result<Checked, Fatal> {
    let main = MainCf::load(config_dir)?;
    let limit = u32::try_from(main.get_int("default_process_limit")).unwrap_or(u32::MAX);
    let master = MasterCf::load(config_dir, limit)?;
    for warning in rostfix_config::unused::warnings(&main, Some(&master)) {
        warn(&warning);
    }
    // A table type Rostfix cannot read fails the check (every lookup in it would
    // fail); master only warns at start, as for other unreadable tables.
    let unreadable = rostfix_config::table_types::table_warnings(&main, Some(&master));
    for warning in setting_warnings(&main, Some(&master)) {
        if !unreadable.contains(&warning) {
            warn(&warning);
        }
    }
    let ids = ids(&main)?;
    let queue_directory = absolute(&main.get("queue_directory"));
    for warning in ensure_queue_dirs(&queue_directory, &ids).map_err(Fatal::Check)? {
        warn(&warning);
    }
    let daemon_directory = absolute(&main.get("daemon_directory"));
    for entry in &master.services {
        if let Some(why) = rostfix_config::folded_into_postscreen(&entry.command) {
            warn(&format!(
                "{}, line {}: service {} ({}) is not needed, folded into postscreen: {why}; \
                 it is not run",
                entry.file.display(),
                entry.line,
                entry.name,
                entry.command
            ));
        }
    }
    if let Some(warning) = postscreen_without_pass(&master) {
        warn(&warning);
    }
    if let Some(notice) = system_trust_notice(&main) {
        warn(&notice);
    }
    for command in missing_programs(&master, &daemon_directory, &|path| path.is_file()) {
        warn(&format!(
            "{}: no such program (named in master.cf)",
            daemon_directory.join(command).display()
        ));
    }
    let mut found = Findings::default();
    check_queue_files(
        &queue_directory,
        ids.root.then_some(ids.mail_uid),
        &mut found,
    );
    if ids.root {
        let command_directory = absolute(&main.get("command_directory"));
        let group = main.get("setgid_group");
        check_setgid_commands(&command_directory, (&group, ids.setgid_gid), &mut found);
    }
    found.errors.extend(unreadable);
    found
        .errors
        .extend(crate::check_smtpd::smtpd_start_errors(&main, &master));
    check_config_files(config_dir, ids.root, &mut found);
    let mut seen = std::collections::HashSet::new();
    for setting in main.explicit() {
        let Ok(value) = main.expanded(&setting.name) else {
            continue;
        };
        for (kind, path) in tables_in(&value) {
            if seen.insert((kind.clone(), path.clone())) {
                check_table(&kind, &path, &mut found);
            }
        }
    }
    for w in &found.warnings {
        warn(w);
    }
    Ok(Checked {
        queue_directory,
        daemon_directory,
        errors: found.errors,
    })
}

/// postscreen hands clients to a `pass` service: without one, every client that
/// passes is told 421.
pub fn postscreen_without_pass(master: &MasterCf) -> Option<String> {
    let postscreen = master.services.iter().find(|e| e.command == "postscreen")?;
    if master
        .services
        .iter()
        .any(|e| e.service_type == ServiceType::Pass)
    {
        return None;
    }
    Some(format!(
        "{}, line {}: service {} runs postscreen but master.cf has no pass service \
         (e.g. \"smtpd pass - - y - - smtpd\"): clients that pass would be refused with 421",
        postscreen.file.display(),
        postscreen.line,
        postscreen.name
    ))
}

/// Neither smtp_tls_CAfile nor smtp_tls_CApath is set while the smtp client may
/// verify certificates (a verify/secure level, a policy table, MTA-STS): Rostfix then
/// trusts the system CA store where Postfix trusts no CA at all. Said, not silent.
pub fn system_trust_notice(main: &MainCf) -> Option<String> {
    let set = |name: &str| !main.get(name).trim().is_empty();
    if set("smtp_tls_CAfile") || set("smtp_tls_CApath") {
        return None;
    }
    let level = main
        .get("smtp_tls_security_level")
        .trim()
        .to_ascii_lowercase();
    let may_verify = matches!(level.as_str(), "verify" | "secure")
        || set("smtp_tls_policy_maps")
        || main.get_bool("rostfix_mta_sts_enable");
    may_verify.then(|| {
        "smtp_tls_CAfile and smtp_tls_CApath are empty: the smtp client verifies servers \
         against the system CA store (/etc/ssl/certs/ca-certificates.crt), where Postfix \
         would trust no CA; set smtp_tls_CAfile to choose the CAs"
            .to_string()
    })
}

/// Each command of an inet/unix/pass master.cf entry that daemon_directory lacks, once
/// (dnsblog and tlsproxy are not run at all: postscreen does their work).
pub fn missing_programs(
    master: &MasterCf,
    daemon_directory: &Path,
    exists: &dyn Fn(&Path) -> bool,
) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for entry in &master.services {
        let runs = matches!(
            entry.service_type,
            ServiceType::Inet | ServiceType::Unix | ServiceType::Pass
        );
        if !runs || rostfix_config::folded_into_postscreen(&entry.command).is_some() {
            continue;
        }
        if !missing.contains(&entry.command) && !exists(&daemon_directory.join(&entry.command)) {
            missing.push(entry.command.clone());
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    #[test]
    fn system_trust_is_said_when_verification_may_happen() {
        let cf = |text: &str| {
            rostfix_config::MainCf::parse(text, std::path::Path::new("/etc/rostfix/main.cf"))
                .unwrap()
        };
        assert!(super::system_trust_notice(&cf("smtp_tls_security_level = may\n")).is_none());
        assert!(super::system_trust_notice(&cf("smtp_tls_security_level = secure\n")).is_some());
        assert!(super::system_trust_notice(&cf(
            "smtp_tls_security_level = verify\nsmtp_tls_CAfile = /etc/ssl/ca.pem\n"
        ))
        .is_none());
        assert!(super::system_trust_notice(&cf("smtp_tls_policy_maps = hash:/x\n")).is_some());
    }

    use super::*;

    #[test]
    fn missing_programs_once_each() {
        let text = "smtp inet n - y - - smtpd\n\
                    cleanup unix n - y - 0 cleanup\n\
                    relay unix - - y - - smtp\n\
                    smtp unix - - y - - smtp\n\
                    postlog unix-dgram n - n - 1 postlogd\n\
                    dnsblog unix - - y - 0 dnsblog\n\
                    smtpd pass - - y - - smtpdx\n";
        let master = MasterCf::parse(text, Path::new("/etc/rf/master.cf"), 100).unwrap();
        let exists = |p: &Path| p.ends_with("smtpd");
        assert_eq!(
            missing_programs(&master, Path::new("/usr/lib/rf"), &exists),
            ["cleanup", "smtp", "smtpdx"]
        );
    }

    #[test]
    fn postscreen_needs_a_pass_service() {
        let alone = "smtp inet n - y - 1 postscreen\n";
        let master = MasterCf::parse(alone, Path::new("/etc/rf/master.cf"), 100).unwrap();
        let warning = postscreen_without_pass(&master).unwrap();
        assert!(warning.starts_with("/etc/rf/master.cf, line 1: service smtp runs postscreen"));
        let paired = "smtp inet n - y - 1 postscreen\nsmtpd pass - - y - - smtpd\n";
        let master = MasterCf::parse(paired, Path::new("/etc/rf/master.cf"), 100).unwrap();
        assert_eq!(postscreen_without_pass(&master), None);
        let none = "smtp inet n - y - - smtpd\n";
        let master = MasterCf::parse(none, Path::new("/etc/rf/master.cf"), 100).unwrap();
        assert_eq!(postscreen_without_pass(&master), None);
    }

    #[test]
    fn absolute_paths() {
        assert_eq!(absolute("/var/spool"), PathBuf::from("/var/spool"));
        assert!(absolute("spool").is_absolute());
    }
}
