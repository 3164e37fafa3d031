//! rostmap run as a program: -q answers equal to what postmap -q prints for the same
//! tables (expected values written by hand from postmap(1), postalias(1),
//! regexp_table(5), cidr_table(5)), building, -s, -d, -i, rostalias mode, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rostmap");

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rostmap-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // An empty config dir: built-in defaults (default_database_type = hash).
    d
}

fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["-c", dir.to_str().unwrap()]).args(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn q(dir: &Path, table: &str, key: &str) -> (i32, String) {
    let out = run_in(dir, &["-q", key, table], None);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn hash_table_like_postmap() {
    let d = tempdir("hash");
    let f = d.join("virtual");
    std::fs::write(
        &f,
        "# virtual aliases\nAlice@Example.COM\talice\npostmaster@example.com root,\n    admin\n\
         @example.com catchall\nalice@example.com second-ignored\n",
    )
    .unwrap();
    let path = f.to_str().unwrap();
    // Querying before building: the .rdb is missing — an error (exit 2) naming both.
    let out = run_in(&d, &["-q", "x", path], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("virtual.rdb") && err.contains(path), "{err}");

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run_in(&d, &[path], None);
    assert!(out.status.success(), "{out:?}");
    // The index is as private as its source (sasl_passwd must stay unreadable).
    let mode = std::fs::metadata(d.join("virtual.rdb"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    let table = format!("hash:{path}");
    // postmap folds keys when building and when querying; the first duplicate wins.
    assert_eq!(q(&d, &table, "ALICE@example.com"), (0, "alice\n".into()));
    // A continuation line keeps its leading white space after the removed newline.
    assert_eq!(
        q(&d, &table, "postmaster@example.com"),
        (0, "root,    admin\n".into())
    );
    assert_eq!(q(&d, &table, "@example.com"), (0, "catchall\n".into()));
    // postmap -q does no address splitting: bob@example.com is simply not found.
    assert_eq!(q(&d, &table, "bob@example.com"), (1, String::new()));
    assert_eq!(q(&d, path, "@EXAMPLE.COM"), (0, "catchall\n".into()));

    let out = run_in(&d, &["-s", &table], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "@example.com\tcatchall\nalice@example.com\talice\npostmaster@example.com\troot,    admin\n"
    );
    let out = run_in(
        &d,
        &["-q", "-", &table],
        Some("nobody\nalice@example.com\n"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice@example.com\talice\n"
    );
}

#[test]
fn delete_and_incremental() {
    let d = tempdir("edit");
    let f = d.join("t");
    std::fs::write(&f, "a 1\nb 2\n  more\n# keep\nc 3\n").unwrap();
    let table = format!("btree:{}", f.display());
    assert!(run_in(&d, &[&table], None).status.success());
    let out = run_in(&d, &["-d", "B", &table], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "a 1\n# keep\nc 3\n");
    assert_eq!(q(&d, &table, "b"), (1, String::new()));
    assert_eq!(
        run_in(&d, &["-d", "b", &table], None).status.code(),
        Some(1)
    );
    let out = run_in(&d, &["-i", &table], Some("d 4\na ignored\n"));
    assert!(out.status.success());
    assert_eq!(q(&d, &table, "d"), (0, "4\n".into()));
    assert_eq!(q(&d, &table, "a"), (0, "1\n".into()));
}

#[test]
fn regexp_and_pcre_like_postmap() {
    let d = tempdir("regexp");
    let f = d.join("re");
    std::fs::write(
        &f,
        "# header checks style\n/^(.+)\\+(.+)@example\\.com$/ $1 extension ${2}\n\
         if /@example\\.org$/\n!/^postmaster@/ REJECT not here\nendif\n\
         /^Postmaster@/ OK\n/^CaSe$/i sensitive\n",
    )
    .unwrap();
    for kind in ["regexp", "pcre"] {
        let table = format!("{kind}:{}", f.display());
        assert_eq!(
            q(&d, &table, "joe+box@EXAMPLE.com"),
            (0, "joe extension box\n".into())
        );
        assert_eq!(
            q(&d, &table, "bob@example.org"),
            (0, "REJECT not here\n".into())
        );
        assert_eq!(q(&d, &table, "postmaster@example.org"), (0, "OK\n".into()));
        assert_eq!(q(&d, &table, "CaSe"), (0, "sensitive\n".into()));
        assert_eq!(q(&d, &table, "case"), (1, String::new()));
        // Building a regexp table is a no-op that checks its syntax.
        assert!(run_in(&d, &[&table], None).status.success());
    }
    let bad = d.join("bad");
    std::fs::write(&bad, "/ok/ x\n/(/ y\n").unwrap();
    let out = run_in(&d, &["-q", "x", &format!("regexp:{}", bad.display())], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{}, line 2", bad.display())));
}

#[test]
fn cidr_inline_static_texthash() {
    let d = tempdir("misc");
    let c = d.join("cidr");
    std::fs::write(
        &c,
        "192.168.1.0/24 REJECT\n192.168.0.0/16 OK\n2001:db8::/32 DUNNO\n",
    )
    .unwrap();
    let table = format!("cidr:{}", c.display());
    assert_eq!(q(&d, &table, "192.168.1.9"), (0, "REJECT\n".into()));
    assert_eq!(q(&d, &table, "192.168.7.9"), (0, "OK\n".into()));
    assert_eq!(q(&d, &table, "2001:db8::25"), (0, "DUNNO\n".into()));
    assert_eq!(q(&d, &table, "10.0.0.1"), (1, String::new()));
    assert_eq!(
        q(&d, "inline:{ Foo=bar, { baz = two words } }", "FOO"),
        (0, "bar\n".into())
    );
    assert_eq!(
        q(&d, "inline:{ Foo=bar, { baz = two words } }", "baz"),
        (0, "two words\n".into())
    );
    assert_eq!(
        q(&d, "static:{ all the same }", "anything"),
        (0, "all the same\n".into())
    );
    let t = d.join("text");
    std::fs::write(&t, "Key Value\n").unwrap();
    assert_eq!(
        q(&d, &format!("texthash:{}", t.display()), "key"),
        (0, "Value\n".into())
    );
    let (code, out) = q(&d, "unix:passwd.byname", "root");
    assert_eq!(code, 0);
    assert!(out.starts_with("root:") && out.split(':').nth(2) == Some("0"));
}

#[test]
fn alias_mode() {
    let d = tempdir("alias");
    let a = d.join("aliases");
    std::fs::write(
        &a,
        "# aliases\nPostmaster: root\nteam: alice,\n\tbob, |\"/usr/bin/cmd\"\n",
    )
    .unwrap();
    // Invoked as rostalias through a symlink, as newaliases-style installs do.
    let link = d.join("rostalias");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    std::fs::write(
        d.join("main.cf"),
        format!("alias_database = hash:{}\n", a.display()),
    )
    .unwrap();
    let out = Command::new(&link)
        .args(["-c", d.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = format!("hash:{}", a.display());
    assert_eq!(q(&d, &table, "postmaster"), (0, "root\n".into()));
    // Postfix's postalias joins a continuation line with one space (checked against
    // Debian's postalias 3.7): the leading tab does not survive.
    assert_eq!(
        q(&d, &table, "team"),
        (0, "alice, bob, |\"/usr/bin/cmd\"\n".into())
    );
    let out = run_in(&d, &["-a", "-s", &table], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "postmaster: root\nteam: alice, bob, |\"/usr/bin/cmd\"\n"
    );
}

#[test]
fn usage_and_help() {
    let d = tempdir("usage");
    let out = run_in(&d, &["-Z"], None);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(text.contains(section), "{section}");
    }
}
