//! smtp: the SMTP client delivery agent (see the library crate documentation).

#![forbid(unsafe_code)]

fn main() {
    rostfix_smtp::agent::main("smtp")
}
