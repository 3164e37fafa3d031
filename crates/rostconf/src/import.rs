//! `rostconf import [-n] [SOURCE [TARGET]]`: carries a Postfix configuration
//! (default /etc/postfix) into a Rostfix one (default /etc/rostfix): main.cf and
//! master.cf translated (translate.rs), the files beside them copied and their table
//! indexes rebuilt (files.rs), and a report of what could not be carried, including
//! mail left in Postfix's queue (queue.rs), written to TARGET/IMPORT-REPORT and printed.
//! The Debian package runs it once at installation when /etc/postfix exists.

mod dovecot;
mod files;
mod opendkim;
mod queue;
mod translate;

use rostfix_config::getopt::EX_USAGE;
use rostfix_config::ineffective::{self, Ineffective};
use rostfix_config::{lookup_param, MainCf, MasterCf, Stops};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use translate::{Note, PathMap};

pub const HELP: &str = "\
NAME
    rostconf import - carry a Postfix configuration into Rostfix

SYNOPSIS
    rostconf import [-n] [--native-dkim] [--opendkim-conf FILE] [SOURCE [TARGET]]

DESCRIPTION
    Reads Postfix's configuration directory SOURCE (default /etc/postfix) and writes
    a Rostfix configuration into TARGET (default $MAIL_CONFIG or /etc/rostfix):

    - main.cf: every setting is kept, comments too; paths move (/etc/postfix ->
      TARGET, /var/spool/postfix -> /var/spool/rostfix, /var/lib/postfix ->
      /var/lib/rostfix), syslog_name's postfix becomes rostfix, Postfix's
      installation parameters (daemon_directory, command_directory, sendmail_path,
      readme_directory, ...) and its accounts (mail_owner = postfix, setgid_group =
      postdrop) are commented out so Rostfix's defaults apply, lmdb/cdb/dbm tables
      become hash tables. Parameters Rostfix does not know are kept and reported.
    - master.cf: services whose command Rostfix has (a program in daemon_directory)
      are kept with paths and syslog_name translated; the others (cleanup, tlsmgr,
      trivial-rewrite, pipe, ...) are commented out with the reason.
    - every other file of SOURCE (table sources, sasl/, certificates) is copied with
      its owner and mode; Postfix's indexes (.db, .lmdb) are not: the hash and btree
      tables named in main.cf, and the aliases, are rebuilt with rostmap/rostalias.
    - TARGET/main.cf and master.cf as they were are saved as *.pre-import first.

    Settings Rostfix accepts but does not implement (message_drop_headers,
    soft_bounce = yes, ...) are listed with file, line and parameter, grouped by what
    stops working; so are values with a trailing `# comment`.

    What could not be carried, other programs' files that point into Postfix's queue
    directory, and the messages still in Postfix's queue (with the command that
    re-injects them) are listed in TARGET/IMPORT-REPORT, which is also printed.
    Dovecot's unix_listener blocks for its auth and LMTP sockets in Postfix's queue
    directory get a section of their own with each block as it must become: the path
    in Rostfix's queue directory, user mail_owner and group mail_owner's group
    (Dovecot's files are not edited; restart Dovecot after editing them).

    OpenDKIM: a milter in smtpd_milters or non_smtpd_milters that is the Socket of
    /etc/opendkim.conf is kept, and the report says Rostfix can sign natively with
    the same KeyTable and SigningTable. With --native-dkim, rostfix_dkim_key_table
    and rostfix_dkim_signing_table are set to OpenDKIM's tables (read in place) and
    the milter is removed from the lists, provided Rostfix's signer loads those
    tables and keys as they are (else the milter stays and the report says why).
    For an OpenDKIM with a single KeyFile (Domain, Selector), --native-dkim writes
    TARGET/opendkim-KeyTable and opendkim-SigningTable that sign the same way.

OPTIONS
    -n      dry run: print the report, write nothing.
    --native-dkim
            replace the OpenDKIM milter by native DKIM signing (see above).
    --opendkim-conf FILE
            OpenDKIM's configuration (default /etc/opendkim.conf).
    --help  this text.

EXIT STATUS
    0 imported; 1 a file could not be read, translated or written (nothing is
    written when the translation does not load); 64 usage error.

SEE ALSO
    rostconf(8), rostmap(8), docs/packaging.md
";

/// Why an import stops.
#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the translated {0} does not load, nothing written: {1}")]
    Invalid(&'static str, rostfix_config::ConfigError),
}

/// The command line's choices.
struct Options {
    dry_run: bool,
    /// --native-dkim: replace the OpenDKIM milter by native signing.
    native_dkim: bool,
    opendkim_conf: PathBuf,
}

/// Runs `rostconf import` with the arguments after `import`; returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let mut options = Options {
        dry_run: false,
        native_dkim: false,
        opendkim_conf: PathBuf::from(opendkim::DEFAULT_CONF),
    };
    let mut operands = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" => {
                print!("{HELP}");
                return 0;
            }
            "-n" => options.dry_run = true,
            "--native-dkim" => options.native_dkim = true,
            "--opendkim-conf" => match args.next() {
                Some(file) => options.opendkim_conf = PathBuf::from(file),
                None => return usage("--opendkim-conf needs a file"),
            },
            other if other.starts_with("--opendkim-conf=") => {
                options.opendkim_conf = PathBuf::from(&other["--opendkim-conf=".len()..]);
            }
            other if other.starts_with('-') => return usage(&format!("invalid option {other}")),
            other => operands.push(PathBuf::from(other)),
        }
    }
    if operands.len() > 2 {
        return usage("too many operands");
    }
    let source = operands
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/etc/postfix"));
    let target = operands
        .get(1)
        .cloned()
        .unwrap_or_else(|| rostfix_config::config_dir(None));
    match import(&source, &target, &options) {
        Ok(report) => {
            print!("{report}");
            0
        }
        Err(error) => {
            eprintln!("rostconf: fatal: import: {error}");
            1
        }
    }
}

