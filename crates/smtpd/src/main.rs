//! smtpd: not yet written (see crates/smtpd/Cargo.toml for its job).

fn main() {
    eprintln!("smtpd: not implemented yet");
    std::process::exit(1);
}
