//! pickup: not yet written (see crates/pickup/Cargo.toml for its job).

fn main() {
    eprintln!("pickup: not implemented yet");
    std::process::exit(1);
}
