//! Tests of the queue file format end to end: writer -> file -> parser, marking done,
//! every corruption the parser must report, commit/abort visibility, and property tests
//! that the parser never panics and that any valid envelope round-trips.

use crate::parse::{self, Depth, ParseError};
use crate::record::*;
use crate::tempdir::TempRoot;
use crate::writer::encode_envelope;
use crate::*;
use proptest::prelude::*;
use std::io::Cursor;

fn rcpt(addr: &str) -> Recipient {
    Recipient {
        address: addr.into(),
        orig_address: addr.into(),
        notify: String::new(),
        done: false,
        offset: 0,
    }
}

fn sample_env() -> Envelope {
    Envelope {
        sender: "alice@example.org".into(),
        arrival_us: 1_700_000_123_456_789,
        attrs: vec![
            ("client_name".into(), "localhost".into()),
            ("client_address".into(), "127.0.0.1".into()),
            ("helo".into(), "a=b".into()),
        ],
        recipients: vec![
            rcpt("bob@example.org"),
            Recipient {
                address: "carol@example.org".into(),
                orig_address: "Carol@Example.ORG".into(),
                notify: "SUCCESS,FAILURE".into(),
                done: false,
                offset: 0,
            },
        ],
    }
}

/// Writes and commits a message; returns its id.
fn write_msg(root: &std::path::Path, queue: QueueName, env: &Envelope, content: &[u8]) -> String {
    let mut w = QueueWriter::create(root, queue, env).unwrap();
    w.write_content(content).unwrap();
    assert_eq!(w.content_len(), content.len() as u64);
    w.commit().unwrap()
}

/// Envelope fields as written (offsets are filled in on read).
fn strip_offsets(env: &Envelope) -> Envelope {
    let mut env = env.clone();
    for r in &mut env.recipients {
        r.offset = 0;
    }
    env
}

fn parse_bytes(bytes: &[u8]) -> Result<parse::Parsed, String> {
    match parse::parse(Cursor::new(bytes), bytes.len() as u64, Depth::Full) {
        Ok(p) => Ok(p),
        Err(ParseError::Corrupt(r)) => Err(r),
        Err(ParseError::Io(e)) => panic!("unexpected i/o error {e}"),
    }
}

/// A valid file: the envelope, the given content records, `E`.
fn file_bytes(env: &Envelope, content: &[&[u8]]) -> Vec<u8> {
    let mut out = encode_envelope(env).unwrap();
    for c in content {
        encode_record(REC_CONTENT, c, &mut out);
    }
    encode_record(REC_END, b"", &mut out);
    out
}

#[test]
fn round_trip_envelope_attrs_and_big_content() {
    let t = TempRoot::new();
    let env = sample_env();
    let content: Vec<u8> = (0..200_000u32)
        .map(|i| b"abcdefghij\n"[(i % 11) as usize])
        .collect();
    let mut w = QueueWriter::create(t.path(), QueueName::Incoming, &env).unwrap();
    let id = w.queue_id().to_string();
    assert!(is_valid_queue_id(&id));
    // Odd-sized writes must still come back byte for byte.
    for piece in content.chunks(7_777) {
        w.write_content(piece).unwrap();
    }
    assert_eq!(w.commit().unwrap(), id);

    let qf = QueueFile::open(t.path(), QueueName::Incoming, &id).unwrap();
    assert_eq!(qf.id, id);
    assert_eq!(qf.queue, QueueName::Incoming);
    assert_eq!(strip_offsets(&qf.envelope), env);
    assert_eq!(qf.envelope.attr("helo"), Some("a=b"));
    assert_eq!(qf.envelope.attr("nope"), None);
    assert_eq!(qf.content_len, content.len() as u64);
    assert_eq!(qf.read_content().unwrap(), content);
    assert_eq!(qf.pending().count(), 2);
}

