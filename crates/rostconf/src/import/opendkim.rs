//! OpenDKIM behind Postfix: `rostconf import` finds the OpenDKIM milter in
//! smtpd_milters / non_smtpd_milters by the Socket of opendkim.conf, and either keeps
//! it (the default; the report says native signing can replace it and how) or, with
//! `--native-dkim`, points rostfix_dkim_key_table and rostfix_dkim_signing_table at
//! OpenDKIM's own KeyTable and SigningTable (read in place, crates/dkim) and removes
//! the milter from the lists. The switch is made only when Rostfix's signer loads
//! those tables and keys as they are (file tables, keys mode 0600 owned by root):
//! otherwise the milter stays and the report says why, so an import never leaves a
//! configuration that signs nothing or does not start.

use rostfix_config::{split_list, MainCf, MainCfEdit, MasterCf};
use std::path::{Path, PathBuf};

/// Where Debian's opendkim package keeps its configuration.
pub const DEFAULT_CONF: &str = "/etc/opendkim.conf";

/// The parts of opendkim.conf the import needs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenDkimConf {
    pub path: PathBuf,
    pub socket: Option<String>,
    pub key_table: Option<String>,
    pub signing_table: Option<String>,
    /// `s`, `v` or `sv` (OpenDKIM's default is `sv`).
    pub mode: String,
    /// A single key without tables (Domain/Selector/KeyFile).
    pub key_file: Option<String>,
    pub domain: Option<String>,
    pub selector: Option<String>,
    pub internal_hosts: Option<String>,
    /// MultipleSignatures: a signature per SigningTable match.
    pub multiple_signatures: bool,
    /// key_table and signing_table are tables the import writes for a single-key
    /// OpenDKIM (not OpenDKIM's own files); None: not tried, Some(Err): why not.
    pub made_tables: Option<Result<(), String>>,
}

impl OpenDkimConf {
    /// Reads `path`; None when there is no such file (no OpenDKIM here).
    pub fn read(path: &Path) -> Option<OpenDkimConf> {
        let text = std::fs::read_to_string(path).ok()?;
        Some(OpenDkimConf::parse(path, &text))
    }

    /// opendkim.conf(5): `Name value` per line, `#` comments, names case-insensitive.
    pub fn parse(path: &Path, text: &str) -> OpenDkimConf {
        let mut conf = OpenDkimConf {
            path: path.to_path_buf(),
            mode: "sv".into(),
            ..OpenDkimConf::default()
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((name, value)) = line.split_once(char::is_whitespace) else {
                continue;
            };
            let value = value.trim().to_string();
            match name.to_ascii_lowercase().as_str() {
                "socket" => conf.socket = Some(value),
                "keytable" => conf.key_table = Some(value),
                "signingtable" => conf.signing_table = Some(value),
                "mode" => conf.mode = value,
                "keyfile" => conf.key_file = Some(value),
                "domain" => conf.domain = Some(value),
                "selector" => conf.selector = Some(value),
                "internalhosts" => conf.internal_hosts = Some(value),
                "multiplesignatures" => {
                    // opendkim.conf(5) booleans: yes/true/1 (first letter counts).
                    conf.multiple_signatures =
                        matches!(value.bytes().next(), Some(b'y' | b'Y' | b't' | b'T' | b'1'))
                }
                _ => {}
            }
        }
        conf
    }

    fn signs(&self) -> bool {
        self.mode.contains('s')
    }

