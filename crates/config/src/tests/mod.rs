//! Tests that cross modules: main.cf, master.cf, edits, the shipped and fixture files.

mod edits;
mod fixtures;
mod installed;
mod main_cf;
mod master_cf;
mod support;
