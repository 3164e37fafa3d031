//! Tests of the verification cache's rules and file.

use super::*;
use proptest::prelude::*;

const T: Times = Times {
    positive_expire: 1000 * 31,
    positive_refresh: 1000 * 7,
    negative_expire: 1000 * 3,
    negative_refresh: 1200,
    cleanup_every: 500,
    negative_cache: true,
};

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rostfix-verify-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("verify_cache")
}

#[test]
fn an_unknown_address_is_probed_once_per_probe_ttl() {
    let mut c = Cache::in_memory(T, 10_000);
    let a = c.query("u@Example.ORG", 10_000).unwrap();
    assert_eq!(a.status, VerifyStatus::Unknown);
    assert_eq!(a.text, IN_PROGRESS);
    assert!(a.probe);
    // The domain is case-folded: the same entry.
    assert!(!c.query("u@example.org", 10_500).unwrap().probe);
    assert!(
        c.query("u@example.org", 10_000 + PROBE_TTL + 1)
            .unwrap()
            .probe
    );
}

#[test]
fn results_are_answered_until_they_expire_and_refreshed_in_between() {
    let mut c = Cache::in_memory(T, 0);
    c.update("ok@x.example", VerifyStatus::Deliverable, "250 ok", 100)
        .unwrap();
    let a = c.query("ok@x.example", 200).unwrap();
    assert_eq!((a.status, a.probe), (VerifyStatus::Deliverable, false));
    // After the refresh time: still deliverable, and a probe goes out.
    let a = c
        .query("ok@x.example", 100 + T.positive_refresh + 1)
        .unwrap();
    assert_eq!((a.status, a.probe), (VerifyStatus::Deliverable, true));
    // After expiry: unknown again.
    let a = c
        .query("ok@x.example", 100 + T.positive_expire + 1)
        .unwrap();
    assert_eq!(a.status, VerifyStatus::Unknown);

    c.update(
        "bad@x.example",
        VerifyStatus::Undeliverable,
        "550 no such user",
        100,
    )
    .unwrap();
    let a = c.query("bad@x.example", 200).unwrap();
    assert_eq!(a.status, VerifyStatus::Undeliverable);
    assert_eq!(a.text, "550 no such user");
    assert!(!a.probe);
    assert!(
        c.query("bad@x.example", 100 + T.negative_refresh + 1)
            .unwrap()
            .probe
    );
    let a = c
        .query("bad@x.example", 100 + T.negative_expire + 1)
        .unwrap();
    assert_eq!(a.status, VerifyStatus::Unknown);
}

#[test]
fn a_failure_does_not_replace_a_live_positive_answer() {
    let mut c = Cache::in_memory(T, 0);
    c.update("a@x.example", VerifyStatus::Deliverable, "250 ok", 100)
        .unwrap();
    c.update(
        "a@x.example",
        VerifyStatus::Deferred,
        "connect refused",
        200,
    )
    .unwrap();
    assert_eq!(
        c.get("a@x.example").unwrap().status,
        VerifyStatus::Deliverable
    );
    c.update(
        "a@x.example",
        VerifyStatus::Undeliverable,
        "550",
        100 + T.positive_expire + 1,
    )
    .unwrap();
    assert_eq!(
        c.get("a@x.example").unwrap().status,
        VerifyStatus::Undeliverable
    );
}

#[test]
fn without_the_negative_cache_failures_are_forgotten() {
    let mut c = Cache::in_memory(
        Times {
            negative_cache: false,
            ..T
        },
        0,
    );
    c.query("a@x.example", 100).unwrap();
    c.update("a@x.example", VerifyStatus::Undeliverable, "550", 200)
        .unwrap();
    assert!(c.get("a@x.example").is_none());
}

