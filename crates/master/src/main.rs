//! master: not yet written (see crates/master/Cargo.toml for its job).

fn main() {
    eprintln!("master: not implemented yet");
    std::process::exit(1);
}
