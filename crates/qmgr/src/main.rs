//! qmgr: not yet written (see crates/qmgr/Cargo.toml for its job).

fn main() {
    eprintln!("qmgr: not implemented yet");
    std::process::exit(1);
}
