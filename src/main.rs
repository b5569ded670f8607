//! shardcast: flags -> Config -> shards -> per-shard servers.

use shardcast::config::{Config, ConfigError};
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let cfg = match Config::load(&args, &|k| std::env::var(k).ok()) {
        Ok(cfg) => cfg,
        Err(ConfigError::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("shardcast: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg.level);
    for note in &cfg.notes {
        tracing::info!("{note}");
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        shards = cfg.shard_count(),
        "starting shardcast"
    );
    match shardcast::serve::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cannot run");
            eprintln!("shardcast: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},glommio=warn"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