    /// For a single-key OpenDKIM (KeyFile, Selector and literal Domain names, no
    /// KeyTable): the KeyTable and SigningTable (refile:) text that signs the same
    /// way, or why it cannot be written (a Domain that is a file or a pattern).
    pub fn single_key_tables(&self) -> Option<Result<(String, String), String>> {
        if self.key_table.is_some() || self.signing_table.is_some() {
            return None;
        }
        let (Some(key), Some(selector), Some(domains)) =
            (&self.key_file, &self.selector, &self.domain)
        else {
            return None;
        };
        let names: Vec<&str> = domains
            .split([',', ' ', '\t'])
            .filter(|d| !d.is_empty())
            .collect();
        let literal = |d: &str| {
            d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        if names.is_empty() || !names.iter().all(|d| literal(d)) {
            return Some(Err(format!(
                "its Domain ({domains}) is not a list of domain names"
            )));
        }
        let (mut kt, mut st) = (String::new(), String::new());
        for d in names {
            let keyname = format!("{selector}._domainkey.{d}");
            kt.push_str(&format!("{keyname} {d}:{selector}:{key}\n"));
            st.push_str(&format!("*@{d} {keyname}\n"));
        }
        Some(Ok((kt, st)))
    }
}

/// Whether the Postfix milter `item` (`inet:host:port`, `unix:path`, or the
/// `{ endpoint, ... }` form) is OpenDKIM's `socket` (`inet:port@host`, `inet:port`,
/// `local:/path`, `unix:/path` or `/path`). Hosts are compared loosely: a loopback
/// name or address on one side matches a loopback or wildcard on the other.
pub fn is_socket(item: &str, socket: &str) -> bool {
    let endpoint = item
        .trim()
        .trim_start_matches('{')
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('}')
        .trim();
    let socket = socket.trim();
    if let Some(rest) = endpoint.strip_prefix("inet:") {
        let Some((host, port)) = rest.rsplit_once(':') else {
            return false;
        };
        let Some(theirs) = socket
            .strip_prefix("inet:")
            .or_else(|| socket.strip_prefix("inet6:"))
        else {
            return false;
        };
        let (their_port, their_host) = theirs.split_once('@').unwrap_or((theirs, ""));
        return their_port == port && hosts_match(host.trim_matches(['[', ']']), their_host);
    }
    let path = endpoint
        .strip_prefix("unix:")
        .or_else(|| endpoint.strip_prefix("local:"));
    let Some(path) = path else {
        return false;
    };
    let their = socket
        .strip_prefix("local:")
        .or_else(|| socket.strip_prefix("unix:"))
        .unwrap_or(socket);
    // Postfix names a socket in its chroot relative to the queue directory
    // (unix:opendkim/opendkim.sock); OpenDKIM names the whole path.
    their == path || (!path.starts_with('/') && their.ends_with(&format!("/{path}")))
}

fn hosts_match(ours: &str, theirs: &str) -> bool {
    let loopback = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "::1");
    let wildcard = |h: &str| matches!(h, "" | "*" | "0.0.0.0" | "::");
    ours.eq_ignore_ascii_case(theirs) || wildcard(theirs) || (loopback(ours) && loopback(theirs))
}

/// What the import does about OpenDKIM: main.cf edits and report lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub edits: Vec<(String, MainCfEdit)>,
    /// IMPORT-REPORT's DKIM section.
    pub report: Vec<String>,
}

/// The milter lists of main.cf that may name OpenDKIM.
const LISTS: [&str; 2] = ["smtpd_milters", "non_smtpd_milters"];

/// master.cf `-o smtpd_milters=` / `-o non_smtpd_milters=` overrides that name
/// OpenDKIM, as report lines: the import does not edit them, and with native signing
/// on, mail through such a service would be signed twice.
fn master_mentions(services: &MasterCf, socket: &str) -> Vec<String> {
    let mut out = Vec::new();
    for service in &services.services {
        for (name, value) in service.overrides() {
            if LISTS.contains(&name.as_str())
                && split_list(&value).iter().any(|i| is_socket(i, socket))
            {
                out.push(format!(
                    "{}, line {}: service {} has -o {name}={value}, which names OpenDKIM",
                    service.file.display(),
                    service.line,
                    service.name
                ));
            }
        }
    }
    out
}

/// Decides what to do; `native` is `--native-dkim`. `load` tries Rostfix's signer on
/// (key table, signing table) and gives the reason it refuses them.
pub fn plan(
    main: &MainCf,
    services: &MasterCf,
    conf: &OpenDkimConf,
    native: bool,
    load: &dyn Fn(&str, &str) -> Result<(), String>,
) -> Plan {
    let Some(socket) = conf.socket.as_deref() else {
        return Plan::default();
    };
    let mut plan = main_cf_plan(main, conf, socket, native, load);
    let overrides = master_mentions(services, socket);
    if overrides.is_empty() {
        return plan;
    }
    let switched = !plan.edits.is_empty();
    for line in overrides {
        plan.report.push(if switched {
            format!("{line}: remove it there, or mail through that service is signed twice.")
        } else {
            format!("{line}: kept.")
        });
    }
    plan
}

