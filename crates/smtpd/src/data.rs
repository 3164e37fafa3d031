//! The DATA phase byte machine: finds the end of data and undoes dot-stuffing, storing
//! lines with LF endings.
//!
//! Smuggling-proof end of data (CVE-2023-51764): only `CR LF . CR LF` ends the data,
//! where the first CR LF ended the previous line (or the DATA command line: data that
//! starts with `. CR LF` is empty). A bare LF or a bare CR never takes part in the
//! end-of-data decision, so `LF . LF`, `LF . CR LF`, `CR LF . LF` and `CR . CR` are all
//! content.
//!
//! Line endings as stored (Postfix's `smtpd_forbid_bare_newline = normalize`):
//! - CR LF becomes LF;
//! - a bare LF also ends a line and is stored as LF;
//! - a bare CR is content and is kept as is.
//!
//! Dot-unstuffing: a line (after any line ending) that starts with `.` loses that dot.
//! A lone `.` line that does not end the data (it is next to a bare LF) is therefore
//! stored as an empty line: it can never re-appear as an end-of-data marker later,
//! because our SMTP client always sends CR LF and dot-stuffs.
//!
//! `smtpd_forbid_bare_newline = yes|reject`: the machine also remembers whether any line
//! ended in a bare LF ([`DataMachine::saw_bare_lf`]); the session then rejects the
//! message after its end (Postfix 3.9 semantics) instead of queueing it.
//!
//! The machine holds no line buffer, so lines of any length cost no memory; it can be
//! fed the input in arbitrary pieces (the split may fall inside `CR LF . CR LF`).

/// Where the machine is inside the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// A `.` at the start of a line, not yet emitted (stuffing or end marker).
    Dot,
    /// `.` CR at the start of a line.
    DotCr,
    /// Inside a line.
    Mid,
    /// Inside a line after a CR that is not yet known to be bare.
    MidCr,
}

/// The DATA reader state machine.
#[derive(Debug, Clone)]
pub struct DataMachine {
    state: State,
    /// The previous line ended with CR LF (true at the start of data).
    prev_crlf: bool,
    /// Some line ended in LF without CR before it.
    bare_lf: bool,
}

impl Default for DataMachine {
    fn default() -> Self {
        DataMachine {
            state: State::LineStart,
            prev_crlf: true,
            bare_lf: false,
        }
    }
}

impl DataMachine {
    /// A machine at the start of the data.
    pub fn new() -> DataMachine {
        DataMachine::default()
    }

