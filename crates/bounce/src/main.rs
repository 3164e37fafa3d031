//! bounce: not yet written (see crates/bounce/Cargo.toml for its job).

fn main() {
    eprintln!("bounce: not implemented yet");
    std::process::exit(1);
}