fn main_cf_plan(
    main: &MainCf,
    conf: &OpenDkimConf,
    socket: &str,
    native: bool,
    load: &dyn Fn(&str, &str) -> Result<(), String>,
) -> Plan {
    let mut plan = Plan::default();
    // (parameter, its items as written, whether each is OpenDKIM's)
    let mut found: Vec<(&str, Vec<(String, bool)>)> = Vec::new();
    for list in LISTS {
        let Some(raw) = main.raw(list) else { continue };
        let items: Vec<(String, bool)> = split_list(raw)
            .into_iter()
            .map(|i| {
                let hit = is_socket(&i, socket);
                (i, hit)
            })
            .collect();
        if items.iter().any(|(_, hit)| *hit) {
            found.push((list, items));
        }
    }
    if found.is_empty() {
        return plan;
    }
    let names: Vec<&str> = found.iter().map(|(l, _)| *l).collect();
    let milter = found[0]
        .1
        .iter()
        .find(|(_, hit)| *hit)
        .map_or("", |(i, _)| i.as_str())
        .to_string();
    let intro = format!(
        "{milter} in {} is OpenDKIM ({}, Socket {socket})",
        names.join(" and "),
        conf.path.display()
    );
    if !conf.signs() {
        plan.report.push(format!(
            "{intro}: it only verifies (Mode {}); kept as a milter.",
            conf.mode
        ));
        return plan;
    }
    if let Some(Err(why)) = &conf.made_tables {
        plan.report.push(format!(
            "{intro}: kept as a milter. It signs with a single KeyFile and {why}: Rostfix signs \
             natively from a KeyTable and SigningTable (docs/dkim.md)."
        ));
        return plan;
    }
    let (Some(kt), Some(st)) = (conf.key_table.as_deref(), conf.signing_table.as_deref()) else {
        plan.report.push(format!(
            "{intro}: kept as a milter. It signs with a single KeyFile, not a KeyTable and \
             SigningTable: Rostfix can sign natively from tables (docs/dkim.md; `rostfix \
             dkim-keygen` prints the lines for them)."
        ));
        return plan;
    };
    let made = matches!(conf.made_tables, Some(Ok(())));
    let settings = format!("rostfix_dkim_key_table = {kt}, rostfix_dkim_signing_table = {st}");
    if !native && made {
        plan.report.push(format!(
            "{intro}: kept as a milter. Rostfix can sign natively with its KeyFile, no milter \
             needed: `rostconf import --native-dkim` writes a KeyTable and SigningTable for it \
             and sets {settings} (docs/dkim.md)."
        ));
        return plan;
    }
    if !native {
        plan.report.push(format!(
            "{intro}: kept as a milter. Rostfix can sign natively with the same KeyTable and \
             SigningTable, no milter needed: run `rostconf import --native-dkim`, or set \
             {settings} and remove the milter from {} (docs/dkim.md).",
            names.join(" and ")
        ));
        return plan;
    }
    if let Err(why) = load(kt, st) {
        plan.report.push(format!(
            "{intro}: kept as a milter; native signing was asked for but Rostfix cannot use \
             OpenDKIM's tables as they are: {why}"
        ));
        return plan;
    }
    for (list, items) in &found {
        let rest: Vec<&str> = items
            .iter()
            .filter(|(_, hit)| !hit)
            .map(|(i, _)| i.as_str())
            .collect();
        let edit = if rest.is_empty() {
            MainCfEdit::Remove
        } else {
            MainCfEdit::Set(rest.join(", "))
        };
        plan.edits.push((list.to_string(), edit));
    }
    plan.edits.push((
        "rostfix_dkim_key_table".into(),
        MainCfEdit::Set(kt.to_string()),
    ));
    plan.edits.push((
        "rostfix_dkim_signing_table".into(),
        MainCfEdit::Set(st.to_string()),
    ));
    let settings = if conf.multiple_signatures {
        plan.edits.push((
            "rostfix_dkim_multiple_signatures".into(),
            MainCfEdit::Set("yes".into()),
        ));
        format!("{settings}, rostfix_dkim_multiple_signatures = yes (its MultipleSignatures)")
    } else {
        settings
    };
    let whose = if made {
        "tables written by this import for OpenDKIM's KeyFile"
    } else {
        "OpenDKIM's files, read in place"
    };
    plan.report.push(format!(
        "{intro}: replaced by native signing: {settings} ({whose}); the milter was removed \
         from {}. Stop OpenDKIM once Rostfix runs.",
        names.join(" and ")
    ));
    plan.report.push(
        "Rostfix signs mail from mynetworks, SASL-authenticated clients and local \
         submissions (docs/dkim.md)"
            .to_string()
            + &conf
                .internal_hosts
                .as_ref()
                .map(|h| {
                    format!("; OpenDKIM's InternalHosts was {h}: check mynetworks covers them")
                })
                .unwrap_or_default()
            + ".",
    );
    if conf.mode.contains('v') {
        plan.report.push(
            "OpenDKIM also verified incoming mail (Mode includes v): its \
             Authentication-Results header is no longer added."
                .into(),
        );
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> OpenDkimConf {
        OpenDkimConf::parse(Path::new("/etc/opendkim.conf"), text)
    }

    fn main(text: &str) -> MainCf {
        MainCf::parse(text, Path::new("/etc/rostfix/main.cf")).unwrap()
    }

    fn plan(
        m: &MainCf,
        c: &OpenDkimConf,
        native: bool,
        load: &dyn Fn(&str, &str) -> Result<(), String>,
    ) -> Plan {
        super::plan(m, &MasterCf::default(), c, native, load)
    }

    #[test]
    fn a_single_key_gets_tables_that_sign_the_same_way() {
        let c = conf(
            "Socket inet:8891@localhost\nDomain example.com, example.net\n\
                      Selector mail\nKeyFile /etc/dkimkeys/mail.private\n",
        );
        let (kt, st) = c.single_key_tables().unwrap().unwrap();
        assert_eq!(
            kt,
            "mail._domainkey.example.com example.com:mail:/etc/dkimkeys/mail.private\n\
             mail._domainkey.example.net example.net:mail:/etc/dkimkeys/mail.private\n"
        );
        assert_eq!(
            st,
            "*@example.com mail._domainkey.example.com\n*@example.net mail._domainkey.example.net\n"
        );
        assert!(conf(DEBIAN).single_key_tables().is_none());
    }

    #[test]
    fn master_cf_overrides_naming_opendkim_are_reported() {
        let m = main("smtpd_milters = inet:127.0.0.1:8891\n");
        let services = MasterCf::parse(
            "submission inet n - y - - smtpd\n  -o smtpd_milters=inet:localhost:8891\n",
            Path::new("/etc/rostfix/master.cf"),
            100,
        )
        .unwrap();
        let p = super::plan(&m, &services, &conf(DEBIAN), true, &|_, _| Ok(()));
        let last = p.report.last().unwrap();
        assert!(
            last.starts_with("/etc/rostfix/master.cf, line 1: service submission has -o smtpd_milters=inet:localhost:8891")
                && last.ends_with("signed twice."),
            "{last}"
        );
    }

    const DEBIAN: &str = "Syslog yes\nMode sv\nSocket inet:8891@localhost # milter\n\
        KeyTable refile:/etc/opendkim/KeyTable\nSigningTable refile:/etc/opendkim/SigningTable\n\
        InternalHosts /etc/opendkim/TrustedHosts\n";

    #[test]
    fn sockets_match_postfix_milter_names() {
        assert!(is_socket("inet:127.0.0.1:8891", "inet:8891@localhost"));
        assert!(is_socket("inet:localhost:8891", "inet:8891@127.0.0.1"));
        assert!(is_socket("inet:127.0.0.1:8891", "inet:8891"));
        assert!(is_socket(
            "{ inet:127.0.0.1:8891, default_action=accept }",
            "inet:8891@localhost"
        ));
        assert!(!is_socket("inet:127.0.0.1:8892", "inet:8891@localhost"));
        assert!(!is_socket("inet:10.0.0.5:8891", "inet:8891@localhost"));
        assert!(is_socket(
            "unix:opendkim/opendkim.sock",
            "local:/var/spool/postfix/opendkim/opendkim.sock"
        ));
        assert!(is_socket(
            "unix:/run/opendkim/opendkim.sock",
            "/run/opendkim/opendkim.sock"
        ));
        assert!(!is_socket(
            "unix:/run/other.sock",
            "local:/run/opendkim/opendkim.sock"
        ));
    }

    #[test]
    fn default_keeps_the_milter_and_says_how_to_switch() {
        let m = main("smtpd_milters = inet:127.0.0.1:8891\nnon_smtpd_milters = $smtpd_milters\n");
        let p = plan(&m, &conf(DEBIAN), false, &|_, _| Ok(()));
        assert!(p.edits.is_empty());
        assert_eq!(p.report.len(), 1);
        assert!(p.report[0].contains("kept as a milter"), "{:?}", p.report);
        assert!(p.report[0].contains("rostconf import --native-dkim"));
        assert!(p.report[0].contains(
            "rostfix_dkim_key_table = refile:/etc/opendkim/KeyTable, \
             rostfix_dkim_signing_table = refile:/etc/opendkim/SigningTable"
        ));
    }

    #[test]
    fn native_points_at_the_tables_and_removes_only_opendkim() {
        let m = main(
            "smtpd_milters = inet:127.0.0.1:8891, inet:127.0.0.1:11332\n\
             non_smtpd_milters = inet:localhost:8891\n",
        );
        let p = plan(&m, &conf(DEBIAN), true, &|_, _| Ok(()));
        assert_eq!(
            p.edits,
            vec![
                (
                    "smtpd_milters".to_string(),
                    MainCfEdit::Set("inet:127.0.0.1:11332".into())
                ),
                ("non_smtpd_milters".to_string(), MainCfEdit::Remove),
                (
                    "rostfix_dkim_key_table".to_string(),
                    MainCfEdit::Set("refile:/etc/opendkim/KeyTable".into())
                ),
                (
                    "rostfix_dkim_signing_table".to_string(),
                    MainCfEdit::Set("refile:/etc/opendkim/SigningTable".into())
                ),
            ]
        );
        assert!(
            p.report[0].contains("replaced by native signing"),
            "{:?}",
            p.report
        );
        assert!(p.report[1].contains("TrustedHosts"), "{:?}", p.report);
        assert!(p.report[2].contains("no longer added"), "{:?}", p.report);
    }

    #[test]
    fn native_refused_by_the_signer_keeps_the_milter() {
        let m = main("smtpd_milters = inet:127.0.0.1:8891\n");
        let p = plan(&m, &conf(DEBIAN), true, &|_, _| {
            Err("/etc/opendkim/keys/mail.private: owned by uid 110".into())
        });
        assert!(p.edits.is_empty());
        assert!(p.report[0].contains("kept as a milter; native signing was asked for"));
        assert!(p.report[0].contains("owned by uid 110"));
    }

    #[test]
    fn no_milter_no_tables_or_verify_only() {
        let none = main("smtpd_milters = inet:127.0.0.1:11332\n");
        assert_eq!(
            plan(&none, &conf(DEBIAN), true, &|_, _| Ok(())),
            Plan::default()
        );
        let m = main("smtpd_milters = inet:127.0.0.1:8891\n");
        let single = conf("Socket inet:8891@localhost\nKeyFile /etc/dkim.key\nSelector s\n");
        let p = plan(&m, &single, true, &|_, _| Ok(()));
        assert!(p.edits.is_empty() && p.report[0].contains("single KeyFile"));
        let mut pattern =
            conf("Socket inet:8891@localhost\nKeyFile /k\nSelector s\nDomain /etc/d\n");
        pattern.made_tables = pattern.single_key_tables().map(|r| r.map(|_| ()));
        let p = plan(&m, &pattern, true, &|_, _| Ok(()));
        assert!(p.edits.is_empty() && p.report[0].contains("not a list of domain names"));
        let verify = conf(&format!("{DEBIAN}Mode v\n"));
        let p = plan(&m, &verify, true, &|_, _| Ok(()));
        assert!(p.edits.is_empty() && p.report[0].contains("only verifies"));
    }

    #[test]
    fn multiple_signatures_carry_over_to_native_signing() {
        let m = main("smtpd_milters = inet:127.0.0.1:8891\n");
        let text = format!("{DEBIAN}\nMultipleSignatures   Yes\n");
        let p = plan(&m, &conf(&text), true, &|_, _| Ok(()));
        assert!(p.edits.contains(&(
            "rostfix_dkim_multiple_signatures".to_string(),
            MainCfEdit::Set("yes".into())
        )));
        assert!(p.report[0].contains("rostfix_dkim_multiple_signatures = yes"));
        // Without it (OpenDKIM's default): one signature, nothing set.
        let p = plan(&m, &conf(DEBIAN), true, &|_, _| Ok(()));
        assert!(!p
            .edits
            .iter()
            .any(|(n, _)| n == "rostfix_dkim_multiple_signatures"));
    }
}
