//! Tests of the header/MIME splitter: classification of headers and lines, and the
//! byte-for-byte round trip whatever the input and its cutting.

use super::*;
use proptest::prelude::*;

/// An owned event, for comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    H(HeaderKind, String),
    Sep,
    B(String, u64),
    Raw(Vec<u8>),
}

fn run_pieces(pieces: &[&[u8]], mime: bool, cap: usize) -> (Vec<Ev>, Vec<u8>) {
    let mut evs = Vec::new();
    let mut rebuilt = Vec::new();
    let mut s = Splitter::new(mime, cap);
    let mut record = |e: Event<'_>| {
        match &e {
            Event::Header { text, eol, .. } => {
                rebuilt.extend_from_slice(text);
                if *eol {
                    rebuilt.push(b'\n');
                }
            }
            Event::Separator => rebuilt.push(b'\n'),
            Event::Body { text, eol, .. } => {
                rebuilt.extend_from_slice(text);
                if *eol {
                    rebuilt.push(b'\n');
                }
            }
            Event::Raw(b) => rebuilt.extend_from_slice(b),
        }
        evs.push(match e {
            Event::Header { kind, text, .. } => Ev::H(kind, String::from_utf8_lossy(text).into()),
            Event::Separator => Ev::Sep,
            Event::Body { text, offset, .. } => Ev::B(String::from_utf8_lossy(text).into(), offset),
            Event::Raw(b) => Ev::Raw(b.to_vec()),
        });
    };
    for p in pieces {
        s.feed(p, &mut record);
    }
    s.finish(&mut record);
    (evs, rebuilt)
}

fn run(input: &[u8]) -> Vec<Ev> {
    let (evs, rebuilt) = run_pieces(&[input], true, 102_400);
    assert_eq!(rebuilt, input);
    evs
}

fn h(kind: HeaderKind, s: &str) -> Ev {
    Ev::H(kind, s.into())
}

fn b(s: &str, offset: u64) -> Ev {
    Ev::B(s.into(), offset)
}

#[test]
fn folded_header_is_one_key() {
    let evs = run(b"Subject: one\n\ttwo\nX-A: b\n\nbody\n");
    assert_eq!(
        evs,
        vec![
            h(HeaderKind::Primary, "Subject: one\n\ttwo"),
            h(HeaderKind::Primary, "X-A: b"),
            Ev::Sep,
            b("body", 0),
        ]
    );
}

#[test]
fn body_without_blank_line() {
    let evs = run(b"Subject: a\nnot a header\nline 2\n");
    assert_eq!(
        evs,
        vec![
            h(HeaderKind::Primary, "Subject: a"),
            b("not a header", 0),
            b("line 2", 13),
        ]
    );
}

const MULTIPART: &[u8] = b"MIME-Version: 1.0\n\
Content-Type: multipart/mixed;\n boundary=\"XX\"\n\
Subject: s\n\
\n\
preamble\n\
--XX\n\
Content-Type: text/plain\n\
X-Part: p\n\
\n\
hello\n\
--XX\n\
Content-Type: message/rfc822\n\
\n\
From: inner@example\n\
Content-Type: text/plain\n\
\n\
inner body\n\
--XX--\n\
epilogue\n";

#[test]
fn multipart_parts_and_nested_message() {
    let evs = run(MULTIPART);
    assert_eq!(
        evs,
        vec![
            h(HeaderKind::Mime, "MIME-Version: 1.0"),
            h(
                HeaderKind::Mime,
                "Content-Type: multipart/mixed;\n boundary=\"XX\""
            ),
            h(HeaderKind::Primary, "Subject: s"),
            Ev::Sep,
            b("preamble", 0),
            b("--XX", 9),
            h(HeaderKind::Mime, "Content-Type: text/plain"),
            h(HeaderKind::Mime, "X-Part: p"),
            Ev::Sep,
            b("hello", 0),
            b("--XX", 6),
            h(HeaderKind::Mime, "Content-Type: message/rfc822"),
            Ev::Sep,
            h(HeaderKind::Nested, "From: inner@example"),
            h(HeaderKind::Mime, "Content-Type: text/plain"),
            Ev::Sep,
            b("inner body", 0),
            b("--XX--", 11),
            b("epilogue", 0),
        ]
    );
}