    /// Consumes `input`, appending content to `out`. Returns `Some(n)` when the end of
    /// data was found: `n` bytes of `input` (up to and including the final LF) belong
    /// to the data, the rest is the next command. `None`: all of `input` was consumed.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Mid {
                // Fast path: copy up to the next CR or LF in one go.
                let rest = &input[i..];
                let n = rest
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(rest.len());
                out.extend_from_slice(&rest[..n]);
                i += n;
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            match (self.state, b) {
                (State::LineStart, b'.') => self.state = State::Dot,
                (State::LineStart | State::Mid, b'\r') => self.state = State::MidCr,
                (State::LineStart | State::Mid, b'\n') => self.end_line(out, false),
                (State::LineStart | State::Mid, _) => {
                    out.push(b);
                    self.state = State::Mid;
                }
                (State::Dot, b'\r') => self.state = State::DotCr,
                (State::Dot, b'\n') => self.end_line(out, false),
                (State::Dot, _) => {
                    out.push(b);
                    self.state = State::Mid;
                }
                (State::DotCr, b'\n') => {
                    if self.prev_crlf {
                        self.state = State::LineStart;
                        return Some(i);
                    }
                    self.end_line(out, true);
                }
                (State::MidCr, b'\n') => self.end_line(out, true),
                (State::DotCr | State::MidCr, b'\r') => {
                    out.push(b'\r');
                    self.state = State::MidCr;
                }
                (State::DotCr | State::MidCr, _) => {
                    out.push(b'\r');
                    out.push(b);
                    self.state = State::Mid;
                }
            }
        }
        None
    }

    /// Whether any line so far ended in a bare LF (smtpd_forbid_bare_newline).
    pub fn saw_bare_lf(&self) -> bool {
        self.bare_lf
    }

    fn end_line(&mut self, out: &mut Vec<u8>, crlf: bool) {
        out.push(b'\n');
        self.prev_crlf = crlf;
        self.bare_lf |= !crlf;
        self.state = State::LineStart;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds everything at once: (content, bytes consumed if the end was found).
    fn run(input: &[u8]) -> (Vec<u8>, Option<usize>) {
        let mut m = DataMachine::new();
        let mut out = Vec::new();
        let end = m.feed(input, &mut out);
        (out, end)
    }

    #[test]
    fn simple_message() {
        let (out, end) = run(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n");
        assert_eq!(out, b"Subject: x\n\nhello\n");
        assert_eq!(end, Some(24));
    }

    #[test]
    fn empty_data() {
        assert_eq!(run(b".\r\n"), (vec![], Some(3)));
    }

    #[test]
    fn dot_unstuffing() {
        let (out, end) = run(b"..leading\r\n...\r\n.\r\n");
        assert_eq!(out, b".leading\n..\n");
        assert!(end.is_some());
        // A dot inside a line is content.
        assert_eq!(run(b"a.b\r\n. x\r\n.\r\n").0, b"a.b\n x\n");
    }

    #[test]
    fn smuggling_sequences_do_not_end_data() {
        for seq in [
            &b"a\n.\nb"[..],
            b"a\r.\rb",
            b"a\n.\r\nb",
            b"a\r\n.\nb",
            b"a\r.\r\nb",
        ] {
            let (_, end) = run(seq);
            assert_eq!(end, None, "{:?}", String::from_utf8_lossy(seq));
        }
    }

    #[test]
    fn smuggling_sequences_content() {
        assert_eq!(run(b"a\n.\nb").0, b"a\n\nb");
        assert_eq!(run(b"a\r.\rb").0, b"a\r.\rb");
        assert_eq!(run(b"a\n.\r\nb").0, b"a\n\nb");
        assert_eq!(run(b"a\r\n.\nb").0, b"a\n\nb");
        // After the smuggled marker a real end still works.
        let (out, end) = run(b"a\n.\nMAIL FROM:<x>\r\n.\r\n");
        assert_eq!(out, b"a\n\nMAIL FROM:<x>\n");
        assert!(end.is_some());
    }

    #[test]
    fn bare_line_endings() {
        assert_eq!(run(b"a\nb\rc\r\r\n").0, b"a\nb\rc\r\n");
        // A line after a bare LF is still dot-unstuffed.
        assert_eq!(run(b"x\n..y\r\n").0, b"x\n.y\n");
        // A bare LF before ". CR LF" means that dot line cannot end the data ...
        assert_eq!(run(b"x\n.\r\n").1, None);
        // ... but the line after it ended with CR LF, so the next one can.
        assert_eq!(run(b"x\n.\r\n.\r\n").1, Some(8));
    }

    #[test]
    fn bare_lf_is_noticed() {
        let mut m = DataMachine::new();
        let mut out = Vec::new();
        assert!(m.feed(b"a\r\nb\r\n.\r\n", &mut out).is_some());
        assert!(!m.saw_bare_lf());
        let mut m = DataMachine::new();
        assert!(m.feed(b"a\nb\r\n.\r\n", &mut out).is_some());
        assert!(m.saw_bare_lf());
        // A bare CR is not a bare LF.
        let mut m = DataMachine::new();
        assert!(m.feed(b"a\rb\r\n.\r\n", &mut out).is_some());
        assert!(!m.saw_bare_lf());
    }

    #[test]
    fn end_split_across_reads() {
        let input = b"hello\r\n.\r\nNEXT";
        for split in 0..=input.len() {
            let mut m = DataMachine::new();
            let mut out = Vec::new();
            let first = m.feed(&input[..split], &mut out);
            let total = match first {
                Some(n) => Some(n),
                None => m.feed(&input[split..], &mut out).map(|n| n + split),
            };
            assert_eq!(out, b"hello\n", "split at {split}");
            assert_eq!(total, Some(10), "split at {split}");
        }
    }

    proptest! {
        #[test]
        fn splitting_never_changes_the_result(
            data in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a')], 0..64),
            split in 0usize..64,
        ) {
            let split = split.min(data.len());
            let (whole_out, whole_end) = run(&data);
            let mut m = DataMachine::new();
            let mut out = Vec::new();
            let end = match m.feed(&data[..split], &mut out) {
                Some(n) => Some(n),
                None => m.feed(&data[split..], &mut out).map(|n| n + split),
            };
            prop_assert_eq!(out, whole_out);
            prop_assert_eq!(end, whole_end);
        }

        #[test]
        fn end_only_after_crlf_dot_crlf(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let (_, Some(n)) = run(&data) {
                let framed = [b"\r\n".as_slice(), &data[..n]].concat();
                prop_assert!(framed.ends_with(b"\r\n.\r\n"));
            }
        }

        #[test]
        fn stuffed_content_round_trips(lines in proptest::collection::vec("[a-z. ]{0,20}", 0..10)) {
            // What an SMTP client sends: CR LF lines, leading dots doubled, then CR LF . CR LF.
            let mut wire = Vec::new();
            let mut expect = Vec::new();
            for l in &lines {
                if l.starts_with('.') { wire.push(b'.'); }
                wire.extend_from_slice(l.as_bytes());
                wire.extend_from_slice(b"\r\n");
                expect.extend_from_slice(l.as_bytes());
                expect.push(b'\n');
            }
            wire.extend_from_slice(b".\r\n");
            let (out, end) = run(&wire);
            prop_assert_eq!(out, expect);
            prop_assert_eq!(end, Some(wire.len()));
        }
    }
}
