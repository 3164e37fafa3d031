//! Tables opened through `open_map` from real files: hash/btree staleness errors,
//! reload after a change on disk, and errors that name the file and line.

use rostfix_maps::hash::{read_source, SourceSyntax};
use rostfix_maps::rdb::{rdb_path, write_atomic};
use rostfix_maps::{open_map, MapError};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rostfix-maps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

fn build(src: &Path) {
    let entries = read_source(src, SourceSyntax::Postmap).unwrap();
    write_atomic(&rdb_path(src), &entries).unwrap();
}

#[test]
fn hash_needs_fresh_rdb() {
    let d = tempdir("stale");
    let src = d.join("virtual");
    std::fs::write(&src, "Alice@Example.com alice\n").unwrap();
    let err = open_map(&format!("hash:{}", src.display())).err().unwrap();
    assert!(matches!(
        err,
        MapError::Stale {
            state: "missing for",
            ..
        }
    ));
    let text = err.to_string();
    assert!(text.contains("virtual.rdb") && text.contains(&src.display().to_string()));

    build(&src);
    let m = open_map(&format!("btree:{}", src.display())).unwrap();
    assert_eq!(
        m.lookup("ALICE@example.COM").unwrap().as_deref(),
        Some("alice")
    );

    // Older than its source: used (with Postfix's warning), not refused.
    let old = SystemTime::now() - Duration::from_secs(100);
    set_mtime(&rdb_path(&src), old);
    let m = open_map(&format!("hash:{}", src.display())).unwrap();
    assert_eq!(
        m.lookup("alice@example.com").unwrap().as_deref(),
        Some("alice")
    );
}

#[test]
fn tables_reload_after_change() {
    let d = tempdir("reload");
    let hash_src = d.join("h");
    let re_src = d.join("r");
    std::fs::write(&hash_src, "key one\n").unwrap();
    std::fs::write(&re_src, "/^k/ one\n").unwrap();
    build(&hash_src);
    let h = open_map(&format!("hash:{}", hash_src.display())).unwrap();
    let t = open_map(&format!("texthash:{}", hash_src.display())).unwrap();
    let r = open_map(&format!("regexp:{}", re_src.display())).unwrap();
    assert_eq!(h.lookup("key").unwrap().as_deref(), Some("one"));
    assert_eq!(t.lookup("key").unwrap().as_deref(), Some("one"));
    assert_eq!(r.lookup("key").unwrap().as_deref(), Some("one"));

    std::fs::write(&hash_src, "key two\n").unwrap();
    build(&hash_src);
    std::fs::write(&re_src, "/^k/ two\n").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(h.lookup("key").unwrap().as_deref(), Some("two"));
    assert_eq!(t.lookup("key").unwrap().as_deref(), Some("two"));
    assert_eq!(r.lookup("key").unwrap().as_deref(), Some("two"));

    // A broken edit is a lookup error (temporary failure), not a silent fall-through.
    std::fs::write(&re_src, "/(broken/ x\n").unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(matches!(
        r.lookup("key"),
        Err(MapError::Syntax { line: 1, .. })
    ));
}

#[test]
fn open_errors() {
    let d = tempdir("errors");
    let missing = d.join("missing");
    let err = open_map(&format!("texthash:{}", missing.display()))
        .err()
        .unwrap();
    assert!(matches!(err, MapError::Io { .. }));
    assert!(err.to_string().contains("missing"));
    let bad = d.join("bad");
    std::fs::write(&bad, "# ok\n/a/ b\n\n/[z-a]/ c\n").unwrap();
    let err = open_map(&format!("pcre:{}", bad.display())).err().unwrap();
    assert!(
        err.to_string()
            .starts_with(&format!("{}, line 4:", bad.display())),
        "{err}"
    );
    assert!(matches!(
        open_map("nosuch:x"),
        Err(MapError::UnknownType(_))
    ));
    assert!(matches!(open_map("noname"), Err(MapError::BadSpec { .. })));
    assert!(open_map("proxy:unix:passwd.byname").is_ok());
    let c = d.join("c");
    std::fs::write(&c, "10.0.0.0/8 ten\n").unwrap();
    let m = open_map(&format!("cidr:{}", c.display())).unwrap();
    assert_eq!(m.lookup("10.2.3.4").unwrap().as_deref(), Some("ten"));
}
