//! Reading main.cf into what the agents need ([`Settings`], [`LocalConf`],
//! [`VirtualConf`]), done once at start, as root, before any delivery: the tables are
//! opened here (the agents read tables before they switch to a recipient's identity).

use crate::deliver::{system_user, Settings};
use crate::expand::{AliasTable, LocalConf};
use crate::privileges::Identity;
use crate::virtual_mailbox::VirtualConf;
use nix::unistd::{Gid, Uid};
use rostfix_config::MainCf;
use rostfix_maps::surrogate::Surrogate;
use rostfix_maps::{open_map_with, split_spec, Map, OpenFlags};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Per mailbox lock (dotlock, then fcntl): how long to wait before deferring.
pub const LOCK_WAIT: Duration = Duration::from_secs(20);

/// The mailbox settings of local.
pub fn settings(cfg: &MainCf) -> Settings {
    Settings {
        hostname: cfg.get("myhostname"),
        home_mailbox: cfg.get("home_mailbox"),
        mail_spool_directory: cfg.get("mail_spool_directory"),
        recipient_delimiter: cfg.get("recipient_delimiter"),
        mailbox_size_limit: u64::try_from(cfg.get_int("mailbox_size_limit")).unwrap_or(0),
        lock_wait: LOCK_WAIT,
        extension_folders: cfg.get_bool("rostfix_maildir_extension_folders"),
    }
}

/// The file whose owner decides the privileges of an alias table's commands and files:
/// FILE.rdb for hash/btree, the file itself for the text types; None for the rest.
pub fn table_file(spec: &str) -> Option<PathBuf> {
    let (kind, name) = split_spec(spec).ok()?;
    match kind {
        "proxy" => table_file(name),
        "hash" | "btree" => Some(PathBuf::from(format!("{name}.rdb"))),
        "texthash" | "regexp" | "pcre" | "cidr" => Some(PathBuf::from(name)),
        _ => None,
    }
}

fn owner_of(spec: &str) -> Option<Identity> {
    let meta = std::fs::metadata(table_file(spec)?).ok()?;
    (meta.uid() != 0).then(|| Identity {
        uid: Uid::from_raw(meta.uid()),
        gid: Gid::from_raw(meta.gid()),
    })
}

/// A list of tables: split at commas and white space outside `{...}`, so that
/// `inline:{ a=b, c=d }` stays one table (the config crate's list splitter).
pub fn table_list(value: &str) -> Vec<String> {
    rostfix_config::split_list(value)
}