#[test]
fn without_mime_processing_everything_after_the_header_is_body() {
    let (evs, rebuilt) = run_pieces(&[MULTIPART], false, 102_400);
    assert_eq!(rebuilt, MULTIPART);
    assert!(evs
        .iter()
        .all(|e| !matches!(e, Ev::H(HeaderKind::Nested, _))));
    assert!(evs.contains(&b("X-Part: p", 39)), "{evs:?}");
}

#[test]
fn long_body_line_is_inspected_in_pieces() {
    let mut input = b"S: x\n\n".to_vec();
    input.extend(std::iter::repeat_n(b'a', LINE_PIECE + 10));
    input.push(b'\n');
    let evs = run(&input);
    assert_eq!(evs.len(), 4);
    assert_eq!(evs[2], b(&"a".repeat(LINE_PIECE), 0));
    assert_eq!(evs[3], b(&"a".repeat(10), LINE_PIECE as u64));
}

#[test]
fn header_over_the_cap_passes_uninspected() {
    let input = b"Subject: aaaaaaaaaaaaaaaaaaaa\n bbbbbbbbbbbbbbbbbbbbbbbb\nX: y\n\nbody\n";
    let (evs, rebuilt) = run_pieces(&[input], true, 40);
    assert_eq!(rebuilt, input);
    assert_eq!(
        evs[0],
        h(HeaderKind::Primary, "Subject: aaaaaaaaaaaaaaaaaaaa")
    );
    assert!(evs.contains(&h(HeaderKind::Primary, "X: y")), "{evs:?}");
}

#[test]
fn a_header_line_past_the_cap_is_raw_however_cut() {
    let mut input = b"Subject: ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 3 * LINE_PIECE));
    input.extend_from_slice(b"\nX: y\n\nbody\n");
    let (whole, _) = run_pieces(&[&input], true, 64);
    for cut in [
        1,
        100,
        LINE_PIECE,
        LINE_PIECE + 100,
        2 * LINE_PIECE + 70,
        input.len() - 3,
    ] {
        let (evs, rebuilt) = run_pieces(&[&input[..cut], &input[cut..]], true, 64);
        assert_eq!(rebuilt, input, "cut {cut}");
        let structural = |v: &[Ev]| {
            v.iter()
                .filter(|e| !matches!(e, Ev::Raw(_)))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(structural(&evs), structural(&whole), "cut {cut}");
    }
    assert!(whole.contains(&b("X: y", 0)), "{whole:?}");
}

proptest! {
    #[test]
    fn round_trips_however_cut(
        data in proptest::collection::vec(prop_oneof![
            Just(b'\n'), Just(b' '), Just(b'-'), Just(b':'), Just(b'a'), Just(b'X'),
            Just(b'"'), Just(b';'), Just(b'='),
        ], 0..300),
        cut in 0usize..300,
        mime in any::<bool>(),
        cap in 1usize..64,
    ) {
        let cut = cut.min(data.len());
        let (whole, rebuilt) = run_pieces(&[&data], mime, cap);
        prop_assert_eq!(&rebuilt, &data);
        let (pieces, rebuilt2) = run_pieces(&[&data[..cut], &data[cut..]], mime, cap);
        prop_assert_eq!(&rebuilt2, &data);
        // Events may only differ in how raw bytes are grouped; headers and lines match.
        let structural = |v: &[Ev]| v.iter().filter(|e| !matches!(e, Ev::Raw(_))).cloned().collect::<Vec<_>>();
        prop_assert_eq!(structural(&whole), structural(&pieces));
    }

    #[test]
    fn mime_structure_round_trips(
        parts in proptest::collection::vec(
            "(Content-Type: (multipart/mixed; boundary=\"b[0-9]\"|message/rfc822|text/plain)\n)?[A-Z][a-z]{0,5}: [a-z ]{0,10}\n(\n[a-z -]{0,12}\n)?(--b[0-9](--)?\n)?",
            0..12,
        ),
    ) {
        let data: Vec<u8> = parts.concat().into_bytes();
        let (_, rebuilt) = run_pieces(&[&data], true, 102_400);
        prop_assert_eq!(rebuilt, data);
    }

    #[test]
    fn never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let (_, rebuilt) = run_pieces(&[&data], true, 100);
        prop_assert_eq!(rebuilt, data);
    }
}
