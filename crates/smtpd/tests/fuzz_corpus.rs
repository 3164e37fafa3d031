//! Replays the committed fuzz corpus (fuzz/corpus/<target>/*) through the same checks
//! the cargo-fuzz targets run, so `cargo test` catches a regression on every input
//! the fuzzers ever kept, without nightly Rust or libFuzzer.

use rostfix_smtpd::fuzzing;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        check(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus for {target}");
}

#[test]
fn command_parser_corpus() {
    replay("command_parser", fuzzing::command_line);
}

#[test]
fn data_machine_corpus() {
    replay("data_machine", fuzzing::data_stream);
}

#[test]
fn bdat_chunks_corpus() {
    replay("bdat_chunks", fuzzing::bdat_stream);
}

#[test]
fn proxy_header_corpus() {
    replay("proxy_header", fuzzing::proxy_header);
}