#[test]
fn content_is_cut_into_64k_records() {
    let t = TempRoot::new();
    let content = vec![b'x'; MAX_CONTENT_RECORD * 2 + 1];
    let id = write_msg(t.path(), QueueName::Incoming, &sample_env(), &content);
    let bytes = std::fs::read(t.path().join("incoming").join(&id)).unwrap();
    let header = encode_envelope(&sample_env()).unwrap();
    let mut expect = header.clone();
    encode_record(REC_CONTENT, &content[..MAX_CONTENT_RECORD], &mut expect);
    encode_record(
        REC_CONTENT,
        &content[MAX_CONTENT_RECORD..2 * MAX_CONTENT_RECORD],
        &mut expect,
    );
    encode_record(REC_CONTENT, &content[2 * MAX_CONTENT_RECORD..], &mut expect);
    encode_record(REC_END, b"", &mut expect);
    assert_eq!(bytes, expect);
}

#[test]
fn empty_content_and_null_sender() {
    let t = TempRoot::new();
    let env = Envelope {
        sender: String::new(),
        arrival_us: 0,
        attrs: vec![],
        recipients: vec![rcpt("x@y")],
    };
    let id = write_msg(t.path(), QueueName::Incoming, &env, b"");
    let qf = QueueFile::open(t.path(), QueueName::Incoming, &id).unwrap();
    assert_eq!(qf.envelope.sender, "");
    assert_eq!(qf.content_len, 0);
    assert!(qf.read_content().unwrap().is_empty());
    // Exact bytes: V T S R M E and no N record at all.
    let bytes = std::fs::read(&qf.path).unwrap();
    assert_eq!(bytes, file_bytes(&env, &[]));
}

#[test]
fn final_mode_is_applied_before_the_file_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempRoot::new();
    let mut w = QueueWriter::create(t.path(), QueueName::Maildrop, &sample_env()).unwrap();
    w.set_final_mode(0o444);
    w.write_content(b"x\n").unwrap();
    let id = w.commit().unwrap();
    let meta = std::fs::metadata(t.path().join("maildrop").join(&id)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o444);
}

#[test]
fn file_is_private_and_open_path_works_on_any_name() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempRoot::new();
    let id = write_msg(t.path(), QueueName::Maildrop, &sample_env(), b"hi\n");
    let path = t.path().join("maildrop").join(&id);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let other = t.path().join("maildrop").join("some-name");
    std::fs::rename(&path, &other).unwrap();
    let qf = QueueFile::open_path(&other, QueueName::Maildrop).unwrap();
    assert_eq!(qf.id, "some-name");
    assert_eq!(qf.read_content().unwrap(), b"hi\n");
}

#[test]
fn mark_done_survives_reopen_and_keeps_offsets() {
    let t = TempRoot::new();
    let id = write_msg(t.path(), QueueName::Active, &sample_env(), b"body\n");
    let qf = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
    let offsets: Vec<u64> = qf.envelope.recipients.iter().map(|r| r.offset).collect();
    let bytes = std::fs::read(&qf.path).unwrap();
    for &o in &offsets {
        assert_eq!(bytes[o as usize], REC_RCPT);
    }

    QueueFile::mark_done(&qf.path, offsets[1]).unwrap();
    QueueFile::mark_done(&qf.path, offsets[1]).unwrap(); // idempotent
    let again = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
    assert!(!again.envelope.recipients[0].done);
    assert!(again.envelope.recipients[1].done);
    let now: Vec<u64> = again.envelope.recipients.iter().map(|r| r.offset).collect();
    assert_eq!(now, offsets);
    let pending: Vec<&str> = again.pending().map(|r| r.address.as_str()).collect();
    assert_eq!(pending, ["bob@example.org"]);
    assert_eq!(again.read_content().unwrap(), b"body\n");
    // The unsynced mark (discard) writes the same byte, with the same checks.
    QueueFile::mark_done_unsynced(&qf.path, offsets[0]).unwrap();
    let last = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
    assert_eq!(last.pending().count(), 0);
    assert!(QueueFile::mark_done_unsynced(&qf.path, offsets[0] + 1).is_err());
}

