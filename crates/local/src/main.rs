//! local: not yet written (see crates/local/Cargo.toml for its job).

fn main() {
    eprintln!("local: not implemented yet");
    std::process::exit(1);
}
