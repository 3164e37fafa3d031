//! Text translation of a Postfix main.cf and master.cf into Rostfix's: paths, names,
//! table types and services Rostfix does not have. Pure functions over text, so the
//! rules are unit-tested against the fixtures; comments and order are kept, and every
//! change or omission becomes a [`Note`] for the import report.

use std::path::Path;

/// One line of the import report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Carried with a change the administrator should know about.
    Translated(String),
    /// Could not be carried (commented out or ignored), with what to do.
    NotCarried(String),
}

/// Where Postfix kept things and where Rostfix keeps them.
#[derive(Debug, Clone)]
pub struct PathMap {
    /// (Postfix prefix, Rostfix prefix), longest first so specific prefixes win.
    pairs: Vec<(String, String)>,
}

impl PathMap {
    /// The Debian layout, with Postfix's configuration directory `source` carried to
    /// `target`, and Postfix's queue directory (from its main.cf) to Rostfix's.
    pub fn new(source: &Path, target: &Path, postfix_queue: &str) -> PathMap {
        let mut pairs = vec![
            (
                source.to_string_lossy().trim_end_matches('/').to_string(),
                target.to_string_lossy().trim_end_matches('/').to_string(),
            ),
            ("/etc/postfix".into(), target.to_string_lossy().into()),
            (
                postfix_queue.trim_end_matches('/').to_string(),
                "/var/spool/rostfix".into(),
            ),
            ("/var/spool/postfix".into(), "/var/spool/rostfix".into()),
            ("/var/lib/postfix".into(), "/var/lib/rostfix".into()),
            ("/usr/lib/postfix/sbin".into(), "/usr/lib/rostfix".into()),
            ("/usr/libexec/postfix".into(), "/usr/lib/rostfix".into()),
        ];
        pairs.retain(|(from, _)| !from.is_empty() && from != "/");
        pairs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        pairs.dedup_by(|a, b| a.0 == b.0);
        PathMap { pairs }
    }

    /// Rewrites every path prefix in `text` that ends at a path boundary, so
    /// `/etc/postfix/virtual` moves but `/etc/postfix-policyd` does not.
    pub fn apply(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for (from, to) in &self.pairs {
                if let Some(after) = rest.strip_prefix(from.as_str()) {
                    let boundary = after
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_alphanumeric() || "-_.".contains(c)));
                    let starts_path = out
                        .chars()
                        .last()
                        .is_none_or(|c| !(c.is_alphanumeric() || "-_./".contains(c)));
                    if boundary && starts_path {
                        out.push_str(to);
                        rest = after;
                        continue 'scan;
                    }
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
        out
    }
}

/// Parameters describing Postfix's installation rather than the site's policy:
/// Rostfix's own defaults are the right values, so the setting is commented out.
const INSTALLATION_PARAMS: &[&str] = &[
    "daemon_directory",
    "command_directory",
    "shlib_directory",
    "meta_directory",
    "manpage_directory",
    "sample_directory",
    "readme_directory",
    "html_directory",
    "sendmail_path",
    "newaliases_path",
    "mailq_path",
];

/// Whether Rostfix reads tables of this type: the maps crate's own list (so a type
/// added there is never reported as unreadable here), plus `proxy:`, which it strips.
fn readable_type(kind: &str) -> bool {
    kind == "proxy" || rostfix_maps::MAP_TYPES.contains(&kind)
}

/// Indexed types Postfix has and Rostfix does not: the same source file is rebuilt
/// as `hash:` (rostmap's .rdb).
const INDEXED_ELSEWHERE: &[&str] = &["lmdb", "cdb", "dbm", "sdbm"];

/// Result of translating one file.
#[derive(Debug, Default)]
pub struct Translated {
    pub text: String,
    pub notes: Vec<Note>,
}

/// Splits config text into logical entries: (first line index, line count). A line
/// starting with white space continues the entry above unless blank or a comment.
fn logical_entries(lines: &[&str]) -> Vec<(usize, usize)> {
    let mut entries: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let continues = line.starts_with([' ', '\t']) && !trimmed.is_empty();
        if continues && !trimmed.starts_with('#') {
            if let Some((_, count)) = current.as_mut() {
                *count += 1;
                continue;
            }
        }
        if let Some(entry) = current.take() {
            entries.push(entry);
        }
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            current = Some((index, 1));
        } else {
            entries.push((index, 1));
        }
    }
    entries.extend(current);
    entries
}