#[test]
fn mark_done_many_marks_all_or_none() {
    let t = TempRoot::new();
    let id = write_msg(t.path(), QueueName::Active, &sample_env(), b"body\n");
    let qf = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
    let offsets: Vec<u64> = qf.envelope.recipients.iter().map(|r| r.offset).collect();
    // One bad offset in the list: refused before any byte is written.
    assert!(QueueFile::mark_done_many(&qf.path, &[offsets[0], offsets[1] + 1]).is_err());
    let same = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
    assert_eq!(same.pending().count(), 2);
    QueueFile::mark_done_many(&qf.path, &offsets).unwrap();
    QueueFile::mark_done_many(&qf.path, &offsets).unwrap(); // idempotent
    QueueFile::mark_done_many(&qf.path, &[]).unwrap();
    let done = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
    assert_eq!(done.pending().count(), 0);
    assert_eq!(done.read_content().unwrap(), b"body\n");
}

#[test]
fn slices_cover_every_pending_recipient_once_in_file_order() {
    let t = TempRoot::new();
    let mut env = sample_env();
    env.recipients = (0..10)
        .map(|i| rcpt(&format!("u{i}@example.net")))
        .collect();
    let id = write_msg(t.path(), QueueName::Active, &env, b"body\n");
    let all = QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
    let offsets: Vec<u64> = all.envelope.recipients.iter().map(|r| r.offset).collect();
    // Done ones are skipped and not counted: u1 (first slice), u4 (a boundary).
    QueueFile::mark_done_many(&all.path, &[offsets[1], offsets[4]]).unwrap();

    let mut seen = Vec::new();
    let mut from = Some(0);
    let mut slices = 0;
    while let Some(start) = from {
        let (qf, next) = QueueFile::open_slice(t.path(), QueueName::Active, &id, start, 3).unwrap();
        assert!(qf.envelope.recipients.len() <= 3);
        assert!(qf
            .envelope
            .recipients
            .iter()
            .all(|r| !r.done && r.offset >= start));
        assert_eq!(
            qf.envelope.sender, env.sender,
            "the envelope head is read too"
        );
        seen.extend(qf.envelope.recipients.iter().map(|r| r.address.clone()));
        if let Some(n) = next {
            assert!(qf.envelope.recipients.iter().all(|r| r.offset < n));
        }
        from = next;
        slices += 1;
    }
    let want: Vec<String> = [0, 2, 3, 5, 6, 7, 8, 9]
        .iter()
        .map(|i| format!("u{i}@example.net"))
        .collect();
    assert_eq!(seen, want);
    assert_eq!(slices, 3, "8 pending recipients in slices of 3");

    // A slice exactly as large as what is left says there is nothing after it.
    let (qf, next) =
        QueueFile::open_slice(t.path(), QueueName::Active, &id, offsets[7], 3).unwrap();
    assert_eq!(qf.envelope.recipients.len(), 3);
    assert_eq!(next, None);
    // Nothing pending from there on: an empty slice, no next one.
    QueueFile::mark_done_many(&all.path, &offsets[7..]).unwrap();
    let (qf, next) =
        QueueFile::open_slice(t.path(), QueueName::Active, &id, offsets[7], 3).unwrap();
    assert!(qf.envelope.recipients.is_empty());
    assert_eq!(next, None);
    assert!(QueueFile::open_slice(t.path(), QueueName::Active, "../x", 0, 3).is_err());
}

