//! rostdrop: not yet written (see crates/rostdrop/Cargo.toml for its job).

fn main() {
    eprintln!("rostdrop: not implemented yet");
    std::process::exit(1);
}
