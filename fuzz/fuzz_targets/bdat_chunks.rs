//! Fuzz target bdat_chunks: see rostfix_smtpd::fuzzing::bdat_stream for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rostfix_smtpd::fuzzing::bdat_stream(data);
});