fn usage(message: &str) -> i32 {
    eprintln!("rostconf: import: {message}");
    eprintln!(
        "usage: rostconf import [-n] [--native-dkim] [--opendkim-conf FILE] [SOURCE [TARGET]]"
    );
    EX_USAGE
}

fn read(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The last `name = value` of a Postfix main.cf, read without Rostfix's value checks.
fn postfix_setting(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter(|line| !line.starts_with([' ', '\t', '#']))
        .filter_map(|line| line.split_once('='))
        .filter(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().to_string())
        .next_back()
}

/// Where Rostfix's daemons are: beside this program in a build tree (which has
/// `master` next to `rostconf`), else daemon_directory's default.
fn daemon_directory() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .filter(|dir| dir.join("master").exists());
    beside.unwrap_or_else(|| {
        PathBuf::from(lookup_param("daemon_directory").map_or("/usr/lib/rostfix", |d| d.default))
    })
}

fn import(source: &Path, target: &Path, options: &Options) -> Result<String, ImportError> {
    let dry_run = options.dry_run;
    let main_text = read(&source.join("main.cf"))?;
    let master_text = read(&source.join("master.cf"))?;
    let postfix_queue = postfix_setting(&main_text, "queue_directory")
        .unwrap_or_else(|| "/var/spool/postfix".into());
    let paths = PathMap::new(source, target, &postfix_queue);
    let daemons = daemon_directory();
    let available = |command: &str| !command.contains('/') && daemons.join(command).is_file();

    let mut main = translate::main_cf(&main_text, &paths);
    let master = translate::master_cf(&master_text, &paths, &available);
    let main_path = target.join("main.cf");
    let mut loaded =
        MainCf::parse(&main.text, &main_path).map_err(|e| ImportError::Invalid("main.cf", e))?;
    let services = MasterCf::parse(&master.text, &target.join("master.cf"), 100)
        .map_err(|e| ImportError::Invalid("master.cf", e))?;
    let (dkim, dkim_tables) = opendkim_plan(&loaded, &services, target, options);
    if !dkim.edits.is_empty() {
        main.text = rostfix_config::edit_main_cf_text(&main_path, &main.text, &dkim.edits)
            .map_err(|e| ImportError::Invalid("main.cf", e))?;
        loaded = MainCf::parse(&main.text, &main_path)
            .map_err(|e| ImportError::Invalid("main.cf", e))?;
        if !dry_run {
            // Tables made for a single-key OpenDKIM, now that main.cf names them.
            std::fs::create_dir_all(target).map_err(|source| ImportError::Write {
                path: target.to_path_buf(),
                source,
            })?;
            for (path, text) in &dkim_tables {
                files::write_atomic(path, text, 0o644).map_err(|source| ImportError::Write {
                    path: path.clone(),
                    source,
                })?;
            }
        }
    }

    let mut notes: Vec<Note> = main.notes.into_iter().chain(master.notes).collect();
    let mut carried = vec![format!(
        "main.cf ({} settings), master.cf ({} services)",
        loaded.explicit().len(),
        services.services.len()
    )];
    if dry_run {
        carried.push("(dry run: nothing written)".into());
    } else {
        write_files(
            source,
            target,
            &main.text,
            &master.text,
            &mut carried,
            &mut notes,
        )?;
        let settings: Vec<(String, String)> = loaded
            .explicit()
            .into_iter()
            .map(|setting| (setting.name, setting.raw))
            .collect();
        let expand = |value: &str| {
            loaded
                .expand_text(value)
                .unwrap_or_else(|_| value.to_string())
        };
        for (spec, alias) in translate::indexed_tables(&settings, &expand) {
            match files::rebuild(&spec, alias, target) {
                Ok(()) => carried.push(format!(
                    "table {spec}: index rebuilt with {}",
                    if alias { "rostalias" } else { "rostmap" }
                )),
                Err(why) => notes.push(Note::NotCarried(format!("table {spec}: {why}"))),
            }
        }
    }
    sasl_notes(&loaded, &mut notes);
    let dovecot_dir = Path::new(DOVECOT_DIR);
    let listeners = dovecot::listeners(dovecot_dir, &postfix_queue);
    let dovecot = dovecot::report(&listeners, &postfix_queue, &socket_owner(&loaded));
    // Mentions other than the listeners above still need a look by hand.
    for file in queue::files_mentioning(dovecot_dir, &postfix_queue) {
        if !listeners.iter().any(|l| l.file == file) {
            notes.push(Note::NotCarried(format!(
                "{} refers to {postfix_queue}: point it at Rostfix's queue directory and \
                 restart that program",
                file.display()
            )));
        }
    }
    let mut report = render(source, target, &carried, &notes, &postfix_queue);
    if !dovecot.is_empty() {
        let _ = writeln!(report, "\n{DOVECOT_HEADING}");
        for item in &dovecot {
            let _ = writeln!(report, "  - {item}");
        }
    }
    if !dkim.report.is_empty() {
        let _ = writeln!(report, "\nDKIM signing (OpenDKIM):");
        for item in &dkim.report {
            let _ = writeln!(report, "  - {item}");
        }
    }
    report.push_str(&not_implemented(&loaded, &services));
    if !dry_run {
        let path = target.join("IMPORT-REPORT");
        files::write_atomic(&path, &report, 0o644)
            .map_err(|source| ImportError::Write { path, source })?;
    }
    Ok(report)
}

