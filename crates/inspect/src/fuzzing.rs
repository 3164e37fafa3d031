//! The property the fuzz target `mime_splitter` checks (fuzz/fuzz_targets): the
//! header/MIME splitter parses network input, so for any bytes, with MIME processing on
//! or off, whole or cut in two at any point, it never panics and writing its events back
//! gives the input byte for byte; the cut changes no header or body line it reports.

use crate::mime::{Event, HeaderKind, Splitter};

/// A header or line as reported, for comparing two runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Header(HeaderKind, Vec<u8>),
    Separator,
    Body(Vec<u8>, bool, u64),
}

/// Runs the splitter over `pieces`; returns what it reported and the rebuilt bytes.
fn run(pieces: &[&[u8]], mime: bool, cap: usize) -> (Vec<Seen>, Vec<u8>) {
    let mut seen = Vec::new();
    let mut rebuilt = Vec::new();
    let mut splitter = Splitter::new(mime, cap);
    let mut take = |e: Event<'_>| match e {
        Event::Header { kind, text, eol } => {
            rebuilt.extend_from_slice(text);
            if eol {
                rebuilt.push(b'\n');
            }
            seen.push(Seen::Header(kind, text.to_vec()));
        }
        Event::Separator => {
            rebuilt.push(b'\n');
            seen.push(Seen::Separator);
        }
        Event::Body { text, eol, offset } => {
            rebuilt.extend_from_slice(text);
            if eol {
                rebuilt.push(b'\n');
            }
            seen.push(Seen::Body(text.to_vec(), eol, offset));
        }
        Event::Raw(bytes) => rebuilt.extend_from_slice(bytes),
    };
    for piece in pieces {
        splitter.feed(piece, &mut take);
    }
    splitter.finish(&mut take);
    (seen, rebuilt)
}

/// Fuzz target `mime_splitter`: the first byte picks the cut and the header cap.
pub fn splitter(data: &[u8]) {
    let Some((&knob, input)) = data.split_first() else {
        return;
    };
    let cut = (usize::from(knob) * input.len()) / 255;
    let cap = 16 + usize::from(knob) * 4;
    for mime in [true, false] {
        let (whole, rebuilt) = run(&[input], mime, cap);
        assert_eq!(rebuilt, input, "round trip, mime={mime}");
        let (cut_seen, rebuilt) = run(&[&input[..cut], &input[cut..]], mime, cap);
        assert_eq!(rebuilt, input, "round trip cut at {cut}, mime={mime}");
        assert_eq!(
            whole, cut_seen,
            "cut at {cut} changed the events, mime={mime}"
        );
    }
}

#[cfg(test)]
mod tests {
    /// Replays the fuzz corpus (fuzz/corpus/mime_splitter) in ordinary test runs.
    #[test]
    fn corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/mime_splitter");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if let Ok(data) = std::fs::read(entry.path()) {
                super::splitter(&data);
                n += 1;
            }
        }
        assert!(n > 0, "no corpus in {}", dir.display());
    }
}
