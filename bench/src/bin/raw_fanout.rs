//! raw-fanout: the fan-out ceiling. Replays an FLV file (stamped, stream index 0) and writes
//! the same bytes to every connected socket: an FLV header and the sequence headers on
//! accept, then tags from the next keyframe; no HTTP, no protocol. Prints
//! `listening ADDR` once every executor listens. Play it with
//! `shardcast-bench load --play N --play-url tcp://ADDR`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use bench::fanout::{self, FanoutConfig};
use bench::flvfile::FlvFile;
use bench::procfs::online_cpus;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "raw-fanout", about = "Raw FLV fan-out baseline")]
struct Args {
    /// Address to listen on (loopback; port 0 picks one).
    #[arg(long)]
    listen: SocketAddr,
    /// FLV file (H.264 + AAC) replayed in real time, looped.
    #[arg(long)]
    file: String,
    /// glommio executors (unpinned), each listening with SO_REUSEPORT; default: online CPUs.
    #[arg(long)]
    threads: Option<usize>,
    /// A client with more than this many MiB queued is dropped.
    #[arg(long, default_value_t = 4)]
    max_behind_mib: usize,
    /// Stop by itself after this many seconds.
    #[arg(long, default_value_t = 3600.0)]
    exit_after: f64,
}

fn main() {
    let args = Args::parse();
    let file = match FlvFile::load(&args.file) {
        Ok(f) => Arc::new(f),
        Err(e) => fail(&e),
    };
    let cfg = FanoutConfig {
        listen: args.listen,
        file,
        threads: args.threads.unwrap_or_else(online_cpus).max(1),
        max_behind: args.max_behind_mib.max(1) * 1024 * 1024,
        exit_after: args.exit_after,
    };
    let ready = |addr: SocketAddr| {
        println!("listening {addr}");
        let _ = std::io::stdout().flush();
    };
    if let Err(e) = fanout::run(cfg, ready) {
        fail(&e);
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("raw-fanout: {msg}");
    std::process::exit(2);
}
