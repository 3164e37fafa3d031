//! Replays the committed fuzz corpus of the `milter_replies` target
//! (fuzz/corpus/milter_replies) through the same checks, so `cargo test` catches a
//! regression on every input the fuzzer kept, without nightly Rust or libFuzzer.

use std::path::Path;

#[test]
fn milter_replies_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/milter_replies");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        rostfix_milter::fuzzing::replies(&std::fs::read(&path).expect("corpus file"));
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}
