//! Load generator for shardcast. Empty until the benchmark issue lands.
fn main() {
    eprintln!("shardcast-bench: not built yet (see the benchmark issue)");
    std::process::exit(2);
}
