//! smtp: not yet written (see crates/smtp/Cargo.toml for its job).

fn main() {
    eprintln!("smtp: not implemented yet");
    std::process::exit(1);
}
