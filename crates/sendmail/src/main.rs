//! sendmail: not yet written (see crates/sendmail/Cargo.toml for its job).

fn main() {
    eprintln!("sendmail: not implemented yet");
    std::process::exit(1);
}