#[test]
fn the_file_keeps_answers_across_a_restart_and_drops_expired_ones() {
    let path = temp_path("restart");
    {
        let (mut c, w) = Cache::open(&path, T, 1000).unwrap();
        assert!(w.is_empty(), "{w:?}");
        c.update(
            "ok@x.example",
            VerifyStatus::Deliverable,
            "250 2.1.5 ok",
            1000,
        )
        .unwrap();
        c.update(
            "bad@x.example",
            VerifyStatus::Undeliverable,
            "550\tno\r\nsuch",
            1000,
        )
        .unwrap();
        c.update("old@x.example", VerifyStatus::Deferred, "421", 10)
            .unwrap();
    }
    let (c, w) = Cache::open(&path, T, 3500).unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        c.get("ok@x.example").unwrap().status,
        VerifyStatus::Deliverable
    );
    let bad = c.get("bad@x.example").unwrap();
    assert_eq!(bad.status, VerifyStatus::Undeliverable);
    assert_eq!(bad.text, "550 no  such");
    assert!(c.get("old@x.example").is_none(), "expired at load");
    // Compacted: header plus one line per live entry.
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_foreign_or_damaged_file_is_replaced_with_warnings() {
    let path = temp_path("foreign");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"\x00\x01btree junk\n").unwrap();
    let (c, w) = Cache::open(&path, T, 1000).unwrap();
    assert_eq!(c.len(), 0);
    assert_eq!(w.len(), 1);
    std::fs::write(
        &path,
        format!("{HEADER}\nnot a line\nok@x\tdeliverable\t900\t0\tfine\n"),
    )
    .unwrap();
    let (c, w) = Cache::open(&path, T, 1000).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(w.len(), 1, "{w:?}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn cache_paths_take_any_table_type() {
    assert_eq!(
        cache_path("btree:/var/lib/rostfix/verify_cache").unwrap(),
        PathBuf::from("/var/lib/rostfix/verify_cache")
    );
    assert!(cache_path("proxy:btree:/x").is_ok());
    assert!(cache_path("/x").is_err());
    assert!(cache_path("lmdb:relative").is_err());
}

proptest! {
    /// Whatever bytes a cache file holds, loading it never panics.
    #[test]
    fn any_line_loads_or_is_rejected(line in "\\PC{0,80}") {
        let _ = parse_line(&line);
    }

    /// An entry written is read back the same.
    #[test]
    fn lines_round_trip(addr in "[a-z0-9.+-]{1,20}@[a-z0-9.-]{1,20}", text in "[ -~]{0,60}", up in 0u64..1u64<<40) {
        let e = Entry { status: VerifyStatus::Deferred, updated: up, probed: 3, text: text.clone() };
        let line = format_line(&addr, Some(&e));
        let (a, back) = parse_line(line.trim_end_matches('\n')).unwrap();
        prop_assert_eq!(a, addr);
        prop_assert_eq!(back, e);
    }
}

#[test]
fn a_table_cache_reads_and_writes_its_table() {
    let path = temp_path("table");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = format!("btree:{}", path.display());
    let open = || rostfix_maps::open_map_for_write(&spec, rostfix_maps::OpenFlags::default());
    let mut c = Cache::with_table(open().unwrap(), T, 10000);
    assert!(c.query("ok@x.example", 10100).unwrap().probe);
    c.update("ok@x.example", VerifyStatus::Deliverable, "250 ok", 10200)
        .unwrap();
    c.update(
        "bad@x.example",
        VerifyStatus::Undeliverable,
        "550 no\tsuch",
        10200,
    )
    .unwrap();
    // Another process (a restarted verify) finds the answers in the table.
    let mut again = Cache::with_table(open().unwrap(), T, 10300);
    let a = again.query("ok@x.example", 10300).unwrap();
    assert_eq!(
        (a.status, a.text.as_str(), a.probe),
        (VerifyStatus::Deliverable, "250 ok", false)
    );
    let b = again.query("bad@x.example", 10300).unwrap();
    assert_eq!(
        (b.status, b.text.as_str()),
        (VerifyStatus::Undeliverable, "550 no such")
    );
    // The table itself holds them, as the proxywrite service would write them.
    let direct = rostfix_maps::open_map(&spec).unwrap();
    assert!(direct
        .lookup("ok@x.example")
        .unwrap()
        .is_some_and(|v| v.starts_with("deliverable\t10200\t")));
    // Without the negative cache a failure removes the entry from the table too.
    let mut no_neg = Cache::with_table(
        open().unwrap(),
        Times {
            negative_cache: false,
            ..T
        },
        10400,
    );
    no_neg
        .update("bad@x.example", VerifyStatus::Undeliverable, "550", 10400)
        .unwrap();
    let reread = rostfix_maps::open_map(&spec).unwrap();
    assert_eq!(reread.lookup("bad@x.example").unwrap(), None);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