/// What to do about an OpenDKIM milter (import/opendkim.rs), and the KeyTable and
/// SigningTable to write into `target` for a single-key OpenDKIM when its milter is
/// replaced. The signer is tried on the tables as they would be; made tables are
/// tried from a private temporary directory, since nothing is written yet.
fn opendkim_plan(
    loaded: &MainCf,
    services: &MasterCf,
    target: &Path,
    options: &Options,
) -> (opendkim::Plan, Vec<(PathBuf, String)>) {
    let Some(mut conf) = opendkim::OpenDkimConf::read(&options.opendkim_conf) else {
        return (opendkim::Plan::default(), Vec::new());
    };
    let mut made = Vec::new();
    if let Some(tables) = conf.single_key_tables() {
        conf.made_tables = Some(tables.as_ref().map(|_| ()).map_err(Clone::clone));
        if let Ok((kt, st)) = tables {
            let (kt_path, st_path) = (
                target.join("opendkim-KeyTable"),
                target.join("opendkim-SigningTable"),
            );
            conf.key_table = Some(kt_path.display().to_string());
            conf.signing_table = Some(format!("refile:{}", st_path.display()));
            made = vec![(kt_path, kt), (st_path, st)];
        }
    }
    let load = |kt: &str, st: &str| -> Result<(), String> {
        if made.is_empty() {
            return rostfix_dkim::Signer::load(kt, st)
                .map(|_| ())
                .map_err(|e| e.to_string());
        }
        let dir = std::env::temp_dir().join(format!("rostconf-dkim-{}", std::process::id()));
        let result = (|| {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let (kt_tmp, st_tmp) = (dir.join("KeyTable"), dir.join("SigningTable"));
            std::fs::write(&kt_tmp, &made[0].1).map_err(|e| e.to_string())?;
            std::fs::write(&st_tmp, &made[1].1).map_err(|e| e.to_string())?;
            rostfix_dkim::Signer::load(
                &kt_tmp.display().to_string(),
                &format!("refile:{}", st_tmp.display()),
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        })();
        // Ours, made a moment ago; nothing else is in it.
        let _ = std::fs::remove_dir_all(&dir);
        result
    };
    let plan = opendkim::plan(loaded, services, &conf, options.native_dkim, &load);
    (plan, made)
}

/// Where Dovecot's configuration is looked for.
const DOVECOT_DIR: &str = "/etc/dovecot";

/// The heading of IMPORT-REPORT's Dovecot section; the package's postinst prints the
/// section from this line to the next empty one (docs/packaging.md).
const DOVECOT_HEADING: &str =
    "Dovecot (SMTP AUTH and LMTP delivery fail until this is done, in Dovecot's files):";

/// Rostfix's queue directory, mail_owner and mail_owner's group: what Dovecot's
/// sockets must become. The group is mail_owner's primary group when the account
/// exists (the package creates it before it imports), else a group of the same name.
fn socket_owner(loaded: &MainCf) -> dovecot::Target {
    let user = loaded.get("mail_owner");
    let group = nix::unistd::User::from_name(&user)
        .ok()
        .flatten()
        .and_then(|account| nix::unistd::Group::from_gid(account.gid).ok().flatten())
        .map_or_else(|| user.clone(), |group| group.name);
    dovecot::Target {
        queue_directory: loaded.get("queue_directory"),
        user,
        group,
    }
}

/// Backs up TARGET's main.cf/master.cf, copies SOURCE's other files, writes the
/// translated files.
fn write_files(
    source: &Path,
    target: &Path,
    main: &str,
    master: &str,
    carried: &mut Vec<String>,
    notes: &mut Vec<Note>,
) -> Result<(), ImportError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Write { path, source }
    };
    std::fs::create_dir_all(target).map_err(write_error(target))?;
    for name in ["main.cf", "master.cf"] {
        let (current, backup) = (target.join(name), target.join(format!("{name}.pre-import")));
        if current.exists() && !backup.exists() {
            std::fs::copy(&current, &backup).map_err(write_error(&backup))?;
        }
    }
    match files::copy_tree(source, target) {
        Ok(copied) if !copied.is_empty() => {
            let names: Vec<String> = copied.iter().map(|p| p.display().to_string()).collect();
            carried.push(format!("files (owner and mode kept): {}", names.join(", ")));
        }
        Ok(_) => {}
        Err(error) => notes.push(Note::NotCarried(format!(
            "copying the other files of {}: {error}",
            source.display()
        ))),
    }
    for (name, text) in [("main.cf", main), ("master.cf", master)] {
        let path = target.join(name);
        files::write_atomic(&path, text, 0o644).map_err(write_error(&path))?;
    }
    Ok(())
}

