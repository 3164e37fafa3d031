//! rostconf: not yet written (see crates/rostconf/Cargo.toml for its job).

fn main() {
    eprintln!("rostconf: not implemented yet");
    std::process::exit(1);
}
