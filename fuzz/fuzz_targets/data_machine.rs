//! Fuzz target data_machine: see rostfix_smtpd::fuzzing::data_stream for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rostfix_smtpd::fuzzing::data_stream(data);
});
