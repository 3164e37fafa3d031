//! The properties the fuzz targets check (library only; see lib.rs). Each function
//! takes arbitrary bytes and panics when a property does not hold.
//!
//! - [`command_line`]: the command parser never panics; an accepted MAIL/RCPT address
//!   has no control character; the parameter checks never panic and their decoded
//!   values carry no control character.
//! - [`data_stream`]: the DATA machine gives the same result however the input is
//!   split, ends only after CR LF . CR LF, and never reports more bytes than it got.
//! - [`bdat_stream`]: the BDAT chunk decoder gives the same result however the input is
//!   cut into chunks, and drops exactly the CR of each CR LF pair, nothing else.
//! - [`proxy_header`]: the HAProxy PROXY header reader stays within its bound and
//!   agrees with the parser.

use crate::chunk::ChunkDecoder;
use crate::command::{parse_command, Command};
use crate::data::DataMachine;
use crate::dsn_params::{mail_params, rcpt_params, ParamPolicy};

/// Fuzz target `command_parser`.
pub fn command_line(input: &[u8]) {
    let Ok(cmd) = parse_command(input) else {
        return;
    };
    let policy = ParamPolicy {
        size_limit: 10_240_000,
        smtputf8_enable: true,
        requiretls_offered: true,
        verp: Some(crate::dsn_params::VerpPolicy {
            default: "+=",
            filter: "-=+",
        }),
    };
    match cmd {
        Command::Mail(arg) => {
            assert!(!arg.address.chars().any(char::is_control));
            if let Ok(p) = mail_params(&arg.params, policy) {
                for (_, v) in p.attributes() {
                    assert!(!v.chars().any(char::is_control), "attribute value {v:?}");
                }
            }
        }
        Command::Rcpt(arg) => {
            assert!(!arg.address.is_empty());
            assert!(!arg.address.chars().any(char::is_control));
            for utf8 in [false, true] {
                if let Ok(r) = rcpt_params(&arg.params, utf8) {
                    assert!(!r.notify.chars().any(char::is_control));
                    let o = r.orcpt.unwrap_or_default();
                    assert!(!o.chars().any(char::is_control), "ORCPT {o:?}");
                }
            }
        }
        _ => {}
    }
}

fn feed_all(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<usize>, bool) {
    let mut m = DataMachine::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        let c = c.clamp(from, input.len());
        if let Some(n) = m.feed(&input[from..c], &mut out) {
            return (out, Some(from + n), m.saw_bare_lf());
        }
        from = c;
    }
    (out, None, m.saw_bare_lf())
}

/// Fuzz target `data_machine`: the first byte picks split points, the rest is data.
pub fn data_stream(input: &[u8]) {
    let (seed, data) = match input.split_first() {
        Some((s, d)) => (*s as usize, d),
        None => return,
    };
    let whole = feed_all(data, &[]);
    let cuts: Vec<usize> = (1..4)
        .map(|k| (seed * k * 7919) % (data.len() + 1))
        .collect();
    let mut sorted = cuts.clone();
    sorted.sort_unstable();
    let split = feed_all(data, &sorted);
    assert_eq!(whole.0, split.0, "content differs when split at {sorted:?}");
    assert_eq!(whole.1, split.1, "end differs when split at {sorted:?}");
    if let Some(n) = whole.1 {
        assert!(n <= data.len());
        let framed = [b"\r\n".as_slice(), &data[..n]].concat();
        assert!(
            framed.ends_with(b"\r\n.\r\n"),
            "ended without CR LF . CR LF"
        );
    }
    assert!(whole.0.len() <= data.len());
}

/// Fuzz target `bdat_chunks`: the first byte picks chunk sizes, the rest is content.
pub fn bdat_stream(input: &[u8]) {
    let (seed, data) = match input.split_first() {
        Some((s, d)) => (*s as usize, d),
        None => return,
    };
    let mut one = ChunkDecoder::new();
    let mut whole = Vec::new();
    one.feed(data, &mut whole);
    one.finish(&mut whole);
    let mut many = ChunkDecoder::new();
    let mut out = Vec::new();
    let step = seed % 17 + 1;
    for chunk in data.chunks(step) {
        many.feed(chunk, &mut out);
    }
    many.finish(&mut out);
    assert_eq!(whole, out, "chunk size {step} changed the content");
    assert!(out.len() <= data.len());
    // Only CRs are dropped (those of CR LF pairs): every LF and other byte stays.
    let count = |d: &[u8], b: u8| d.iter().filter(|&&x| x == b).count();
    assert_eq!(count(&out, b'\n'), count(data, b'\n'));
    let crlf = data.windows(2).filter(|w| *w == b"\r\n").count();
    assert_eq!(out.len(), data.len() - crlf);
}

/// Fuzz target `proxy_header`: the PROXY header reader stops within MAX_HEADER bytes
/// and never past what it was given; an accepted header claims no more bytes than were
/// read, and parsing what was read gives the same result as parsing the whole input
/// (the reader never stops short of a header the parser would accept).
pub fn proxy_header(input: &[u8]) {
    use rostfix_proto::haproxy::{collect, parse, MAX_HEADER};
    let mut rest = input;
    let Ok(got) = collect(&mut rest) else {
        return;
    };
    assert!(got.len() <= MAX_HEADER);
    assert_eq!(got.len() + rest.len(), input.len());
    if let Ok(p) = parse(&got) {
        assert!(p.len <= got.len());
        assert_eq!(parse(input).map(|q| q.endpoints), Ok(p.endpoints));
    }
}