/// IMPORT-REPORT's section of the settings Rostfix accepts but does not implement,
/// grouped by what stops working, each with file, line and parameter; then the values
/// with a trailing `# comment`.
fn not_implemented(loaded: &MainCf, services: &MasterCf) -> String {
    let mut groups: BTreeMap<Stops, Vec<Ineffective>> = BTreeMap::new();
    for found in ineffective::in_main_cf(loaded)
        .into_iter()
        .chain(ineffective::in_master_cf(services, loaded))
    {
        groups.entry(found.entry.stops).or_default().push(found);
    }
    let mut out = String::from(
        "\nAccepted but not implemented by Rostfix (the setting has no effect), by what stops \
         working:\n",
    );
    if groups.is_empty() {
        out.push_str("  (none)\n");
    }
    for (stops, found) in &groups {
        let _ = writeln!(out, "  {stops}:");
        for item in found {
            let service = item
                .service
                .as_deref()
                .map(|name| format!(" (-o of service {name})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    - {}, line {}: {} = {}{service}",
                item.file.display(),
                item.line,
                item.param,
                item.value
            );
        }
    }
    let comments = ineffective::comment_warnings(loaded);
    if !comments.is_empty() {
        out.push_str("\nValues with a trailing comment (kept as part of the value):\n");
        for line in comments {
            let _ = writeln!(out, "  - {line}");
        }
    }
    out
}

/// SASL: Postfix defaults smtpd_sasl_type to cyrus; Rostfix talks to Dovecot only.
fn sasl_notes(loaded: &MainCf, notes: &mut Vec<Note>) {
    let enabled = loaded
        .raw("smtpd_sasl_auth_enable")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let kind = loaded.raw("smtpd_sasl_type").unwrap_or("cyrus");
    if enabled && kind != "dovecot" {
        notes.push(Note::NotCarried(format!(
            "smtpd_sasl_type = {kind}: Rostfix authenticates through Dovecot's auth socket \
             only; configure smtpd_sasl_type = dovecot and smtpd_sasl_path"
        )));
    }
}

fn render(
    source: &Path,
    target: &Path,
    carried: &[String],
    notes: &[Note],
    postfix_queue: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Rostfix: import of the Postfix configuration {} into {}\n",
        source.display(),
        target.display()
    );
    let _ = writeln!(out, "Carried:");
    for line in carried {
        let _ = writeln!(out, "  - {line}");
    }
    let section = |out: &mut String, title: &str, want_translated: bool| {
        let lines: Vec<&String> = notes
            .iter()
            .filter_map(|note| match note {
                Note::Translated(text) if want_translated => Some(text),
                Note::NotCarried(text) if !want_translated => Some(text),
                _ => None,
            })
            .collect();
        let _ = writeln!(out, "\n{title}:");
        if lines.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for line in lines {
            let _ = writeln!(out, "  - {line}");
        }
    };
    section(&mut out, "Translated", true);
    section(&mut out, "Not carried or needing attention", false);
    let pending = queue::pending_messages(Path::new(postfix_queue));
    let _ = writeln!(out, "\nPostfix's queue ({postfix_queue}):");
    if pending.is_empty() {
        let _ = writeln!(out, "  no messages waiting.");
    } else {
        let total: usize = pending.iter().map(|(_, ids)| ids.len()).sum();
        let _ = writeln!(
            out,
            "  {total} message(s) in Postfix's queue format, which Rostfix does not read:"
        );
        for (queue, ids) in &pending {
            let _ = writeln!(out, "    {queue}: {}", ids.join(" "));
        }
        let helper = daemon_directory().join("requeue-postfix");
        let _ = writeln!(
            out,
            "  Re-inject them into Rostfix (uses postcat from Postfix's .deb, then sendmail):\n    \
             {} {postfix_queue}",
            helper.display()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_groups_settings_without_effect() {
        let main = MainCf::parse(
            "message_drop_headers = x-original-to\nsoft_bounce = yes\n\
             relayhost = [mx] # ISP\nbiff = no\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let master = MasterCf::parse(
            "smtp inet n - y - - smtpd\n  -o defer_transports=smtp\n",
            Path::new("/etc/rostfix/master.cf"),
            100,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = not_implemented(&main, &master);
        assert!(
            text.contains(
                "  header processing:\n    - /etc/rostfix/main.cf, line 1: message_drop_headers = \
                 x-original-to\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  routing:\n    - /etc/rostfix/master.cf, line 1: defer_transports = smtp (-o of service smtp/inet)\n"),
            "{text}"
        );
        assert!(
            text.contains("/etc/rostfix/main.cf, line 2: soft_bounce = yes"),
            "{text}"
        );
        // Line 4 sets what Rostfix does anyway (no comsat): nothing to report.
        assert!(!text.contains("main.cf, line 4"), "{text}");
        assert!(
            text.contains("/etc/rostfix/main.cf, line 3: parameter relayhost: "),
            "{text}"
        );
    }

    #[test]
    fn report_says_none_when_everything_has_effect() {
        let main = MainCf::parse(
            "myhostname = mx.example\n",
            Path::new("/etc/rostfix/main.cf"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let text = not_implemented(&main, &MasterCf::default());
        assert!(text.ends_with("working:\n  (none)\n"), "{text}");
    }
}
