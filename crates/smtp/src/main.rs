//! smtp: the SMTP client delivery agent (see the library crate documentation).

fn main() {
    rostfix_smtp::agent::main("smtp")
}
