//! Fuzz target milter_replies: see rostfix_milter::fuzzing::replies for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rostfix_milter::fuzzing::replies(data);
});
