//! vigil-bench (being written).
fn main() {
    eprintln!("vigil-bench: not built yet");
    std::process::exit(1);
}
