//! rostqueue: not yet written (see crates/rostqueue/Cargo.toml for its job).

fn main() {
    eprintln!("rostqueue: not implemented yet");
    std::process::exit(1);
}
