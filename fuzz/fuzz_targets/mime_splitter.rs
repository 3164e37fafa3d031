//! Fuzz target mime_splitter: see rostfix_inspect::fuzzing::splitter for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rostfix_inspect::fuzzing::splitter(data);
});