/// Lowercased domain without trailing dot.
fn norm(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The expansion settings of local, with alias_maps opened.
pub fn local_conf(cfg: &MainCf) -> LocalConf {
    let mut local_domains = vec![norm(&cfg.get("myhostname"))];
    for d in cfg.get_list("mydestination") {
        // Table lookups in mydestination are not supported by the resolver yet either.
        if !d.starts_with('/') && !d.contains(':') && !local_domains.contains(&norm(&d)) {
            local_domains.push(norm(&d));
        }
    }
    let mut aliases = Vec::new();
    let mut alias_errors = Vec::new();
    for spec in table_list(&cfg.get("alias_maps")) {
        // Paranoid: an alias value can be a command or a file, so a regexp alias may
        // not copy any of the (client-chosen) address into it.
        match open_map_with(&spec, OpenFlags::PARANOID) {
            Ok(map) => aliases.push(AliasTable {
                owner: owner_of(&spec),
                map,
            }),
            Err(e) => {
                log::warn!("alias_maps: cannot open {spec}: {e}");
                alias_errors.push(format!("{spec}: {e}"));
            }
        }
    }
    let lower = |name: &str| -> Vec<String> {
        cfg.get_list(name)
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let default_privs = match system_user(&cfg.get("default_privs")) {
        Ok(Some(u)) if !u.uid.is_root() => Some(u),
        Ok(Some(_)) => {
            log::warn!(
                "default_privs must not be root: commands and files of aliases and of \
                 mail for root are deferred"
            );
            None
        }
        _ => {
            log::warn!("default_privs: unknown user {}", cfg.get("default_privs"));
            None
        }
    };
    // forward_path and luser_relay name per-recipient attributes ($home, $user):
    // they are expanded per delivery, so the raw text is kept here.
    let raw = |name: &str| -> String {
        cfg.raw(name)
            .map(str::to_string)
            .or_else(|| cfg.default_raw(name))
            .unwrap_or_default()
    };
    LocalConf {
        local_domains,
        myorigin: cfg.get("myorigin"),
        aliases,
        alias_errors,
        allow_commands: lower("allow_mail_to_commands"),
        allow_files: lower("allow_mail_to_files"),
        forward_path: raw("forward_path")
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        mailbox_command: cfg.get("mailbox_command"),
        command_time_limit: cfg.get_time("command_time_limit"),
        command_execution_directory: raw("command_execution_directory"),
        command_expansion_filter: cfg.get("command_expansion_filter"),
        execution_directory_expansion_filter: cfg.get("execution_directory_expansion_filter"),
        local_command_shell: cfg.get("local_command_shell"),
        export_environment: cfg.get_list("export_environment"),
        luser_relay: raw("luser_relay"),
        mailbox_transport_maps: open_list(cfg, "mailbox_transport_maps"),
        mailbox_transport: cfg.get("mailbox_transport"),
        fallback_transport_maps: open_list(cfg, "fallback_transport_maps"),
        fallback_transport: cfg.get("fallback_transport"),
        expansion_size_limit: usize::try_from(cfg.get_int("expansion_size_limit")).unwrap_or(1000),
        default_privs,
        params: ["myhostname", "mydomain", "myorigin"]
            .iter()
            .map(|n| (n.to_string(), cfg.get(n)))
            .collect(),
    }
}

fn open_list(cfg: &MainCf, name: &str) -> Vec<Box<dyn Map>> {
    table_list(&cfg.get(name))
        .into_iter()
        // Paranoid: the results name mailbox paths and the ids deliveries run as.
        .map(|spec| match open_map_with(&spec, OpenFlags::PARANOID) {
            Ok(m) => m,
            Err(e) => {
                // A table that cannot be opened (unreadable SQL configuration, missing
                // file) answers every lookup with an error, so mail is deferred until
                // it is fixed; skipping it bounced every recipient as unknown.
                log::warn!("{name}: cannot open {spec}: {e}");
                Box::new(Surrogate::new(&spec, &e)) as Box<dyn Map>
            }
        })
        .collect()
}

/// The settings of the virtual agent, with its tables opened.
pub fn virtual_conf(cfg: &MainCf) -> VirtualConf {
    let locks = cfg.get_list("virtual_mailbox_lock");
    VirtualConf {
        hostname: cfg.get("myhostname"),
        base: Path::new(&cfg.get("virtual_mailbox_base")).to_path_buf(),
        mailbox_maps: open_list(cfg, "virtual_mailbox_maps"),
        uid_maps: open_list(cfg, "virtual_uid_maps"),
        gid_maps: open_list(cfg, "virtual_gid_maps"),
        minimum_uid: u32::try_from(cfg.get_int("virtual_minimum_uid")).unwrap_or(100),
        dotlock: locks.iter().any(|l| l == "dotlock"),
        limit: u64::try_from(cfg.get_int("virtual_mailbox_limit")).unwrap_or(0),
        recipient_delimiter: cfg.get("recipient_delimiter"),
        lock_wait: LOCK_WAIT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_keep_braces() {
        assert_eq!(
            table_list("hash:/etc/aliases, inline:{ a=b, c=d }  static:{ x y }"),
            vec!["hash:/etc/aliases", "inline:{ a=b, c=d }", "static:{ x y }"]
        );
    }

    #[test]
    fn table_files() {
        assert_eq!(
            table_file("hash:/etc/aliases"),
            Some("/etc/aliases.rdb".into())
        );
        assert_eq!(table_file("proxy:btree:/x"), Some("/x.rdb".into()));
        assert_eq!(
            table_file("texthash:/etc/aliases"),
            Some("/etc/aliases".into())
        );
        assert_eq!(table_file("inline:{a=b}"), None);
    }

    #[test]
    fn local_conf_from_main_cf() {
        let cfg = MainCf::parse(
            "myhostname = mx.example.org\nmydestination = $myhostname, Example.ORG., hash:/x\nalias_maps = inline:{ postmaster=root }\nforward_path = $home/.forward\n",
            Path::new("/dev/null"),
        )
        .unwrap();
        let c = local_conf(&cfg);
        assert_eq!(c.local_domains, vec!["mx.example.org", "example.org"]);
        assert_eq!(c.aliases.len(), 1);
        assert_eq!(c.forward_path, vec!["$home/.forward"]);
        assert_eq!(c.allow_commands, vec!["alias", "forward"]);
        assert_eq!(c.expansion_size_limit, 1000);
    }

    #[test]
    fn alias_and_virtual_tables_refuse_regexp_substitution() {
        let t = crate::testdir::TestDir::new("setup-paranoid");
        let re = t.path().join("t.re");
        std::fs::write(
            &re,
            "/^(.*)-archive@?.*$/ |/bin/echo $1\n/^u@v\\.test$/ v/u/\n",
        )
        .unwrap();
        let cfg = MainCf::parse(
            &format!(
                "alias_maps = regexp:{0}\nvirtual_mailbox_maps = pcre:{0}\n\
                 virtual_uid_maps = regexp:{0}\nvirtual_gid_maps = regexp:{0}\n",
                re.display()
            ),
            Path::new("/dev/null"),
        )
        .unwrap();
        let local = local_conf(&cfg);
        let err = local.aliases[0].map.lookup("`id`-archive").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("line 1: regular expression substitution is not allowed"),
            "{err}"
        );
        let virt = virtual_conf(&cfg);
        for maps in [&virt.mailbox_maps, &virt.uid_maps, &virt.gid_maps] {
            assert!(maps[0].lookup("x-archive@v.test").is_err());
            assert_eq!(maps[0].lookup("u@v.test").unwrap().as_deref(), Some("v/u/"));
        }
    }
}
