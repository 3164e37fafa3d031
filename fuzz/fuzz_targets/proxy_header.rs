//! Fuzz target proxy_header: see rostfix_smtpd::fuzzing::proxy_header for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rostfix_smtpd::fuzzing::proxy_header(data);
});
