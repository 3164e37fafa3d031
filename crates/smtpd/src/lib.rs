//! The parts of smtpd that take raw client bytes, as a library for the fuzz targets in
//! the repository's `fuzz/` directory and for the corpus replay test
//! (tests/fuzz_corpus.rs). The `smtpd` binary compiles the same files as its own
//! modules; this library adds nothing to it.
//!
//! [`fuzzing`] holds the checks each fuzz target runs, so that `cargo fuzz` and the
//! replay test assert exactly the same properties.

#![deny(unsafe_code)]

pub mod address;
pub mod chunk;
pub mod command;
pub mod data;
pub mod dsn_params;
pub mod fuzzing;
pub mod reply;
