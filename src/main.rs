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
    for setting in not_yet_served(&cfg) {
        tracing::warn!("{setting} is set but not served by this version yet; it has no effect");
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

/// Settings livego users may carry over that this version accepts but does not act on yet.
fn not_yet_served(cfg: &Config) -> Vec<&'static str> {
    let checks = [(
        cfg.server.iter().flat_map(|a| &a.static_push).any(|url| {
            url.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("rtmps://"))
        }),
        "static_push to rtmps:// (those targets are skipped)",
    )];
    checks
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
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