#[test]
fn mark_done_refuses_non_recipient_offsets() {
    let t = TempRoot::new();
    // Content full of 'R' bytes: an offset into it must still be refused.
    let id = write_msg(t.path(), QueueName::Active, &sample_env(), b"RRRRRRRR");
    let path = t.path().join("active").join(&id);
    let len = std::fs::metadata(&path).unwrap().len();
    let before = std::fs::read(&path).unwrap();
    for off in [0, 1, len - 5, len - 1, len, len + 100] {
        let err = QueueFile::mark_done(&path, off).unwrap_err();
        assert!(matches!(err, QueueError::Invalid { .. }), "{off}: {err}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(matches!(
        QueueFile::mark_done(&t.path().join("active/ABCDEF0"), 0),
        Err(QueueError::NotFound(_))
    ));
}

#[test]
fn open_missing_and_bad_id() {
    let t = TempRoot::new();
    assert!(matches!(
        QueueFile::open(t.path(), QueueName::Incoming, "ABCDEF0"),
        Err(QueueError::NotFound(_))
    ));
    assert!(matches!(
        QueueFile::open(t.path(), QueueName::Incoming, "../etc"),
        Err(QueueError::Invalid { .. })
    ));
}

#[test]
fn symlinks_and_fifos_are_not_queue_files() {
    let t = TempRoot::new();
    let id = QueueWriter::create(t.path(), QueueName::Active, &sample_env())
        .and_then(|mut w| {
            w.write_content(b"Subject: x\n\nbody\n")?;
            w.commit()
        })
        .unwrap();
    let real = t.path().join("active").join(&id);
    let link = t.path().join("active").join("ABCDEF12345");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = QueueFile::open(t.path(), QueueName::Active, "ABCDEF12345").unwrap_err();
    assert!(matches!(err, QueueError::Io { .. }), "{err}");
    assert!(QueueFile::mark_done(&link, 0).is_err());
    std::fs::remove_file(&link).unwrap();
    nix::unistd::mkfifo(&link, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = QueueFile::open(t.path(), QueueName::Active, "ABCDEF12345").unwrap_err();
    assert!(err.to_string().ends_with("not a regular file"), "{err}");
    QueueFile::open(t.path(), QueueName::Active, &id).unwrap();
}

#[test]
fn invalid_fields_are_refused() {
    let t = TempRoot::new();
    let bad = ["a\0b", "a\rb", "a\nb"];
    for b in bad {
        let mut env = sample_env();
        env.sender = b.into();
        assert!(matches!(
            QueueWriter::create(t.path(), QueueName::Incoming, &env),
            Err(QueueError::Invalid { .. })
        ));
        let mut env = sample_env();
        env.recipients[0].address = b.into();
        assert!(matches!(
            QueueWriter::create(t.path(), QueueName::Incoming, &env),
            Err(QueueError::Invalid { .. })
        ));
        let mut env = sample_env();
        env.recipients[1].orig_address = b.into();
        assert!(matches!(
            QueueWriter::create(t.path(), QueueName::Incoming, &env),
            Err(QueueError::Invalid { .. })
        ));
        let mut env = sample_env();
        env.attrs.push(("x".into(), b.into()));
        assert!(matches!(
            QueueWriter::create(t.path(), QueueName::Incoming, &env),
            Err(QueueError::Invalid { .. })
        ));
    }
    for name in ["", "a=b"] {
        let mut env = sample_env();
        env.attrs.push((name.into(), "v".into()));
        assert!(matches!(
            QueueWriter::create(t.path(), QueueName::Incoming, &env),
            Err(QueueError::Invalid { .. })
        ));
    }
    // Nothing was left behind by the refused attempts.
    assert_eq!(
        std::fs::read_dir(t.path().join("incoming"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn nothing_visible_before_commit() {
    let t = TempRoot::new();
    let mut w = QueueWriter::create(t.path(), QueueName::Incoming, &sample_env()).unwrap();
    w.write_content(b"hello\n").unwrap();
    let names: Vec<String> = std::fs::read_dir(t.path().join("incoming"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(names[0].starts_with("tmp."), "{names:?}");
    assert!(!is_valid_queue_id(&names[0]));
    assert!(list_queue(t.path(), QueueName::Incoming)
        .unwrap()
        .is_empty());

    let id = w.commit().unwrap();
    assert_eq!(
        list_queue(t.path(), QueueName::Incoming).unwrap(),
        vec![id.clone()]
    );
    // The temporary name is gone: only the id remains.
    assert_eq!(
        std::fs::read_dir(t.path().join("incoming"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn abort_and_drop_remove_the_temp_file() {
    let t = TempRoot::new();
    let mut w = QueueWriter::create(t.path(), QueueName::Incoming, &sample_env()).unwrap();
    w.write_content(&vec![b'x'; 100_000]).unwrap();
    w.abort();
    assert_eq!(
        std::fs::read_dir(t.path().join("incoming"))
            .unwrap()
            .count(),
        0
    );
    {
        let _w = QueueWriter::create(t.path(), QueueName::Incoming, &sample_env()).unwrap();
    }
    assert_eq!(
        std::fs::read_dir(t.path().join("incoming"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn commit_never_replaces_an_existing_file() {
    let t = TempRoot::new();
    let w = QueueWriter::create(t.path(), QueueName::Incoming, &sample_env()).unwrap();
    let stale = t.path().join("incoming").join(w.queue_id());
    std::fs::write(&stale, b"stale").unwrap();
    assert!(matches!(w.commit(), Err(QueueError::Io { .. })));
    assert_eq!(std::fs::read(&stale).unwrap(), b"stale");
    assert_eq!(
        std::fs::read_dir(t.path().join("incoming"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn ids_of_live_files_differ() {
    let t = TempRoot::new();
    let ids: std::collections::HashSet<String> = (0..20)
        .map(|_| write_msg(t.path(), QueueName::Incoming, &sample_env(), b"x"))
        .collect();
    assert_eq!(ids.len(), 20);
}

#[test]
fn move_file_and_list_queue() {
    let t = TempRoot::new();
    let a = write_msg(t.path(), QueueName::Incoming, &sample_env(), b"a");
    let b = write_msg(t.path(), QueueName::Incoming, &sample_env(), b"b");
    std::fs::write(t.path().join("incoming/tmp.1.2"), b"").unwrap();
    std::fs::write(t.path().join("incoming/lowercase"), b"").unwrap();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(list_queue(t.path(), QueueName::Incoming).unwrap(), both);

    move_file(t.path(), QueueName::Incoming, QueueName::Deferred, &a).unwrap();
    assert_eq!(
        list_queue(t.path(), QueueName::Incoming).unwrap(),
        vec![b.clone()]
    );
    assert_eq!(
        list_queue(t.path(), QueueName::Deferred).unwrap(),
        vec![a.clone()]
    );
    assert!(QueueFile::open(t.path(), QueueName::Deferred, &a).is_ok());
    assert!(matches!(
        move_file(t.path(), QueueName::Incoming, QueueName::Deferred, &a),
        Err(QueueError::NotFound(_))
    ));
    assert!(matches!(
        move_file(
            t.path(),
            QueueName::Incoming,
            QueueName::Deferred,
            "../../x"
        ),
        Err(QueueError::Invalid { .. })
    ));
    assert!(matches!(
        list_queue(&t.path().join("nope"), QueueName::Incoming),
        Err(QueueError::NotFound(_))
    ));
}

#[test]
fn retry_time_is_the_mtime() {
    let t = TempRoot::new();
    let id = write_msg(t.path(), QueueName::Deferred, &sample_env(), b"a");
    let path = queue_path(t.path(), QueueName::Deferred, &id);
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000_000);
    set_retry_time(&path, when).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), when);
    assert!(matches!(
        set_retry_time(&t.path().join("gone"), when),
        Err(QueueError::NotFound(_))
    ));
}

/// Builds a file from raw (type, payload) records.
fn raw(records: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, p) in records {
        encode_record(*t, p, &mut out);
    }
    out
}

fn assert_corrupt(bytes: &[u8], want: &str) {
    match parse_bytes(bytes) {
        Err(reason) => assert!(reason.contains(want), "reason {reason:?} lacks {want:?}"),
        Ok(p) => panic!("parsed, expected corrupt ({want}): {:?}", p.envelope),
    }
}

const HEAD: [(u8, &[u8]); 3] = [(b'V', b"ROSTQ1"), (b'T', b"123"), (b'S', b"s@x")];

fn with_head(rest: &[(u8, &[u8])]) -> Vec<u8> {
    let mut all = HEAD.to_vec();
    all.extend_from_slice(rest);
    raw(&all)
}

#[test]
fn minimal_raw_file_parses() {
    let p = parse_bytes(&with_head(&[
        (b'R', b"a\0b\0"),
        (b'D', b"c\0c\0NEVER"),
        (b'M', b""),
        (b'N', b"hi"),
        (b'E', b""),
    ]))
    .unwrap();
    assert_eq!(p.envelope.arrival_us, 123);
    assert_eq!(p.envelope.recipients.len(), 2);
    assert!(p.envelope.recipients[1].done);
    assert_eq!(p.envelope.recipients[1].notify, "NEVER");
    assert_eq!(p.content_len, 2);
    let p = parse_bytes(&raw(&[
        (b'V', b"ROSTQ1"),
        (b'T', b"-5"),
        (b'S', b""),
        (b'M', b""),
        (b'E', b""),
    ]))
    .unwrap();
    assert_eq!(p.envelope.arrival_us, -5);
}

#[test]
fn corrupt_files() {
    let tail: [(u8, &[u8]); 3] = [(b'M', b""), (b'N', b"x"), (b'E', b"")];
    let good = with_head(&tail);
    assert!(parse_bytes(&good).is_ok());

    assert_corrupt(b"", "empty file");
    assert_corrupt(&raw(&[(b'V', b"ROSTQ2")]), "bad magic");
    assert_corrupt(&raw(&[(b'V', b"XXXXXX")]), "bad magic");
    assert_corrupt(&raw(&[(b'T', b"1")]), "first record");
    assert_corrupt(&raw(&[(b'V', b"ROSTQ1"), (b'S', b"")]), "expected 'T'");
    assert_corrupt(&raw(&[(b'V', b"ROSTQ1"), (b'T', b"1")]), "missing end");
    assert_corrupt(
        &raw(&[(b'V', b"ROSTQ1"), (b'T', b"1"), (b'A', b"a=b")]),
        "expected 'S'",
    );
    for bad_time in [
        &b""[..],
        b"+1",
        b"1.5",
        b" 1",
        b"99999999999999999999",
        b"-",
    ] {
        assert_corrupt(
            &raw(&[(b'V', b"ROSTQ1"), (b'T', bad_time)]),
            "bad arrival time",
        );
    }
    assert_corrupt(
        &with_head(&[(b'Q', b""), (b'M', b""), (b'E', b"")]),
        "unexpected record 'Q'",
    );
    assert_corrupt(&with_head(&[(0, b""), (b'M', b""), (b'E', b"")]), "0x00");
    assert_corrupt(&with_head(&[(b'M', b""), (b'N', b"x")]), "missing end");
    assert_corrupt(&with_head(&[(b'M', b"")]), "missing end");
    assert_corrupt(
        &with_head(&[(b'M', b""), (b'E', b""), (b'N', b"x")]),
        "trailing bytes",
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_corrupt(&trailing, "trailing bytes");
    assert_corrupt(
        &with_head(&[(b'M', b""), (b'R', b"a\0a\0"), (b'E', b"")]),
        "recipient after content",
    );
    assert_corrupt(
        &with_head(&[(b'M', b""), (b'D', b"a\0a\0"), (b'E', b"")]),
        "recipient after content",
    );
    assert_corrupt(
        &with_head(&[(b'R', b"a\0a\0"), (b'A', b"x=y"), (b'M', b""), (b'E', b"")]),
        "attribute after",
    );
    assert_corrupt(
        &with_head(&[(b'A', b"novalue"), (b'M', b""), (b'E', b"")]),
        "without '='",
    );
    assert_corrupt(
        &with_head(&[(b'A', b"=v"), (b'M', b""), (b'E', b"")]),
        "empty name",
    );
    assert_corrupt(
        &with_head(&[(b'R', b"a\0b"), (b'M', b""), (b'E', b"")]),
        "3 fields",
    );
    assert_corrupt(
        &with_head(&[(b'R', b"a\0b\0c\0d"), (b'M', b""), (b'E', b"")]),
        "3 fields",
    );
    assert_corrupt(
        &with_head(&[(b'R', b"\xff\0\0"), (b'M', b""), (b'E', b"")]),
        "not UTF-8",
    );
    assert_corrupt(
        &with_head(&[(b'M', b"x"), (b'E', b"")]),
        "'M' record with a payload",
    );
    assert_corrupt(
        &with_head(&[(b'M', b""), (b'E', b"x")]),
        "'E' record with a payload",
    );
    assert_corrupt(&with_head(&[(b'E', b"")]), "end record before content");
    let big = vec![b'x'; MAX_CONTENT_RECORD + 1];
    assert_corrupt(
        &with_head(&[(b'M', b""), (b'N', &big), (b'E', b"")]),
        "exceeds",
    );

    // Truncation anywhere short of the full file is corrupt, never a panic.
    for cut in 0..good.len() {
        assert!(parse_bytes(&good[..cut]).is_err(), "cut at {cut}");
    }
    // A length that points past the end of the file.
    let mut lying = with_head(&[(b'M', b"")]);
    lying.extend_from_slice(&[b'N', 0x10, b'x']);
    assert_corrupt(&lying, "truncated");
    // Lengths: too many varint bytes, over 64 MiB.
    let mut long = with_head(&[(b'M', b"")]);
    long.extend_from_slice(&[b'N', 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    assert_corrupt(&long, "longer than 5 bytes");
    let mut huge = with_head(&[(b'M', b"")]);
    huge.extend_from_slice(&[b'N', 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_corrupt(&huge, "exceeds");
}

#[test]
fn corrupt_file_on_disk_is_reported_with_its_path() {
    let t = TempRoot::new();
    let path = t.path().join("incoming/ABCDEF9");
    std::fs::write(&path, b"garbage").unwrap();
    match QueueFile::open(t.path(), QueueName::Incoming, "ABCDEF9") {
        Err(QueueError::Corrupt { path: p, reason }) => {
            assert_eq!(p, path);
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

fn text() -> impl Strategy<Value = String> {
    // Anything but NUL, CR, LF (including multi-byte characters).
    proptest::string::string_regex("[^\\x00\\r\\n]{0,40}").unwrap()
}

prop_compose! {
    fn arb_recipient()(address in text(), orig_address in text(), notify in text(), done in any::<bool>()) -> Recipient {
        Recipient { address, orig_address, notify, done, offset: 0 }
    }
}

prop_compose! {
    fn arb_envelope()(
        sender in text(),
        arrival_us in any::<i64>(),
        attrs in proptest::collection::vec(("[a-z_]{1,12}", text()), 0..5),
        recipients in proptest::collection::vec(arb_recipient(), 0..6),
    ) -> Envelope {
        Envelope { sender, arrival_us, attrs, recipients }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_bytes(&bytes);
        let _ = parse::read_content(Cursor::new(&bytes), bytes.len() as u64, 0);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        env in arb_envelope(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = file_bytes(&env, &[b"content"]);
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        let _ = parse_bytes(&bytes);
        let c = cut.index(bytes.len());
        let _ = parse_bytes(&bytes[..c]);
    }

    #[test]
    fn envelopes_round_trip(env in arb_envelope(), content in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut bytes = encode_envelope(&env).unwrap();
        if !content.is_empty() {
            encode_record(REC_CONTENT, &content, &mut bytes);
        }
        encode_record(REC_END, b"", &mut bytes);
        let p = parse_bytes(&bytes).unwrap();
        prop_assert_eq!(strip_offsets(&p.envelope), env);
        prop_assert_eq!(p.content_len, content.len() as u64);
        for r in &p.envelope.recipients {
            let t = bytes[r.offset as usize];
            prop_assert_eq!(t, if r.done { REC_DONE } else { REC_RCPT });
        }
        let got = parse::read_content(Cursor::new(&bytes), bytes.len() as u64, p.content_offset).unwrap_or_default();
        prop_assert_eq!(got, content);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn envelopes_round_trip_through_files(env in arb_envelope(), content in proptest::collection::vec(any::<u8>(), 0..70_000)) {
        let t = TempRoot::new();
        let id = write_msg(t.path(), QueueName::Incoming, &env, &content);
        let qf = QueueFile::open(t.path(), QueueName::Incoming, &id).unwrap();
        prop_assert_eq!(strip_offsets(&qf.envelope), env);
        prop_assert_eq!(qf.read_content().unwrap(), content);
    }
}

#[test]
fn rename_file_in_a_batch_then_one_sync() {
    let t = TempRoot::new();
    let ids: Vec<String> = (0..3)
        .map(|i| write_msg(t.path(), QueueName::Incoming, &sample_env(), &[b'a' + i]))
        .collect();
    for id in &ids {
        rename_file(t.path(), QueueName::Incoming, QueueName::Active, id).unwrap();
    }
    sync_queue_dirs(t.path(), &[QueueName::Active, QueueName::Incoming]).unwrap();
    assert!(list_queue(t.path(), QueueName::Incoming)
        .unwrap()
        .is_empty());
    let mut want = ids.clone();
    want.sort();
    assert_eq!(list_queue(t.path(), QueueName::Active).unwrap(), want);
    assert!(matches!(
        rename_file(t.path(), QueueName::Incoming, QueueName::Active, &ids[0]),
        Err(QueueError::NotFound(_))
    ));
    assert!(matches!(
        rename_file(t.path(), QueueName::Incoming, QueueName::Active, "../x"),
        Err(QueueError::Invalid { .. })
    ));
}

#[test]
fn a_recycled_file_holds_only_the_new_message() {
    use std::os::unix::fs::MetadataExt;
    let q = TempRoot::new();
    let root = q.path();
    std::fs::create_dir(root.join(crate::RECYCLE_DIR)).unwrap();
    let old = root.join(crate::RECYCLE_DIR).join("OLDFILE01");
    std::fs::write(&old, vec![b'Z'; crate::RECYCLE_MAX_SIZE as usize]).unwrap();
    std::fs::set_permissions(&old, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let inode = std::fs::metadata(&old).unwrap().ino();

    let env = sample_env();
    let mut w = QueueWriter::create_recycled(root, QueueName::Incoming, &env).unwrap();
    w.write_content(b"Subject: new\n\nfresh\n").unwrap();
    let id = w.commit().unwrap();

    let path = queue_path(root, QueueName::Incoming, &id);
    // The same inode, cut to the new message's length: nothing of the old one is left.
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert!(!std::fs::read(&path).unwrap().contains(&b'Z'));
    assert!(!old.exists());
    let qf = QueueFile::open(root, QueueName::Incoming, &id).unwrap();
    assert_eq!(strip_offsets(&qf.envelope), strip_offsets(&env));
    assert_eq!(qf.read_content().unwrap(), b"Subject: new\n\nfresh\n");
    // With the pool empty, the next writer creates a file as before.
    let id2 = write_msg(root, QueueName::Incoming, &env, b"x\n");
    assert_ne!(id2, id);
}
