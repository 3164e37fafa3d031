//! BDAT chunk content (RFC 3030) into stored content: CR LF becomes LF, as in DATA;
//! a bare LF is stored as LF and a bare CR is kept, also as in DATA. There is no
//! dot-stuffing and no end marker: the chunk size alone frames the data, which is why
//! BDAT cannot be smuggled into. A CR at the end of one chunk may pair with an LF at
//! the start of the next, so the decoder carries that one byte of state.

/// The chunk decoder of one message.
#[derive(Debug, Clone, Default)]
pub struct ChunkDecoder {
    pending_cr: bool,
}

impl ChunkDecoder {
    pub fn new() -> ChunkDecoder {
        ChunkDecoder::default()
    }

    /// Appends the stored form of `input` to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    out.push(b'\n');
                    continue;
                }
                out.push(b'\r');
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// The message is complete (BDAT LAST): a CR left at the very end is content.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn whole(input: &[u8]) -> Vec<u8> {
        let mut d = ChunkDecoder::new();
        let mut out = Vec::new();
        d.feed(input, &mut out);
        d.finish(&mut out);
        out
    }

    #[test]
    fn line_endings() {
        assert_eq!(whole(b"a\r\nb\nc\rd\r"), b"a\nb\nc\rd\r");
        // Dots are plain content in BDAT.
        assert_eq!(
            whole(b"\r\n.\r\nMAIL FROM:<x>\r\n"),
            b"\n.\nMAIL FROM:<x>\n"
        );
        assert_eq!(whole(b"\r\r\n"), b"\r\n");
    }

    proptest! {
        #[test]
        fn chunking_never_changes_the_result(
            data in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a')], 0..64),
            cuts in proptest::collection::vec(0usize..64, 0..4),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut d = ChunkDecoder::new();
            let mut out = Vec::new();
            let mut from = 0;
            for c in cuts {
                d.feed(&data[from..c], &mut out);
                from = c;
            }
            d.feed(&data[from..], &mut out);
            d.finish(&mut out);
            prop_assert_eq!(out, whole(&data));
        }
    }
}