/// Translates a Postfix main.cf.
pub fn main_cf(text: &str, paths: &PathMap) -> Translated {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Translated::default();
    for (start, count) in logical_entries(&lines) {
        let block = &lines[start..start + count];
        let first = block[0].trim_start();
        if first.is_empty() || first.starts_with('#') {
            push_lines(&mut out.text, block);
            continue;
        }
        let joined = block.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        let Some((name, value)) = joined.split_once('=') else {
            out.notes.push(Note::NotCarried(format!(
                "main.cf: \"{joined}\" is not name = value; commented out"
            )));
            comment_out(&mut out.text, block, "not a name = value line");
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        match main_setting(name, value, paths, &mut out.notes) {
            Setting::Keep if paths.apply(value) == value => push_lines(&mut out.text, block),
            Setting::Keep => {
                let new = paths.apply(value);
                out.notes.push(Note::Translated(format!(
                    "main.cf: {name}: {value} -> {new}"
                )));
                out.text.push_str(&format!("{name} = {new}\n"));
            }
            Setting::Replace(new) => {
                out.notes.push(Note::Translated(format!(
                    "main.cf: {name}: {value} -> {new}"
                )));
                out.text.push_str(&format!("{name} = {new}\n"));
            }
            Setting::Drop(reason) => {
                // Never dropped without a line in the report, not only in the file.
                out.notes.push(Note::Translated(format!(
                    "main.cf: {name}: commented out: {reason}"
                )));
                comment_out(&mut out.text, block, &reason)
            }
        }
    }
    out
}

/// What happens to one main.cf setting.
enum Setting {
    /// Kept, with paths translated.
    Keep,
    /// Kept with this new value.
    Replace(String),
    /// Commented out for this reason.
    Drop(String),
}

fn main_setting(name: &str, value: &str, paths: &PathMap, notes: &mut Vec<Note>) -> Setting {
    if INSTALLATION_PARAMS.contains(&name) {
        return Setting::Drop(format!(
            "{name} describes Postfix's installation; Rostfix's default applies"
        ));
    }
    if name.ends_with("_tls_session_cache_database") {
        return Setting::Drop(format!(
            "{name}: Postfix's tlsmgr cache; Rostfix has no tlsmgr (rustls keeps TLS \
             sessions in each process)"
        ));
    }
    match (name, value) {
        ("mail_owner", "postfix") | ("setgid_group", "postdrop") => {
            return Setting::Drop(format!(
                "{name} = {value} is Postfix's account; Rostfix's default applies"
            ));
        }
        ("queue_directory" | "data_directory", _) => {
            let new = paths.apply(value);
            let default = rostfix_config::lookup_param(name).map(|def| def.default);
            if Some(new.as_str()) == default {
                return Setting::Drop(format!("{name}: Rostfix's default ({new}) applies"));
            }
            notes.push(Note::NotCarried(format!(
                "main.cf: {name} = {value} is not Postfix's default; kept as {new}: make sure \
                 Rostfix may own it"
            )));
            return Setting::Replace(new);
        }
        ("syslog_name", _) => return Setting::Replace(value.replace("postfix", "rostfix")),
        _ => {}
    }
    if rostfix_config::lookup_param(name).is_none() {
        notes.push(Note::NotCarried(format!(
            "main.cf: {name} is not a Rostfix parameter: kept, ignored (\"unused parameter\" \
             warning at start)"
        )));
    }
    let (new, table_notes) = table_types(value);
    for note in table_notes {
        notes.push(Note::NotCarried(format!("main.cf: {name}: {note}")));
    }
    if new != value {
        return Setting::Replace(paths.apply(&new));
    }
    Setting::Keep
}

/// Whether `kind:rest` names a table of a type Rostfix cannot read (looking through
/// `proxy:` at the type it wraps).
fn unreadable(kind: &str, rest: &str) -> bool {
    if kind == "proxy" {
        return rest
            .split_once(':')
            .is_some_and(|(inner, name)| unreadable(inner, name));
    }
    !kind.is_empty()
        && kind.chars().all(|c| c.is_ascii_lowercase())
        && (rest.starts_with('/') || rest.starts_with('$'))
        && !readable_type(kind)
}

/// Rewrites table types Rostfix lacks; notes the ones it cannot read at all.
fn table_types(value: &str) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let mut out = String::new();
    for (index, piece) in value.split(',').enumerate() {
        if index > 0 {
            out.push(',');
        }
        let mut words = Vec::new();
        for word in piece.split(' ') {
            let new = match word.split_once(':') {
                Some((kind, rest))
                    if INDEXED_ELSEWHERE.contains(&kind) && rest.starts_with('/') =>
                {
                    notes.push(format!(
                        "{kind}:{rest}: Rostfix has no {kind} tables; rebuilt as hash:{rest}"
                    ));
                    format!("hash:{rest}")
                }
                Some((kind, rest)) if unreadable(kind, rest) => {
                    notes.push(format!(
                        "{word}: Rostfix cannot read {kind} tables yet; the setting is kept \
                         but that table will not be consulted"
                    ));
                    word.to_string()
                }
                _ => word.to_string(),
            };
            words.push(new);
        }
        out.push_str(&words.join(" "));
    }
    (out, notes)
}

