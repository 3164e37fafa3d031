//! rostfix: not yet written (see crates/rostfix/Cargo.toml for its job).

fn main() {
    eprintln!("rostfix: not implemented yet");
    std::process::exit(1);
}
