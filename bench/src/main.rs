//! shardcast-bench: the load generator. `shardcast-bench load --help` lists the flags; the
//! flags and the JSON report's field names are a contract with bench/run.py.

use std::sync::Arc;

use bench::flvfile::FlvFile;
use bench::load::{self, LoadConfig};
use bench::procfs::online_cpus;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "shardcast-bench", about = "Load generator for shardcast")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Publish and play streams, measure delivery, latency and server cost; print a table and
    /// optionally write a JSON report.
    Load(LoadArgs),
}

#[derive(clap::Args, Debug)]
struct LoadArgs {
    /// FLV file (H.264 + AAC) the publishers replay in real time, looped.
    #[arg(long)]
    file: Option<String>,
    /// Publishers (stream indices 0..N-1).
    #[arg(long, default_value_t = 0)]
    publish: usize,
    /// Publish URL template, `{i}` = stream index, e.g. rtmp://127.0.0.1:1935/live/bench{i}.
    #[arg(long)]
    publish_url: Option<String>,
    /// Players.
    #[arg(long, default_value_t = 0)]
    play: usize,
    /// Play URL template (repeatable; player j uses template j % count): rtmp://, http://...flv
    /// (HTTP-FLV), http://...m3u8 (HLS) or tcp://host:port (raw FLV).
    #[arg(long = "play-url")]
    play_url: Vec<String>,
    /// Streams played (player j plays stream j % S); default max(publish, 1).
    #[arg(long)]
    streams: Option<usize>,
    /// Spread the players' connect starts uniformly over this many seconds.
    #[arg(long, default_value_t = 0.0)]
    join_over: f64,
    /// Seconds between the publishers having published and the first player (a GOP gets
    /// cached).
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// Seconds between the last player's connect start and the measurement window.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Seconds of the measurement window.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// glommio executors (unpinned); default: online CPUs.
    #[arg(long)]
    threads: Option<usize>,
    /// Server process to measure (repeatable: values are summed, e.g. nginx workers).
    #[arg(long = "server-pid")]
    server_pid: Vec<u32>,
    /// Label copied into the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<String>,
    /// Players connecting at the same time, per executor.
    #[arg(long, default_value_t = 256)]
    max_connecting: usize,
    /// Seconds allowed from connect to playing (or publishing), and per HLS request.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Size of each executor's read buffer, KiB (shared by all its connections).
    #[arg(long, default_value_t = 256)]
    read_buf_kib: usize,
}

fn main() {
    let cli = Cli::parse();
    let Command::Load(args) = cli.command;
    let file = match &args.file {
        Some(path) => match FlvFile::load(path) {
            Ok(f) => Some(Arc::new(f)),
            Err(e) => fail(&e),
        },
        None => None,
    };
    let cfg = LoadConfig {
        file,
        publish: args.publish,
        publish_url: args.publish_url,
        play: args.play,
        play_urls: args.play_url,
        streams: args.streams.unwrap_or(args.publish.max(1)),
        join_over: args.join_over,
        settle: args.settle,
        warmup: args.warmup,
        duration: args.duration,
        threads: args.threads.unwrap_or_else(online_cpus),
        server_pids: args.server_pid,
        label: args.label,
        max_connecting: args.max_connecting,
        connect_timeout: args.connect_timeout,
        read_buf: args.read_buf_kib.max(4) * 1024,
    };
    let report = match load::run(cfg) {
        Ok(r) => r,
        Err(e) => fail(&e),
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("report serializes");
        if let Err(e) = std::fs::write(path, json + "\n") {
            fail(&format!("write {path}: {e}"));
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // The executors still hold the connections; exiting closes them all at once.
    std::process::exit(0);
}

fn fail(msg: &str) -> ! {
    eprintln!("shardcast-bench: {msg}");
    std::process::exit(2);
}