/// Why a Postfix service has no Rostfix counterpart (or that it has none yet).
fn missing_service_reason(command: &str) -> &'static str {
    match command {
        "cleanup" => "smtpd and pickup write queue files themselves",
        "trivial-rewrite" => "qmgr resolves addresses itself",
        "tlsmgr" => "rustls keeps TLS session state in each process",
        "postlogd" => "logging goes to maillog_file or syslog directly",
        "error" | "discard" => "qmgr carries out the error:, retry: and discard: transports itself",
        "scache" => "the smtp client keeps its own connection cache",
        _ => "not implemented in this Rostfix version",
    }
}

/// Translates a Postfix master.cf. `available` says whether Rostfix has a daemon of
/// that command name; entries for other commands are commented out.
pub fn master_cf(text: &str, paths: &PathMap, available: &dyn Fn(&str) -> bool) -> Translated {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Translated::default();
    for (start, count) in logical_entries(&lines) {
        let block = &lines[start..start + count];
        let first = block[0].trim_start();
        if first.is_empty() || first.starts_with('#') {
            push_lines(&mut out.text, block);
            continue;
        }
        let fields: Vec<&str> = block[0].split_whitespace().collect();
        let (service, service_type) = (fields[0], fields.get(1).copied().unwrap_or(""));
        let Some(command) = fields.get(7) else {
            out.notes.push(Note::NotCarried(format!(
                "master.cf: {service}/{service_type}: fewer than 8 fields; commented out"
            )));
            comment_out(&mut out.text, block, "fewer than 8 fields");
            continue;
        };
        if let Some(why) = rostfix_config::folded_into_postscreen(command) {
            out.notes.push(Note::NotCarried(format!(
                "master.cf: {service}/{service_type} ({command}): commented out: not needed, \
                 folded into postscreen: {why}"
            )));
            comment_out(
                &mut out.text,
                block,
                &format!("not needed, folded into postscreen: {why}"),
            );
            continue;
        }
        if !available(command) {
            let reason = missing_service_reason(command);
            out.notes.push(Note::NotCarried(format!(
                "master.cf: {service}/{service_type} ({command}): commented out: {reason}"
            )));
            comment_out(
                &mut out.text,
                block,
                &format!("Rostfix has no {command} service: {reason}"),
            );
            continue;
        }
        let mut changed = false;
        let mut block: Vec<String> = block.iter().map(|l| l.to_string()).collect();
        if *command == "proxymap" && fields.get(6).is_some_and(|m| *m != "1") {
            // Rostfix's proxymap serves every client from one process, threaded;
            // with more processes each would have its own pool per table, and
            // rostfix_proxymap_pool_size would no longer bound a database's
            // connections. Postfix's proxymap is single-threaded, hence its `-`.
            block[0] = replace_field(&block[0], 6, "1");
            out.notes.push(Note::Translated(format!(
                "master.cf: {service}/{service_type} (proxymap): maxproc {} -> 1: one \
                 threaded process, so rostfix_proxymap_pool_size bounds each table's \
                 connections",
                fields[6]
            )));
        }
        for line in &block {
            let new = paths
                .apply(line)
                .replace("syslog_name=postfix", "syslog_name=rostfix");
            changed |= new != *line;
            out.text.push_str(&new);
            out.text.push('\n');
        }
        if changed {
            out.notes.push(Note::Translated(format!(
                "master.cf: {service}/{service_type}: paths and syslog_name translated"
            )));
        }
    }
    out
}

