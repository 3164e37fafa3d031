//! rostmap: not written yet (issue 5).

fn main() {
    eprintln!("rostmap: not implemented yet");
    std::process::exit(1);
}
