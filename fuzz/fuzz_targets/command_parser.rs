//! Fuzz target command_parser: see rostfix_smtpd::fuzzing::command_line for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rostfix_smtpd::fuzzing::command_line(data);
});