/// `line` with its whitespace-separated field `index` (0-based) replaced by `with`,
/// the spacing kept.
fn replace_field(line: &str, index: usize, with: &str) -> String {
    let mut field = 0;
    let mut in_field = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            in_field = false;
        } else if !in_field {
            in_field = true;
            if field == index {
                let end = line[i..]
                    .find(char::is_whitespace)
                    .map_or(line.len(), |e| i + e);
                return format!("{}{with}{}", &line[..i], &line[end..]);
            }
            field += 1;
        }
    }
    line.to_string()
}

fn push_lines(out: &mut String, block: &[&str]) {
    for line in block {
        out.push_str(line);
        out.push('\n');
    }
}

fn comment_out(out: &mut String, block: &[&str], reason: &str) {
    out.push_str(&format!("# rostconf import: {reason}\n"));
    for line in block {
        out.push('#');
        out.push_str(line);
        out.push('\n');
    }
}

/// `type:path` tables with an index to build (hash/btree after translation), found in
/// the values of `text` (a translated main.cf), each with whether it is an alias
/// table (built by rostalias). `$name` references are expanded by `expand`.
pub fn indexed_tables(
    settings: &[(String, String)],
    expand: &dyn Fn(&str) -> String,
) -> Vec<(String, bool)> {
    let mut tables: Vec<(String, bool)> = Vec::new();
    for (name, value) in settings {
        // TLS session caches are not lookup tables (and rustls keeps its own).
        if name.ends_with("_cache_database") {
            continue;
        }
        let alias = name == "alias_maps" || name == "alias_database";
        for word in expand(value).split([' ', ',', '\t']) {
            let word = word.strip_prefix("proxy:").unwrap_or(word);
            let Some((kind, path)) = word.split_once(':') else {
                continue;
            };
            if (kind == "hash" || kind == "btree") && path.starts_with('/') {
                match tables.iter_mut().find(|(spec, _)| spec == word) {
                    Some(found) => found.1 |= alias,
                    None => tables.push((word.to_string(), alias)),
                }
            }
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostfix_config::{MainCf, MasterCf};

    const FIXTURE_MAIN: &str = include_str!("../../../config/testdata/ubuntu-dovecot-main.cf");
    const FIXTURE_MASTER: &str = include_str!("../../../config/testdata/ubuntu-dovecot-master.cf");

    fn paths() -> PathMap {
        PathMap::new(
            Path::new("/etc/postfix"),
            Path::new("/etc/rostfix"),
            "/var/spool/postfix",
        )
    }

    fn rostfix_daemons(command: &str) -> bool {
        ["smtpd", "qmgr", "local", "smtp", "pickup", "bounce"].contains(&command)
    }

    #[test]
    fn paths_move_only_at_boundaries() {
        let map = paths();
        assert_eq!(
            map.apply("hash:/etc/postfix/virtual"),
            "hash:/etc/rostfix/virtual"
        );
        assert_eq!(map.apply("/etc/postfix"), "/etc/rostfix");
        assert_eq!(
            map.apply("/etc/postfix-policyd/x"),
            "/etc/postfix-policyd/x"
        );
        assert_eq!(map.apply("/srv/etc/postfix/x"), "/srv/etc/postfix/x");
        assert_eq!(
            map.apply("a /var/spool/postfix/private/auth, /var/lib/postfix"),
            "a /var/spool/rostfix/private/auth, /var/lib/rostfix"
        );
        let custom = PathMap::new(Path::new("/srv/pf"), Path::new("/tmp/r"), "/srv/q");
        assert_eq!(
            custom.apply("cidr:/srv/pf/x /srv/q/y"),
            "cidr:/tmp/r/x /var/spool/rostfix/y"
        );
    }

    #[test]
    fn fixture_main_cf_translates_and_loads() {
        let result = main_cf(FIXTURE_MAIN, &paths());
        let loaded = MainCf::parse(&result.text, Path::new("main.cf"))
            .unwrap_or_else(|e| panic!("translated main.cf must load: {e}\n{}", result.text));
        // Site policy is carried unchanged.
        assert_eq!(loaded.raw("myhostname"), Some("mail.example.org"));
        assert_eq!(loaded.raw("home_mailbox"), Some("Maildir/"));
        assert_eq!(loaded.raw("smtpd_sasl_type"), Some("dovecot"));
        assert_eq!(loaded.raw("smtpd_sasl_path"), Some("private/auth"));
        assert_eq!(
            loaded.raw("smtpd_tls_cert_file"),
            Some("/etc/letsencrypt/live/example.org/fullchain.pem")
        );
        assert_eq!(loaded.raw("alias_maps"), Some("hash:/etc/aliases"));
        assert_eq!(loaded.raw("recipient_delimiter"), Some("+"));
        // Postfix's installation parameter is commented out, and said so.
        assert_eq!(loaded.raw("readme_directory"), None);
        assert_eq!(loaded.raw("smtpd_tls_session_cache_database"), None);
        assert!(result
            .text
            .contains("#smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache"));
        assert!(result.text.contains("#readme_directory = no"));
        // Comments survive.
        assert!(result.text.contains("# TLS parameters"));
    }

    #[test]
    fn installation_and_identity_settings() {
        let text = "daemon_directory = /usr/lib/postfix/sbin\nmail_owner = postfix\n\
                    setgid_group = postdrop\nqueue_directory = /var/spool/postfix\n\
                    syslog_name = postfix/main\nvirtual_alias_maps = hash:/etc/postfix/virtual,\n\
                    \tlmdb:/etc/postfix/more\nrelay_domains = mysql:/etc/postfix/relay.cf\n\
                    transport_maps = proxy:mongodb:/etc/postfix/t.cf\n\
                    mail_owner_x = 1\n";
        let result = main_cf(text, &paths());
        let loaded = MainCf::parse(&result.text, Path::new("main.cf")).expect("loads");
        for gone in [
            "daemon_directory",
            "mail_owner",
            "setgid_group",
            "queue_directory",
        ] {
            assert_eq!(
                loaded.raw(gone),
                None,
                "{gone} must fall back to Rostfix's default"
            );
        }
        assert_eq!(loaded.raw("syslog_name"), Some("rostfix/main"));
        assert_eq!(
            loaded.raw("virtual_alias_maps"),
            Some("hash:/etc/rostfix/virtual, hash:/etc/rostfix/more")
        );
        assert_eq!(
            loaded.raw("relay_domains"),
            Some("mysql:/etc/rostfix/relay.cf")
        );
        let not_carried: Vec<&String> = result
            .notes
            .iter()
            .filter_map(|n| match n {
                Note::NotCarried(text) => Some(text),
                Note::Translated(_) => None,
            })
            .collect();
        assert!(not_carried.iter().any(|n| n.contains("lmdb")));
        // mysql: is read now; Postfix 3.9's mongodb: is not, also behind proxy:.
        assert!(!not_carried.iter().any(|n| n.contains("mysql")));
        assert!(not_carried.iter().any(|n| n.contains("proxy:mongodb")));
        // Every commented-out setting has its line in the report, not only in the file.
        assert!(result.notes.iter().any(
            |n| matches!(n, Note::Translated(t) if t.contains("daemon_directory: commented out"))
        ));
        assert!(not_carried.iter().any(|n| n.contains("mail_owner_x")));
    }

    #[test]
    fn fixture_master_cf_translates_and_loads() {
        let result = master_cf(FIXTURE_MASTER, &paths(), &rostfix_daemons);
        let master = MasterCf::parse(&result.text, Path::new("master.cf"), 100)
            .unwrap_or_else(|e| panic!("translated master.cf must load: {e}\n{}", result.text));
        let names: Vec<String> = master
            .services
            .iter()
            .map(|s| format!("{}/{}", s.name, s.service_type))
            .collect();
        for kept in [
            "smtp/inet",
            "submission/inet",
            "submissions/inet",
            "qmgr/unix",
            "local/unix",
        ] {
            assert!(names.contains(&kept.to_string()), "{kept} kept: {names:?}");
        }
        for gone in [
            "cleanup/unix",
            "tlsmgr/unix",
            "maildrop/unix",
            "postlog/unix-dgram",
        ] {
            assert!(
                !names.contains(&gone.to_string()),
                "{gone} dropped: {names:?}"
            );
        }
        assert!(result.text.contains("-o syslog_name=rostfix/submission"));
        assert!(!result.text.contains("syslog_name=postfix"));
        // The pipe entry's continuation line is commented out with it.
        assert!(result.text.contains("#  flags=DRhu user=vmail"));
        assert!(result
            .notes
            .iter()
            .any(|n| matches!(n, Note::NotCarried(t) if t.contains("maildrop/unix (pipe)"))));
    }

    #[test]
    fn postscreen_and_its_pass_service_are_kept_and_its_helpers_explained() {
        let text = "\
smtp      inet  n       -       y       -       1       postscreen
smtpd     pass  -       -       y       -       -       smtpd
dnsblog   unix  -       -       y       -       0       dnsblog
tlsproxy  unix  -       -       y       -       0       tlsproxy
";
        let with_postscreen = |c: &str| rostfix_daemons(c) || c == "postscreen";
        let result = master_cf(text, &paths(), &with_postscreen);
        let master = MasterCf::parse(&result.text, Path::new("master.cf"), 100).unwrap();
        let names: Vec<String> = master
            .services
            .iter()
            .map(|s| format!("{}/{} {}", s.name, s.service_type, s.command))
            .collect();
        assert_eq!(names, ["smtp/inet postscreen", "smtpd/pass smtpd"]);
        for helper in ["dnsblog/unix (dnsblog)", "tlsproxy/unix (tlsproxy)"] {
            assert!(
                result.notes.iter().any(|n| matches!(n,
                Note::NotCarried(t) if t.contains(helper) && t.contains("folded into postscreen"))),
                "{helper}: {:?}",
                result.notes
            );
        }
    }

    proptest::proptest! {
        /// Any main.cf / master.cf text (disk input) translates without panicking,
        /// and translating the result again changes nothing: the import can be rerun.
        #[test]
        fn translation_is_total_and_idempotent(
            lines in proptest::collection::vec(
                "[ \t#]?[a-z_]{0,14}( = |=| )?(/etc/postfix|/var/spool/postfix|postfix|lmdb:|hash:|mysql:|[a-z0-9/:$,{}. -]){0,6}",
                0..12,
            )
        ) {
            let text = lines.join("\n");
            let once = main_cf(&text, &paths());
            proptest::prop_assert_eq!(&main_cf(&once.text, &paths()).text, &once.text);
            let once = master_cf(&text, &paths(), &rostfix_daemons);
            let twice = master_cf(&once.text, &paths(), &rostfix_daemons);
            proptest::prop_assert_eq!(&twice.text, &once.text);
        }
    }

    #[test]
    fn proxymap_gets_one_process() {
        let text = "proxymap  unix  -       -       n       -       -       proxymap\n\
                    proxywrite unix -       -       n       -       1       proxymap\n";
        let result = master_cf(text, &paths(), &|c: &str| c == "proxymap");
        assert_eq!(
            result.text,
            "proxymap  unix  -       -       n       -       1       proxymap\n\
             proxywrite unix -       -       n       -       1       proxymap\n"
        );
        assert_eq!(result.notes.len(), 1, "{:?}", result.notes);
        assert_eq!(replace_field("a  b\tc", 1, "xy"), "a  xy\tc");
        assert_eq!(replace_field("a b", 5, "x"), "a b");
    }

    #[test]
    fn tables_to_index() {
        let settings = vec![
            ("alias_maps".to_string(), "hash:/etc/aliases".to_string()),
            (
                "alias_database".to_string(),
                "hash:/etc/aliases".to_string(),
            ),
            (
                "virtual_alias_maps".to_string(),
                "proxy:hash:$config_directory/virtual, regexp:/etc/rostfix/re".to_string(),
            ),
        ];
        let expand = |v: &str| v.replace("$config_directory", "/etc/rostfix");
        assert_eq!(
            indexed_tables(&settings, &expand),
            vec![
                ("hash:/etc/aliases".to_string(), true),
                ("hash:/etc/rostfix/virtual".to_string(), false)
            ]
        );
    }
}
