//! lmtp: the same delivery agent in LMTP mode, as Postfix's lmtp(8).

fn main() {
    rostfix_smtp::agent::main("lmtp")
}
