//! The files Rostfix installs (etc/main.cf, master.cf, aliases) load and hold the default services.

use super::support::manifest_dir;
use crate::{MainCf, MasterCf, ServiceType};

#[test]
fn installed_etc_files_load() {
    let etc = manifest_dir().join("../../etc");
    let config = MainCf::load(&etc).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    let limit = u32::try_from(config.get_int("default_process_limit")).unwrap_or(100);
    let master = MasterCf::load(&etc, limit).unwrap_or_else(|e| panic!("{e}"));
    let want = [
        ("smtp", ServiceType::Inet, "smtpd"),
        ("pickup", ServiceType::Unix, "pickup"),
        ("qmgr", ServiceType::Unix, "qmgr"),
        ("bounce", ServiceType::Unix, "bounce"),
        ("smtp", ServiceType::Unix, "smtp"),
        ("relay", ServiceType::Unix, "smtp"),
        ("local", ServiceType::Unix, "local"),
    ];
    for (name, service_type, command) in want {
        let entry = master
            .find(name, service_type)
            .unwrap_or_else(|| panic!("no {name}/{service_type}"));
        assert_eq!(entry.command, command);
        for (param, value) in entry.overrides() {
            let mut config = config.clone();
            config
                .set_override(&param, &value)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    let pickup = master
        .find("pickup", ServiceType::Unix)
        .map(|e| (e.wakeup.map(|w| w.seconds), e.maxproc));
    assert_eq!(pickup, Some((Some(60), 1)));
    let local = master
        .find("local", ServiceType::Unix)
        .map(|e| (e.unpriv, e.chroot));
    assert_eq!(local, Some((false, false)));
    let aliases =
        std::fs::read_to_string(etc.join("aliases")).unwrap_or_else(|e| panic!("aliases: {e}"));
    assert!(
        aliases
            .lines()
            .any(|l| l.trim_start().starts_with("postmaster:")),
        "aliases lacks postmaster"
    );
}
