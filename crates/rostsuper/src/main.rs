//! rostsuper: not yet written (see crates/rostsuper/Cargo.toml for its job).

fn main() {
    eprintln!("rostsuper: not implemented yet");
    std::process::exit(1);
}
