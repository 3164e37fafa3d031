//! Edits keep comments and order, replace continuation lines, and go through rename.

use super::support::{error_text, TempDir};
use crate::{comment_out_main_cf, edit_main_cf, edit_master_cf_entry, MainCf, MasterCf};

const MAIN: &str = r"# Rostfix main.cf
biff = no

# where mail goes
mydestination = $myhostname,
    localhost
# after
relayhost =
biff = yes
message_size_limit = 1000
";

fn sets(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn set_replaces_in_place_and_appends() {
    let dir = TempDir::new();
    let path = dir.write("main.cf", MAIN);
    edit_main_cf(
        &path,
        &sets(&[
            ("mydestination", "example.org"),
            ("myhostname", "mx.example.org"),
        ]),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dir.read("main.cf"),
        "# Rostfix main.cf\nbiff = no\n\n# where mail goes\nmydestination = example.org\n# after\nrelayhost =\n\
         biff = yes\nmessage_size_limit = 1000\nmyhostname = mx.example.org\n"
    );
    let config = MainCf::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.get("mydestination"), "example.org");
}

#[test]
fn set_drops_later_duplicates() {
    let dir = TempDir::new();
    let path = dir.write("main.cf", MAIN);
    edit_main_cf(&path, &sets(&[("biff", "no")]), &[]).unwrap_or_else(|e| panic!("{e}"));
    let text = dir.read("main.cf");
    assert_eq!(text.matches("biff").count(), 1, "{text}");
    assert!(text.starts_with("# Rostfix main.cf\nbiff = no\n"), "{text}");
}

#[test]
fn remove_takes_continuations_and_keeps_comments() {
    let dir = TempDir::new();
    let path = dir.write("main.cf", MAIN);
    edit_main_cf(
        &path,
        &[],
        &["mydestination".to_string(), "biff".to_string()],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dir.read("main.cf"),
        "# Rostfix main.cf\n\n# where mail goes\n# after\nrelayhost =\nmessage_size_limit = 1000\n"
    );
}

#[test]
fn comment_out_prefixes_each_line() {
    let dir = TempDir::new();
    let path = dir.write("main.cf", MAIN);
    comment_out_main_cf(&path, &["mydestination".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    let text = dir.read("main.cf");
    assert!(
        text.contains("#mydestination = $myhostname,\n#    localhost\n"),
        "{text}"
    );
    let config = MainCf::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.raw("mydestination"), None);
}

#[test]
fn edit_of_unterminated_last_line_and_missing_file() {
    let dir = TempDir::new();
    let path = dir.write("main.cf", "biff = no");
    edit_main_cf(&path, &sets(&[("relayhost", "[r]")]), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dir.read("main.cf"), "biff = no\nrelayhost = [r]\n");
    let fresh = TempDir::new();
    let path = fresh.path().join("main.cf");
    edit_main_cf(&path, &sets(&[("biff", "no")]), &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fresh.read("main.cf"), "biff = no\n");
    let nothing = TempDir::new();
    assert!(edit_main_cf(&nothing.path().join("main.cf"), &[], &["biff".to_string()]).is_err());
}

#[test]
fn bad_edits_are_refused_without_touching_the_file() {
    let dir = TempDir::new();
    let path = dir.write("main.cf", MAIN);
    let message = error_text(edit_main_cf(&path, &sets(&[("bad name", "x")]), &[]));
    assert!(message.contains("bad parameter name"), "{message}");
    let message = error_text(edit_main_cf(&path, &sets(&[("biff", "a\nb")]), &[]));
    assert!(message.contains("line break"), "{message}");
    assert_eq!(dir.read("main.cf"), MAIN);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert_eq!(leftovers, vec![1]);
}

#[cfg(unix)]
#[test]
fn permissions_survive_the_rename() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let path = dir.write("main.cf", MAIN);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640))
        .unwrap_or_else(|e| panic!("{e}"));
    edit_main_cf(&path, &sets(&[("biff", "no")]), &[]).unwrap_or_else(|e| panic!("{e}"));
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o640);
}

const MASTER: &str = r"# header
smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
# keep me
pickup    unix  n       -       y       60      1       pickup
";

#[test]
fn master_entry_replace_add_remove() {
    let dir = TempDir::new();
    let path = dir.write("master.cf", MASTER);
    edit_master_cf_entry(
        &path,
        "submission",
        "inet",
        Some("submission inet n - y - - smtpd -o smtpd_sasl_auth_enable=yes"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dir.read("master.cf"),
        "# header\nsmtp      inet  n       -       y       -       -       smtpd\n\
         submission inet n - y - - smtpd -o smtpd_sasl_auth_enable=yes\n# keep me\n\
         pickup    unix  n       -       y       60      1       pickup\n"
    );
    edit_master_cf_entry(&path, "qmgr", "unix", Some("qmgr unix n - n 300 1 qmgr"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(dir
        .read("master.cf")
        .ends_with("pickup\nqmgr unix n - n 300 1 qmgr\n"));
    edit_master_cf_entry(&path, "smtp", "inet", None).unwrap_or_else(|e| panic!("{e}"));
    edit_master_cf_entry(&path, "nothing", "unix", None).unwrap_or_else(|e| panic!("{e}"));
    let master = MasterCf::load(dir.path(), 100).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = master.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["submission", "pickup", "qmgr"]);
    assert!(dir.read("master.cf").contains("# keep me\n"));
}

#[test]
fn master_entry_must_parse_and_match() {
    let dir = TempDir::new();
    let path = dir.write("master.cf", MASTER);
    let message = error_text(edit_master_cf_entry(
        &path,
        "smtp",
        "inet",
        Some("smtp inet n - y - -"),
    ));
    assert!(message.contains("bad entry"), "{message}");
    let message = error_text(edit_master_cf_entry(
        &path,
        "smtp",
        "inet",
        Some("smtp unix - - y - - smtp"),
    ));
    assert!(message.contains("not smtp/inet"), "{message}");
    assert_eq!(dir.read("master.cf"), MASTER);
}
