//! lmtp: the same delivery agent in LMTP mode, as Postfix's lmtp(8).

#![forbid(unsafe_code)]

fn main() {
    rostfix_smtp::agent::main("lmtp")
}
