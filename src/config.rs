//! Configuration: embedded defaults, an optional config file, environment variables and flags.
//!
//! Keys, flags and environment variables keep livego's names (`--rtmp_addr`, `GOP_NUM`,
//! `jwt.secret` / `JWT_SECRET`, the `server` app list), so livego command lines, `livego.yaml`
//! files and container environments keep working. Precedence, highest first:
//! command-line flag > environment variable > config file > embedded `config/shardcast.toml`.
//!
//! Every layer is turned into one generic value tree (TOML, YAML and JSON files alike), checked
//! key by key against the embedded defaults (so an error names the key and where it came from),
//! overlaid, then deserialized into [`Config`] and validated. Unlike livego's viper setup, a
//! file is merged over the defaults key by key instead of replacing them (livego.md §1.1, §10.20).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use clap::{error::ErrorKind, Arg, ArgMatches, Command};

use crate::api::jwt::{self, JwtAuth, JwtKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The default configuration, embedded in the binary. Every key is present, with a comment.
pub const DEFAULT_TOML: &str = include_str!("../config/shardcast.toml");

/// A parsed configuration layer: key -> value (TOML, YAML and JSON files alike).
type Tree = Map<String, Value>;

/// livego's default config file, read from the working directory when no file is named.
const LIVEGO_FILE: &str = "livego.yaml";

/// Largest accepted timeout, in seconds (a year): keeps `Instant + timeout` far from overflow.
const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// Largest accepted shard count.
const MAX_SHARDS: u64 = 1024;

/// Every scalar key (dotted for nested tables) with its help text, in the order of
/// config/shardcast.toml. Each is a flag `--key`, an env var (see [`env_name`]) and a file key;
/// its type is the type of its default in [`DEFAULT_TOML`].
const KEYS: &[(&str, &str)] = &[
    ("rtmp_addr", "RTMP listen address (required)"),
    ("httpflv_addr", "HTTP-FLV listen address; empty = off"),
    ("hls_addr", "HLS listen address; empty = off"),
    ("api_addr", "API listen address; empty = off"),
    ("level", "Log level: error, warn, info, debug, trace"),
    (
        "shards",
        "Number of shards (executors); 0 = one per online CPU",
    ),
    ("pin_shards", "Pin each shard to its own CPU when possible"),
    (
        "rtmp_noauth",
        "Publishers use the room name instead of the channel key",
    ),
    (
        "gop_num",
        "GOPs cached per stream for late joiners (0 = none)",
    ),
    (
        "gop_cache_max_bytes",
        "Byte cap of one stream's late-join cache",
    ),
    ("rtmp_chunk_size", "RTMP chunk size we send (128..=65536)"),
    (
        "window_ack_size",
        "RTMP window acknowledgement size we announce",
    ),
    ("read_timeout", "Seconds a silent publisher is kept"),
    (
        "write_timeout",
        "Seconds a player whose socket accepts nothing is kept",
    ),
    (
        "handshake_timeout",
        "Seconds allowed for the RTMP handshake",
    ),
    (
        "idle_timeout",
        "Seconds a connection may stay without publishing or playing",
    ),
    (
        "play_wait_timeout",
        "Seconds a player waits for a publisher",
    ),
    (
        "max_message_size",
        "Largest RTMP message accepted, in bytes",
    ),
    ("max_chunk_size", "Largest chunk size a peer may set"),
    (
        "max_pending_bytes",
        "Incomplete-message bytes buffered per connection",
    ),
    ("max_connections", "Connections per shard per listener"),
    (
        "max_connections_per_ip",
        "Connections from one client address, over every listener (0 = no limit)",
    ),
    ("max_streams", "Streams with a publisher at once"),
    (
        "max_players_per_stream",
        "RTMP and HTTP-FLV players of one stream, over every shard",
    ),
    (
        "max_shard_pending_bytes",
        "Incomplete-message bytes buffered by all of a shard's RTMP connections",
    ),
    ("max_chunk_streams", "RTMP chunk stream ids one connection may use"),
    (
        "player_queue_bytes",
        "Bytes queued per player before skipping to a keyframe",
    ),
    (
        "player_max_skips",
        "Consecutive skips before a lagging player is dropped",
    ),
    (
        "audio_merge_ms",
        "Ms an audio frame may wait to go out with the next video frame",
    ),
    (
        "merge_write_ms",
        "Ms every frame may wait, for one write per player per period (0 = realtime)",
    ),
    ("mesh_capacity", "Cross-shard channel capacity, in messages"),
    (
        "http_max_header_bytes",
        "Largest HTTP request head, in bytes",
    ),
    ("http_max_body_bytes", "Largest HTTP request body, in bytes"),
    (
        "http_header_timeout",
        "Seconds to receive an HTTP request head",
    ),
    (
        "http_keepalive_timeout",
        "Seconds an idle HTTP keep-alive connection is kept",
    ),
    (
        "statics_dir",
        "Directory served at /statics/ on the API listener; empty = off",
    ),
    (
        "redis_addr",
        "Redis for room keys shared by nodes (HOST:PORT or redis://HOST:PORT/DB); empty = in memory",
    ),
    ("redis_pwd", "Redis password"),
    (
        "redis_prefix",
        "Prefix of every Redis key shardcast writes",
    ),
    ("flv_archive", "Record every published stream to flv_dir"),
    ("flv_dir", "Recording directory"),
    (
        "record_max_pending_bytes",
        "Bytes a recording may queue for the disk before skipping to a keyframe",
    ),
    (
        "hls_keep_after_end",
        "Keep HLS playlists after the publisher ends",
    ),
    ("hls_fragment", "Target HLS segment duration, in seconds"),
    ("hls_window", "Segments listed in an HLS playlist"),
    (
        "hls_grace",
        "Segments still served after they leave the playlist",
    ),
    (
        "hls_linger",
        "Seconds an ended stream's HLS waits for a republish",
    ),
    ("enable_rtmps", "Serve RTMPS instead of RTMP on rtmp_addr"),
    ("rtmps_cert", "RTMPS certificate file (PEM)"),
    ("rtmps_key", "RTMPS private key file (PEM)"),
    (
        "enable_tls_verify",
        "Verify certificates of outgoing rtmps:// relays and https:// hooks",
    ),
    ("use_hls_https", "Serve HLS over HTTPS"),
    ("hls_cert", "HLS HTTPS certificate chain file (PEM)"),
    ("hls_key", "HLS HTTPS private key file (PEM)"),
    (
        "jwt.secret",
        "API JWT secret (HS256, HS384, HS512); empty = none",
    ),
    (
        "jwt.public_key",
        "PEM public key file verifying API JWTs (RS*, PS*, ES256, ES384, EdDSA); empty = none",
    ),
    (
        "jwt.algorithm",
        "API JWT algorithm; empty = HS256, or inferred from jwt.public_key",
    ),
    (
        "hooks.timeout_ms",
        "Milliseconds a hook call may take before it counts as failed",
    ),
    (
        "hooks.max_in_flight",
        "Hook calls in flight at once per shard",
    ),
    (
        "hooks.connect_failure",
        "A failed on_connect call: deny or allow",
    ),
    (
        "hooks.publish_failure",
        "A failed on_publish call: deny or allow",
    ),
    ("hooks.play_failure", "A failed on_play call: deny or allow"),
    (
        "hooks.hls_session_secs",
        "Seconds an HLS viewer's hook authorization lasts",
    ),
    (
        "hooks.max_hls_sessions",
        "HLS viewers allowed by on_play tracked at once (until their on_stop)",
    ),
    (
        "hooks.server_id",
        "This node's id in hook calls; empty = the host name",
    ),
    (
        "hooks.update_secs",
        "Seconds between two on_update calls of one RTMP or HTTP-FLV session",
    ),
    (
        "hooks.hls_session_key",
        "Secret that signs HLS session ids, the same on every node; empty = random per process",
    ),
];

/// Text after the flag list of `--help`.
const AFTER_HELP: &str = "\
Every flag is also an environment variable: the key upper-cased, `.` -> `_` (RTMP_ADDR,
JWT_SECRET); an empty value counts (API_ADDR= turns the API off).
Precedence: flag > environment variable > config file > built-in default.
The config file (TOML, YAML or JSON) is merged over the defaults key by key; only the file
can set the app list (`server`). Reference: docs/CONFIG.md.";

/// The whole server configuration. Field meanings: config/shardcast.toml and docs/CONFIG.md.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// RTMP listener (livego syntax, see [`parse_listen_addr`]); never empty.
    pub rtmp_addr: String,
    /// HTTP-FLV listener; empty = off.
    pub httpflv_addr: String,
    /// HLS listener; empty = off.
    pub hls_addr: String,
    /// API listener; empty = off.
    pub api_addr: String,
    /// Log level, normalized to error|warn|info|debug|trace.
    pub level: String,
    /// Shard count; 0 = number of online CPUs (see [`Config::shard_count`]).
    pub shards: usize,
    /// Pin executors to CPUs when the machine allows.
    pub pin_shards: bool,
    /// Recording directory.
    pub flv_dir: String,
    /// Record every published stream.
    pub flv_archive: bool,
    /// Bytes a recording may have queued for the disk; past it, frames are skipped up to the
    /// next keyframe.
    pub record_max_pending_bytes: usize,
    /// GOPs in the late-join cache.
    pub gop_num: usize,
    /// Byte cap of one stream's late-join cache.
    pub gop_cache_max_bytes: usize,
    /// Seconds a silent publisher is kept.
    pub read_timeout: u64,
    /// Seconds a player whose socket accepts nothing is kept.
    pub write_timeout: u64,
    /// Seconds allowed for the RTMP handshake.
    pub handshake_timeout: u64,
    /// Seconds a connection may stay without publishing or playing.
    pub idle_timeout: u64,
    /// Seconds a player waits for a (next) publisher.
    pub play_wait_timeout: u64,
    /// Keep HLS playlists after the publisher ends.
    pub hls_keep_after_end: bool,
    /// Target segment duration in seconds (cuts happen at the first keyframe after it).
    pub hls_fragment: u64,
    /// Segments listed in a playlist.
    pub hls_window: usize,
    /// Segments that stay fetchable after leaving the playlist.
    pub hls_grace: usize,
    /// Seconds an ended stream's playlist stays (without ENDLIST) waiting for a republish.
    pub hls_linger: u64,
    /// Publishers use the room name instead of the channel key.
    pub rtmp_noauth: bool,
    /// Chunk size we send after connect (128..=65536).
    pub rtmp_chunk_size: u32,
    /// Window acknowledgement size we announce.
    pub window_ack_size: u32,
    /// Largest RTMP message accepted (at most 24-bit).
    pub max_message_size: u32,
    /// Largest peer SetChunkSize accepted.
    pub max_chunk_size: u32,
    /// Incomplete-message bytes per connection (at least `max_message_size`).
    pub max_pending_bytes: usize,
    /// Connections per shard per listener.
    pub max_connections: usize,
    /// Connections from one client address over every listener and shard; 0 = no limit.
    pub max_connections_per_ip: usize,
    /// Streams with a publisher, process-wide.
    pub max_streams: usize,
    /// RTMP and HTTP-FLV players of one stream, process-wide.
    pub max_players_per_stream: usize,
    /// Incomplete-message bytes of all of one shard's RTMP connections together.
    pub max_shard_pending_bytes: usize,
    /// Distinct RTMP chunk stream ids per connection.
    pub max_chunk_streams: usize,
    /// Per-player queued bytes before skipping to the next keyframe.
    pub player_queue_bytes: usize,
    /// Consecutive keyframe skips before a lagging player is disconnected.
    pub player_max_skips: u32,
    /// Milliseconds an audio frame may wait for the next video frame (0 = no merging).
    pub audio_merge_ms: u64,
    /// Milliseconds every frame may wait for the player's next write (0 = realtime).
    pub merge_write_ms: u64,
    /// Cross-shard channel capacity in messages.
    pub mesh_capacity: usize,
    /// Largest HTTP request head.
    pub http_max_header_bytes: usize,
    /// Largest HTTP request body.
    pub http_max_body_bytes: usize,
    /// Seconds to receive a full HTTP request head.
    pub http_header_timeout: u64,
    /// Seconds an idle keep-alive connection is kept.
    pub http_keepalive_timeout: u64,
    /// Directory served at `/statics/` on the API listener; empty = off.
    pub statics_dir: String,
    /// Redis for room keys (`HOST:PORT` or `redis://` URL, see
    /// [`crate::keys::RedisTarget::parse`]); empty = in memory.
    pub redis_addr: String,
    /// Redis password.
    pub redis_pwd: String,
    /// Prefix of every Redis key shardcast writes (`{prefix}room:…`, `{prefix}key:…`).
    pub redis_prefix: String,
    /// Serve RTMPS on `rtmp_addr`.
    pub enable_rtmps: bool,
    /// RTMPS certificate (PEM path).
    pub rtmps_cert: String,
    /// RTMPS private key (PEM path).
    pub rtmps_key: String,
    /// Verify certificates of outgoing rtmps:// relays and https:// hooks.
    pub enable_tls_verify: bool,
    /// Serve HLS over HTTPS.
    pub use_hls_https: bool,
    /// Certificate chain (PEM) for HLS over HTTPS (livego hard-coded `server.crt`).
    pub hls_cert: String,
    /// Private key (PEM) for HLS over HTTPS (livego hard-coded `server.key`).
    pub hls_key: String,
    /// API authentication (`[jwt]`).
    pub jwt: Jwt,
    /// HTTP hooks (`[hooks]`): default URLs, timeout, bound and failure policy.
    pub hooks: Hooks,
    /// Applications (livego's `server` list).
    pub server: Vec<App>,
    /// Things worth logging at start-up (file read, warnings); not a config key.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// API authentication settings (`[jwt]`). With `secret` or `public_key` set, every API
/// request needs a valid token (see [`crate::api::jwt`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Jwt {
    /// Non-empty: tokens are HMAC-signed (HS256, HS384, HS512) with this secret.
    pub secret: String,
    /// The one algorithm tokens must use, normalized (`RS256`, `EdDSA`...). Empty in the
    /// sources means HS256 with a secret, or the public key's natural algorithm.
    pub algorithm: String,
    /// Non-empty: path of a PEM public key; tokens are signed with its private key.
    pub public_key: String,
    /// The text of `public_key`, read while loading; not a config key.
    #[serde(skip)]
    pub public_key_pem: String,
}

impl Jwt {
    /// The API's token check, `None` when neither `secret` nor `public_key` is set. Expects a
    /// loaded config (which has read the key file); errors otherwise, never panics.
    pub fn auth(&self) -> Result<Option<JwtAuth>, String> {
        let key = if !self.public_key.is_empty() {
            JwtKey::PublicPem(&self.public_key_pem)
        } else if !self.secret.is_empty() {
            JwtKey::Secret(self.secret.as_bytes())
        } else {
            return Ok(None);
        };
        JwtAuth::new(&self.algorithm, key).map(Some)
    }
}

/// HTTP hooks (`[hooks]`, see [`crate::hooks`]). The URL lists apply to every app whose
/// `server` entry lists none of its own for that action.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// RTMP `connect` (decides).
    pub on_connect: Vec<String>,
    /// A publish (decides; may map the name to a room).
    pub on_publish: Vec<String>,
    /// A publish ended (notification).
    pub on_unpublish: Vec<String>,
    /// A play over RTMP, HTTP-FLV or HLS (decides).
    pub on_play: Vec<String>,
    /// A play ended (notification).
    pub on_stop: Vec<String>,
    /// A recording's file was closed (notification).
    pub on_record_done: Vec<String>,
    /// A running RTMP publish or play, or HTTP-FLV play, asked again every `update_secs`
    /// (decides: a refusal ends it).
    pub on_update: Vec<String>,
    /// Seconds between two `on_update` calls of one publish or play.
    pub update_secs: u64,
    /// Milliseconds one call may take (connect, request, answer).
    pub timeout_ms: u64,
    /// Calls in flight at once per shard; a decision waits for a slot (within the timeout), a
    /// notification beyond it is dropped and counted.
    pub max_in_flight: usize,
    /// `deny` or `allow`: what a failed (timed out, unreachable, garbled) on_connect means.
    pub connect_failure: String,
    /// Same for on_publish.
    pub publish_failure: String,
    /// Same for on_play.
    pub play_failure: String,
    /// Seconds an HLS viewer's authorization (its session id) lasts.
    pub hls_session_secs: u64,
    /// HLS viewers allowed by `on_play` and followed until their `on_stop`, process-wide; a
    /// new HLS viewer beyond it is refused (503).
    pub max_hls_sessions: usize,
    /// Identifies this node in hook bodies; empty = the host name.
    pub server_id: String,
    /// Signs HLS `?hls_session=` ids. Nodes behind one load balancer set the same secret so
    /// each accepts the others' ids; empty = a random key per process.
    pub hls_session_key: String,
}

impl Hooks {
    /// Whether a failed call of a deciding `action` allows (`*_failure = "allow"`).
    pub fn allows_on_failure(&self, action: crate::hooks::Action) -> bool {
        use crate::hooks::Action;
        let policy = match action {
            Action::Connect => &self.connect_failure,
            Action::Publish => &self.publish_failure,
            Action::Play => &self.play_failure,
            _ => return true,
        };
        policy == "allow"
    }

    /// The default URL list of `action`.
    pub fn urls(&self, action: crate::hooks::Action) -> &[String] {
        use crate::hooks::Action;
        match action {
            Action::Connect => &self.on_connect,
            Action::Publish => &self.on_publish,
            Action::Unpublish => &self.on_unpublish,
            Action::Play => &self.on_play,
            Action::Stop => &self.on_stop,
            Action::RecordDone => &self.on_record_done,
            Action::Update => &self.on_update,
        }
    }
}

/// One application, the first path segment of `rtmp://host/{app}/{room}` (livego's
/// `Application`). Keys absent from a file entry default to false / empty, as in livego.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct App {
    /// The app name; unique, non-empty, no `/`.
    pub appname: String,
    /// Accept RTMP publish and play for this app.
    pub live: bool,
    /// Serve this app over HLS.
    pub hls: bool,
    /// Serve this app over HTTP-FLV.
    pub flv: bool,
    /// Serve this app through the API.
    pub api: bool,
    /// RTMP base URLs every publish is re-published to (`{url}/{room}`).
    pub static_push: Vec<String>,
    /// Record this app's streams to `flv_dir` (`flv_archive` records every app).
    pub record: bool,
    /// Hook URLs of this app; an empty list means `[hooks]`'s (see [`Config::hook_urls`]).
    pub on_connect: Vec<String>,
    pub on_publish: Vec<String>,
    pub on_unpublish: Vec<String>,
    pub on_play: Vec<String>,
    pub on_stop: Vec<String>,
    pub on_record_done: Vec<String>,
    pub on_update: Vec<String>,
}

impl App {
    /// This app's own URL list for `action` (empty: it uses `[hooks]`'s).
    pub fn hook_urls(&self, action: crate::hooks::Action) -> &[String] {
        use crate::hooks::Action;
        match action {
            Action::Connect => &self.on_connect,
            Action::Publish => &self.on_publish,
            Action::Unpublish => &self.on_unpublish,
            Action::Play => &self.on_play,
            Action::Stop => &self.on_stop,
            Action::RecordDone => &self.on_record_done,
            Action::Update => &self.on_update,
        }
    }
}

/// Why the configuration could not be loaded. `Display` names the culprit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `--help` or `--version`: print the text to stdout and exit with status 0.
    Help(String),
    /// The command line could not be parsed (unknown flag, missing value); clap's message.
    Args(String),
    /// The config file could not be read or parsed.
    File { path: String, reason: String },
    /// The config file has a key shardcast does not know.
    UnknownKey { key: String, path: String },
    /// A value has the wrong type or is invalid; `at` names the flag, env var or file key.
    Value { at: String, reason: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Help(text) | ConfigError::Args(text) => f.write_str(text),
            ConfigError::File { path, reason } => write!(f, "{path}: {reason}"),
            ConfigError::UnknownKey { key, path } => write!(f, "unknown key `{key}` in {path}"),
            ConfigError::Value { at, reason } => write!(f, "{at}: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Load with precedence: command-line flag > environment variable > config file > embedded
    /// defaults. `args` are the process args (including argv[0]); `env` looks up a variable.
    pub fn load(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Self::load_with(args, env, &|path| std::fs::read_to_string(path))
    }

    /// [`Config::load`] with the file reader supplied (tests pass an in-memory one).
    pub fn load_with(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&Path) -> io::Result<String>,
    ) -> Result<Config, ConfigError> {
        let defaults = default_tree()?;
        let matches = command(&defaults)
            .try_get_matches_from(args)
            .map_err(clap_error)?;
        let mut notes = Vec::new();
        let mut layers = Layers::new(defaults);
        if let Some((path, file)) = config_file(&matches, env, read, &mut notes)? {
            layers.merge_file(file, &path)?;
        }
        layers.apply_env(env)?;
        layers.apply_flags(&matches)?;
        let mut config = layers.deserialize()?;
        notes.extend(validate(&mut config, &layers.origins)?);
        notes.extend(check_jwt(&mut config.jwt, &layers.origins, read)?);
        config.notes = notes;
        Ok(config)
    }

    /// The app named `name`, whichever entry it is (livego only ever consulted the first).
    pub fn app(&self, name: &str) -> Option<&App> {
        self.server.iter().find(|app| app.appname == name)
    }

    /// The hook URLs of `action` for `app`: the app's own list when it has one, else
    /// `[hooks]`'s; empty when no hook is configured (or the app is unknown).
    pub fn hook_urls(&self, app: &str, action: crate::hooks::Action) -> &[String] {
        match self.app(app).map(|a| a.hook_urls(action)) {
            Some(own) if !own.is_empty() => own,
            Some(_) => self.hooks.urls(action),
            None => &[],
        }
    }

    /// How long an HLS viewer counts as watching after its last request: it leaves
    /// `/stat/livestat`, and its hook session ends (`on_stop`). hls.js and Safari reload a
    /// live playlist about once per target duration; three missed reloads, plus slack for a
    /// slow link, mean it is gone.
    pub fn hls_viewer_idle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.hls_fragment * 3 + 5)
    }

    /// The number of shards to run: `shards`, or the number of online CPUs when it is 0.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl Default for Config {
    /// The embedded defaults, as loaded with no flag, environment variable or file.
    fn default() -> Self {
        let no_file = |_: &Path| Err(io::Error::from(io::ErrorKind::NotFound));
        Config::load_with(&["shardcast".to_owned()], &|_| None, &no_file)
            .expect("the embedded config/shardcast.toml is valid (unit-tested)")
    }
}

/// Parse a livego-style listen address: `:1935` (all IPv4 interfaces), `127.0.0.1:1935`,
/// `[::1]:1935`, `localhost:1935` (127.0.0.1; no other host name is resolved); `""` = disabled.
pub fn parse_listen_addr(s: &str) -> Result<Option<SocketAddr>, ConfigError> {
    listen_addr(s).map_err(|reason| ConfigError::Value {
        at: "listen address".to_owned(),
        reason,
    })
}

fn listen_addr(s: &str) -> Result<Option<SocketAddr>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    let bad = || format!("`{s}` is not a listen address (use :PORT, IP:PORT or [IPv6]:PORT)");
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(match s.parse::<u16>() {
            Ok(_) => format!("`{s}` is not a listen address (did you mean `:{s}`?)"),
            Err(_) => bad(),
        });
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip = match host {
        "" => Ipv4Addr::UNSPECIFIED,
        "localhost" => Ipv4Addr::LOCALHOST,
        _ if host.contains(':') => return Err(bad()),
        _ => {
            return Err(format!(
                "`{s}`: only IP addresses and `localhost` are accepted, not host names"
            ))
        }
    };
    Ok(Some(SocketAddr::new(ip.into(), port)))
}

/// The environment variable of a key: upper-cased, `.` -> `_` (viper's replacer in livego).
fn env_name(key: &str) -> String {
    key.replace('.', "_").to_ascii_uppercase()
}

/// The embedded defaults as a value tree.
fn default_tree() -> Result<Tree, ConfigError> {
    parse_text("toml", DEFAULT_TOML).map_err(|reason| ConfigError::File {
        path: "embedded config/shardcast.toml".to_owned(),
        reason,
    })
}

/// The command line: one flag per key in [`KEYS`] plus `--config_file`.
fn command(defaults: &Tree) -> Command {
    let config_file = Arg::new("config_file")
        .long("config_file")
        .value_name("PATH")
        .help("Config file (.toml, .yaml, .yml, .json); empty = none [default: livego.yaml if present] [env: CONFIG_FILE]");
    let flags = KEYS
        .iter()
        .map(|&(key, help)| flag(key, help, get_path(defaults, key)));
    Command::new("shardcast")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Live-streaming server: RTMP in; RTMP, HTTP-FLV and HLS out; livego-compatible API")
        .after_help(AFTER_HELP)
        .args_override_self(true)
        .arg(config_file)
        .args(flags)
}

/// One flag. Booleans follow pflag: `--key` means true, `--key=false` sets false.
fn flag(key: &'static str, help: &str, default: Option<&Value>) -> Arg {
    let shown = match default {
        Some(Value::String(s)) if s.is_empty() => "\"\"".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let arg = Arg::new(key).long(key).help(format!(
        "{help} [default: {shown}] [env: {}]",
        env_name(key)
    ));
    match default {
        Some(Value::Bool(_)) => arg
            .value_name("BOOL")
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true"),
        Some(Value::Number(_)) => arg.value_name("N"),
        _ => arg.value_name("VALUE").allow_hyphen_values(true),
    }
}

/// Map clap's outcome: help and version become [`ConfigError::Help`].
fn clap_error(err: clap::Error) -> ConfigError {
    let text = err.render().to_string();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ConfigError::Help(text),
        _ => ConfigError::Args(text.trim_start_matches("error: ").trim_end().to_owned()),
    }
}

/// Read and parse the config file: `--config_file`, else `CONFIG_FILE`, else `./livego.yaml`
/// when it exists (livego's default). An empty name means no file at all.
fn config_file(
    matches: &ArgMatches,
    env: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&Path) -> io::Result<String>,
    notes: &mut Vec<String>,
) -> Result<Option<(String, Tree)>, ConfigError> {
    let named = matches
        .get_one::<String>("config_file")
        .cloned()
        .or_else(|| env("CONFIG_FILE"));
    let file_error = |path: &str, reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let (path, text) = match named {
        Some(path) if path.is_empty() => return Ok(None),
        Some(path) => match read(Path::new(&path)) {
            Ok(text) => (path, text),
            Err(e) => return Err(file_error(&path, e.to_string())),
        },
        None => match read(Path::new(LIVEGO_FILE)) {
            Ok(text) => (LIVEGO_FILE.to_owned(), text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(file_error(LIVEGO_FILE, e.to_string())),
        },
    };
    let extension = Path::new(&path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let tree =
        parse_text(&extension.to_ascii_lowercase(), &text).map_err(|r| file_error(&path, r))?;
    notes.push(format!("read config file {path}"));
    Ok(Some((path, tree)))
}

/// Parse a file's text by its extension into a value tree (an empty document is empty).
fn parse_text(extension: &str, text: &str) -> Result<Tree, String> {
    let value: Value = match extension {
        "toml" => toml::from_str(text).map_err(|e| e.to_string())?,
        "yaml" | "yml" => serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?,
        "json" => serde_json::from_str(text).map_err(|e| e.to_string())?,
        _ => {
            return Err("unsupported config file type (use .toml, .yaml, .yml or .json)".to_owned())
        }
    };
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(format!(
            "expected keys at the top level, got {}",
            type_name(&other)
        )),
    }
}

/// Where a key's value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    File(String),
    Env,
    Flag,
}

/// The origin of each key that did not keep its default.
#[derive(Debug, Default)]
struct Origins(HashMap<String, Origin>);

impl Origins {
    /// An error about `key`, labelled with where its value came from.
    fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        let at = match self.0.get(key) {
            None => format!("`{key}` (built-in default)"),
            Some(Origin::File(path)) => format!("`{key}` in {path}"),
            Some(Origin::Env) => env_name(key),
            Some(Origin::Flag) => format!("--{key}"),
        };
        ConfigError::Value {
            at,
            reason: reason.into(),
        }
    }
}

/// The value tree being built, layer over layer, with the defaults as the schema.
struct Layers {
    defaults: Tree,
    tree: Tree,
    origins: Origins,
}

impl Layers {
    fn new(defaults: Tree) -> Self {
        let tree = defaults.clone();
        Layers {
            defaults,
            tree,
            origins: Origins::default(),
        }
    }

    /// Overlay a file key by key. Null values (a YAML key without value) are skipped;
    /// `server` replaces the whole app list.
    fn merge_file(&mut self, file: Tree, path: &str) -> Result<(), ConfigError> {
        let mut leaves = Vec::new();
        flatten(file, &self.defaults, "", &mut leaves);
        for (key, value) in leaves.into_iter().filter(|(_, v)| !v.is_null()) {
            let Some(default) = get_path(&self.defaults, &key) else {
                return Err(ConfigError::UnknownKey {
                    key,
                    path: path.to_owned(),
                });
            };
            let value = match default {
                Value::Array(_) if key == "server" => check_apps(value),
                Value::Array(_) => check_strings(value),
                _ => check_type(default, &value).map(|()| value),
            };
            let value = value.map_err(|reason| ConfigError::Value {
                at: format!("`{key}` in {path}"),
                reason,
            })?;
            self.set(&key, value, Origin::File(path.to_owned()));
        }
        Ok(())
    }

    /// Overlay the environment variables of the scalar keys (empty values count).
    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for &(key, _) in KEYS {
            let name = env_name(key);
            if let Some(text) = env(&name) {
                self.set_text(key, &text, Origin::Env, format!("{name}={text}"))?;
            }
        }
        Ok(())
    }

    /// Overlay the flags given on the command line.
    fn apply_flags(&mut self, matches: &ArgMatches) -> Result<(), ConfigError> {
        for &(key, _) in KEYS {
            if let Some(text) = matches.get_one::<String>(key) {
                self.set_text(key, text, Origin::Flag, format!("--{key}={text}"))?;
            }
        }
        Ok(())
    }

    /// Set a scalar key from text, converted to the type of its default.
    fn set_text(
        &mut self,
        key: &str,
        text: &str,
        origin: Origin,
        at: String,
    ) -> Result<(), ConfigError> {
        let default = get_path(&self.defaults, key).unwrap_or(&Value::Null);
        let value = from_text(default, text).map_err(|reason| ConfigError::Value {
            at,
            reason: reason.to_owned(),
        })?;
        self.set(key, value, origin);
        Ok(())
    }

    fn set(&mut self, key: &str, value: Value, origin: Origin) {
        set_path(&mut self.tree, key, value);
        self.origins.0.insert(key.to_owned(), origin);
    }

    /// Deserialize the merged tree. The checks above leave only integer ranges to fail here
    /// (e.g. 5000000000 for a u32); the culprit is found by trying each key alone.
    fn deserialize(&self) -> Result<Config, ConfigError> {
        let whole = serde_json::from_value(Value::Object(self.tree.clone()));
        whole.map_err(|err| {
            let culprit = self.tree.iter().find(|&(key, value)| {
                let mut probe = self.defaults.clone();
                probe.insert(key.clone(), value.clone());
                serde_json::from_value::<Config>(Value::Object(probe)).is_err()
            });
            let key = culprit.map_or("configuration", |(key, _)| key.as_str());
            self.origins.error(key, err.to_string())
        })
    }
}

/// Flatten nested tables into dotted keys where the defaults have a table too
/// (`{jwt: {secret: x}}` -> `jwt.secret`), so a file can set one key of `[jwt]`.
fn flatten(map: Tree, defaults: &Tree, prefix: &str, out: &mut Vec<(String, Value)>) {
    for (name, value) in map {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match (value, defaults.get(&name)) {
            (Value::Object(inner), Some(Value::Object(inner_defaults))) => {
                flatten(inner, inner_defaults, &key, out)
            }
            (value, _) => out.push((key, value)),
        }
    }
}

fn get_path<'a>(tree: &'a Tree, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        Some((head, rest)) => get_path(tree.get(head)?.as_object()?, rest),
        None => tree.get(key),
    }
}

fn set_path(tree: &mut Tree, key: &str, value: Value) {
    match key.split_once('.') {
        Some((head, rest)) => {
            if let Some(Value::Object(inner)) = tree.get_mut(head) {
                set_path(inner, rest, value);
            }
        }
        None => {
            tree.insert(key.to_owned(), value);
        }
    }
}

/// How a value's type is named in messages; two values with the same name have the same type.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "an integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a float",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

fn check_type(default: &Value, value: &Value) -> Result<(), String> {
    let (want, got) = (type_name(default), type_name(value));
    if want == got {
        Ok(())
    } else {
        Err(format!("expected {want}, got {got}"))
    }
}

/// Convert flag or env text to the type of `default`. Booleans accept Go's
/// `strconv.ParseBool` spellings, as livego (pflag, viper) did.
fn from_text(default: &Value, text: &str) -> Result<Value, &'static str> {
    match default {
        Value::Bool(_) => match text {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Value::Bool(false)),
            _ => Err("expected a boolean (true or false)"),
        },
        Value::Number(_) => text
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| "expected a non-negative integer"),
        _ => Ok(Value::String(text.to_owned())),
    }
}

/// Check a file's `server` list: a list of tables whose keys and types are those of [`App`].
/// Null fields are dropped so they take the [`App`] default.
fn check_apps(value: Value) -> Result<Value, String> {
    let Value::Array(entries) = value else {
        return Err(format!(
            "expected a list of apps, got {}",
            type_name(&value)
        ));
    };
    let shape = match serde_json::to_value(App::default()) {
        Ok(Value::Object(shape)) => shape,
        _ => Map::new(),
    };
    let entries = entries.into_iter().enumerate().map(|(i, entry)| {
        check_app(entry, &shape).map_err(|reason| format!("entry {}: {reason}", i + 1))
    });
    entries.collect::<Result<Vec<_>, _>>().map(Value::Array)
}

/// A list of strings (the hook URL lists of `[hooks]`).
fn check_strings(value: Value) -> Result<Value, String> {
    match &value {
        Value::Array(items) => match items.iter().find(|v| !v.is_string()) {
            Some(item) => Err(format!(
                "expected a list of strings, got {} in it",
                type_name(item)
            )),
            None => Ok(value),
        },
        other => Err(format!(
            "expected a list of strings, got {}",
            type_name(other)
        )),
    }
}

fn check_app(entry: Value, shape: &Tree) -> Result<Value, String> {
    let Value::Object(fields) = entry else {
        return Err(format!("expected a table, got {}", type_name(&entry)));
    };
    let mut app = Map::new();
    for (key, value) in fields.into_iter().filter(|(_, v)| !v.is_null()) {
        let default = shape
            .get(&key)
            .ok_or_else(|| format!("unknown key `{key}`"))?;
        check_type(default, &value).map_err(|reason| format!("`{key}`: {reason}"))?;
        if let Some(item) = value
            .as_array()
            .and_then(|items| items.iter().find(|v| !v.is_string()))
        {
            return Err(format!(
                "`{key}`: expected a list of strings, got {} in it",
                type_name(item)
            ));
        }
        app.insert(key, value);
    }
    Ok(Value::Object(app))
}

/// Check the merged configuration and normalize `level`. Returns warnings that do not stop
/// start-up. (`[jwt]` is checked by [`check_jwt`], which reads the key file.)
fn validate(config: &mut Config, origins: &Origins) -> Result<Vec<String>, ConfigError> {
    check_listeners(config, origins)?;
    config.level = normalize_level(&config.level)
        .ok_or_else(|| {
            origins.error(
                "level",
                format!(
                    "`{}` is not a log level (error, warn, info, debug, trace)",
                    config.level
                ),
            )
        })?
        .to_owned();
    check_ranges(config, origins)?;
    check_files(config, origins)?;
    check_app_list(&config.server, origins)?;
    check_redis(config, origins)?;
    check_hooks(config, origins)?;
    let mut notes = Vec::new();
    if config.redis_addr.is_empty() && !config.redis_pwd.is_empty() {
        notes.push("redis_pwd is set but redis_addr is empty: room keys stay in memory".to_owned());
    }
    if !config.server.iter().any(|app| app.live) {
        notes
            .push("no app has live = true: every RTMP publish and play will be refused".to_owned());
    }
    Ok(notes)
}

/// Every listener parses, `rtmp_addr` is set, and no two listeners share a port.
fn check_listeners(config: &Config, origins: &Origins) -> Result<(), ConfigError> {
    let listeners = [
        ("rtmp_addr", &config.rtmp_addr),
        ("httpflv_addr", &config.httpflv_addr),
        ("hls_addr", &config.hls_addr),
        ("api_addr", &config.api_addr),
    ];
    let mut bound: Vec<(&str, SocketAddr)> = Vec::new();
    for (key, text) in listeners {
        let Some(addr) = listen_addr(text).map_err(|reason| origins.error(key, reason))? else {
            if key == "rtmp_addr" {
                return Err(origins.error(key, "must not be empty: the RTMP listener is required"));
            }
            continue;
        };
        if let Some((other, _)) = bound.iter().find(|(_, b)| overlaps(*b, addr)) {
            return Err(origins.error(key, format!("`{text}` overlaps {other} (same port)")));
        }
        bound.push((key, addr));
    }
    Ok(())
}

/// Whether two listeners would fight for the same socket (port 0 never does).
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    let same_ip = a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified();
    a.port() != 0 && a.port() == b.port() && a.is_ipv4() == b.is_ipv4() && same_ip
}

/// logrus level names (case-insensitive) to ours; livego's panic and fatal mean error.
fn normalize_level(level: &str) -> Option<&'static str> {
    match level.to_ascii_lowercase().as_str() {
        "panic" | "fatal" | "error" => Some("error"),
        "warn" | "warning" => Some("warn"),
        "info" => Some("info"),
        "debug" => Some("debug"),
        "trace" => Some("trace"),
        _ => None,
    }
}

/// Shortest `jwt.secret` not warned about: HS256's key length (RFC 7518 §3.2).
const MIN_SECRET_BYTES: usize = 32;

/// Check `[jwt]`: one key source at most, an algorithm that fits it, and (with `public_key`) a
/// readable, usable PEM public key, whose text is kept. Normalizes `algorithm`: empty means
/// HS256 with a secret (livego) and the key's natural algorithm with a public key.
fn check_jwt(
    cfg: &mut Jwt,
    origins: &Origins,
    read: &dyn Fn(&Path) -> io::Result<String>,
) -> Result<Vec<String>, ConfigError> {
    let named = match cfg.algorithm.as_str() {
        "" => None,
        name => Some(jwt::normalize_algorithm(name).ok_or_else(|| {
            let supported = jwt::ALGORITHMS.join(", ");
            origins.error(
                "jwt.algorithm",
                format!("`{name}` is not supported ({supported})"),
            )
        })?),
    };
    if !cfg.secret.is_empty() && !cfg.public_key.is_empty() {
        return Err(origins.error(
            "jwt.public_key",
            "set either jwt.secret or jwt.public_key, not both",
        ));
    }
    if cfg.public_key.is_empty() {
        return check_jwt_secret(cfg, named, origins);
    }
    let path = cfg.public_key.clone();
    let key_error = |reason: String| origins.error("jwt.public_key", format!("{path}: {reason}"));
    let pem = read(Path::new(&path)).map_err(|e| key_error(e.to_string()))?;
    let kind = jwt::public_key_kind(&pem).map_err(key_error)?;
    let algorithm = named.unwrap_or(kind.default_algorithm());
    cfg.algorithm = algorithm.to_owned();
    cfg.public_key_pem = pem;
    match cfg.auth() {
        Ok(_) => Ok(Vec::new()),
        Err(reason) if jwt::is_hmac(algorithm) || !kind.fits(algorithm) => {
            Err(origins.error("jwt.algorithm", reason))
        }
        Err(reason) => Err(key_error(reason)),
    }
}

/// `[jwt]` without a public key: an HMAC algorithm (HS256 when empty).
fn check_jwt_secret(
    cfg: &mut Jwt,
    named: Option<&'static str>,
    origins: &Origins,
) -> Result<Vec<String>, ConfigError> {
    let algorithm = named.unwrap_or("HS256");
    if !jwt::is_hmac(algorithm) {
        return Err(origins.error(
            "jwt.algorithm",
            format!("{algorithm} needs jwt.public_key (a PEM public key file)"),
        ));
    }
    cfg.algorithm = algorithm.to_owned();
    let mut notes = Vec::new();
    if !cfg.secret.is_empty() && cfg.secret.len() < MIN_SECRET_BYTES {
        notes.push(format!(
            "jwt.secret is shorter than {MIN_SECRET_BYTES} bytes: tokens signed with it can be \
             brute-forced offline"
        ));
    }
    Ok(notes)
}

/// Numeric keys and their accepted ranges (unsigned keys not listed accept any value).
fn check_ranges(c: &Config, origins: &Origins) -> Result<(), ConfigError> {
    let at_least_one = [
        ("window_ack_size", u64::from(c.window_ack_size)),
        ("max_connections", c.max_connections as u64),
        ("max_streams", c.max_streams as u64),
        ("max_players_per_stream", c.max_players_per_stream as u64),
        ("player_queue_bytes", c.player_queue_bytes as u64),
        (
            "record_max_pending_bytes",
            c.record_max_pending_bytes as u64,
        ),
        ("mesh_capacity", c.mesh_capacity as u64),
        ("http_max_header_bytes", c.http_max_header_bytes as u64),
    ];
    let timeouts = [
        ("read_timeout", c.read_timeout),
        ("write_timeout", c.write_timeout),
        ("handshake_timeout", c.handshake_timeout),
        ("idle_timeout", c.idle_timeout),
        ("play_wait_timeout", c.play_wait_timeout),
        ("http_header_timeout", c.http_header_timeout),
        ("http_keepalive_timeout", c.http_keepalive_timeout),
    ];
    let max_message = u64::from(c.max_message_size);
    let bounded = [
        ("shards", c.shards as u64, 0, MAX_SHARDS),
        ("rtmp_chunk_size", c.rtmp_chunk_size.into(), 128, 65536),
        ("max_message_size", max_message, 1, 0xFF_FFFF),
        ("max_chunk_size", c.max_chunk_size.into(), 128, 0x7FFF_FFFF),
        ("hls_fragment", c.hls_fragment, 1, 60),
        ("audio_merge_ms", c.audio_merge_ms, 0, 1000),
        ("merge_write_ms", c.merge_write_ms, 0, 1000),
        ("hls_window", c.hls_window as u64, 1, 100),
        ("hls_grace", c.hls_grace as u64, 0, 100),
        ("hls_linger", c.hls_linger, 1, MAX_TIMEOUT_SECS),
        (
            "max_pending_bytes",
            c.max_pending_bytes as u64,
            max_message,
            u64::MAX,
        ),
        (
            "max_shard_pending_bytes",
            c.max_shard_pending_bytes as u64,
            c.max_pending_bytes as u64,
            u64::MAX,
        ),
        // The protocol needs 2 (control) and 3 (commands); ids run up to 65599 (spec 5.3.1.1).
        ("max_chunk_streams", c.max_chunk_streams as u64, 4, 65599),
    ];
    let rows = at_least_one
        .map(|(key, value)| (key, value, 1, u64::MAX))
        .into_iter();
    let rows = rows.chain(timeouts.map(|(key, value)| (key, value, 1, MAX_TIMEOUT_SECS)));
    for (key, value, min, max) in rows.chain(bounded) {
        if !(min..=max).contains(&value) {
            let range = match max {
                u64::MAX => format!("at least {min}"),
                _ => format!("in {min}..={max}"),
            };
            return Err(origins.error(key, format!("{value} is out of range: must be {range}")));
        }
    }
    Ok(())
}

/// Paths that a switched-on feature needs.
fn check_files(c: &Config, origins: &Origins) -> Result<(), ConfigError> {
    let needed = [
        (
            "flv_dir",
            (c.flv_archive || c.server.iter().any(|a| a.record)) && c.flv_dir.is_empty(),
            "flv_archive",
        ),
        (
            "rtmps_cert",
            c.enable_rtmps && c.rtmps_cert.is_empty(),
            "enable_rtmps",
        ),
        (
            "rtmps_key",
            c.enable_rtmps && c.rtmps_key.is_empty(),
            "enable_rtmps",
        ),
        (
            "hls_cert",
            c.use_hls_https && c.hls_cert.is_empty(),
            "use_hls_https",
        ),
        (
            "hls_key",
            c.use_hls_https && c.hls_key.is_empty(),
            "use_hls_https",
        ),
    ];
    match needed.iter().find(|(_, missing, _)| *missing) {
        Some((key, _, switch)) => {
            Err(origins.error(key, format!("must not be empty when {switch} is true")))
        }
        None => Ok(()),
    }
}

/// `redis_addr`, when set, is an address the Redis client accepts (checked at start-up, not
/// at the first publish).
fn check_redis(c: &Config, origins: &Origins) -> Result<(), ConfigError> {
    if c.redis_addr.is_empty() {
        return Ok(());
    }
    crate::keys::RedisTarget::parse(&c.redis_addr, &c.redis_pwd)
        .map(drop)
        .map_err(|reason| origins.error("redis_addr", reason))
}

/// App names are non-empty, unique and usable as one URL path segment; static_push targets
/// are RTMP URLs.
fn check_app_list(apps: &[App], origins: &Origins) -> Result<(), ConfigError> {
    for (i, app) in apps.iter().enumerate() {
        let entry = |reason: String| origins.error("server", format!("entry {}: {reason}", i + 1));
        let name = &app.appname;
        if name.is_empty() {
            return Err(entry("appname must not be empty".to_owned()));
        }
        if name
            .chars()
            .any(|c| c == '/' || c == '?' || c.is_whitespace() || c.is_control())
        {
            return Err(entry(format!(
                "appname `{name}` must not contain `/`, `?`, spaces or control characters"
            )));
        }
        if let Some(first) = apps[..i].iter().position(|other| other.appname == *name) {
            return Err(entry(format!(
                "duplicate appname `{name}` (also entry {})",
                first + 1
            )));
        }
        if let Some(url) = app.static_push.iter().find(|url| !is_rtmp_url(url)) {
            return Err(entry(format!(
                "static_push `{url}` is not an rtmp:// or rtmps:// URL"
            )));
        }
    }
    Ok(())
}

/// Longest accepted hook timeout, in milliseconds (a minute: a shard's connection waits on it).
const MAX_HOOK_TIMEOUT_MS: u64 = 60_000;

/// `[hooks]` and the apps' hook lists: usable `http://` URLs, a failure policy of `deny` or
/// `allow` (normalized to lower case), and ranges.
fn check_hooks(c: &mut Config, origins: &Origins) -> Result<(), ConfigError> {
    use crate::hooks::{Action, HookUrl};
    for action in Action::ALL {
        let key = format!("hooks.{}", action.name());
        for url in c.hooks.urls(action) {
            HookUrl::parse(url).map_err(|reason| origins.error(&key, reason))?;
        }
        for (i, app) in c.server.iter().enumerate() {
            for url in app.hook_urls(action) {
                HookUrl::parse(url).map_err(|reason| {
                    let name = action.name();
                    origins.error("server", format!("entry {}: {name}: {reason}", i + 1))
                })?;
            }
        }
    }
    let h = &mut c.hooks;
    for (key, policy) in [
        ("hooks.connect_failure", &mut h.connect_failure),
        ("hooks.publish_failure", &mut h.publish_failure),
        ("hooks.play_failure", &mut h.play_failure),
    ] {
        let lower = policy.to_ascii_lowercase();
        if lower != "deny" && lower != "allow" {
            return Err(origins.error(key, format!("`{policy}` is not deny or allow")));
        }
        *policy = lower;
    }
    let ranges = [
        ("hooks.timeout_ms", h.timeout_ms, 1, MAX_HOOK_TIMEOUT_MS),
        ("hooks.max_in_flight", h.max_in_flight as u64, 1, 1_000_000),
        ("hooks.hls_session_secs", h.hls_session_secs, 1, 86_400),
        ("hooks.update_secs", h.update_secs, 1, 86_400),
        (
            "hooks.max_hls_sessions",
            h.max_hls_sessions as u64,
            1,
            10_000_000,
        ),
    ];
    for (key, value, min, max) in ranges {
        if !(min..=max).contains(&value) {
            return Err(origins.error(
                key,
                format!("{value} is out of range: must be in {min}..={max}"),
            ));
        }
    }
    let key_len = h.hls_session_key.len();
    if key_len > 0 && key_len < MIN_HLS_SESSION_KEY_BYTES {
        return Err(origins.error(
            "hooks.hls_session_key",
            format!(
                "{key_len} bytes is too short to sign with: use at least \
                 {MIN_HLS_SESSION_KEY_BYTES} (e.g. `openssl rand -hex 16`)"
            ),
        ));
    }
    Ok(())
}

/// Shortest `hooks.hls_session_key` accepted: 128 bits of a hex or random string.
const MIN_HLS_SESSION_KEY_BYTES: usize = 16;

fn is_rtmp_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("rtmp://")
        .or_else(|| url.strip_prefix("rtmps://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVEGO_YAML: &str =
        "server:\n  - appname: live\n    live: true\n    hls: true\n    api: true\n    flv: true\n";

    /// Load with the given flags (argv[0] added), environment and in-memory files.
    fn load(
        args: &[&str],
        env: &[(&str, &str)],
        files: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        let args: Vec<String> = std::iter::once("shardcast")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let env_lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let read = |path: &Path| {
            let found = files.iter().find(|(p, _)| Path::new(p) == path);
            found
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        };
        Config::load_with(&args, &env_lookup, &read)
    }

    fn error(args: &[&str], env: &[(&str, &str)], files: &[(&str, &str)]) -> String {
        match load(args, env, files) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn defaults_load() {
        let c = Config::default();
        assert_eq!(c, load(&[], &[], &[]).unwrap());
        assert_eq!(
            (c.rtmp_addr.as_str(), c.httpflv_addr.as_str()),
            (":1935", ":7001")
        );
        assert_eq!(
            (c.hls_addr.as_str(), c.api_addr.as_str()),
            (":7002", ":8090")
        );
        assert_eq!(
            (c.level.as_str(), c.shards, c.pin_shards),
            ("info", 0, true)
        );
        assert_eq!((c.gop_num, c.gop_cache_max_bytes), (1, 32 << 20));
        assert_eq!(
            (c.read_timeout, c.write_timeout, c.handshake_timeout),
            (10, 10, 5)
        );
        assert_eq!((c.idle_timeout, c.play_wait_timeout), (10, 30));
        assert_eq!((c.rtmp_chunk_size, c.window_ack_size), (4096, 2_500_000));
        assert_eq!((c.max_message_size, c.max_chunk_size), (8 << 20, 0xFF_FFFF));
        assert_eq!((c.max_pending_bytes, c.max_connections), (32 << 20, 10_000));
        assert_eq!((c.max_connections_per_ip, c.max_streams), (0, 1000));
        assert_eq!(c.max_players_per_stream, 10_000);
        assert_eq!(
            (c.max_shard_pending_bytes, c.max_chunk_streams),
            (256 << 20, 256)
        );
        assert_eq!(
            (c.player_queue_bytes, c.player_max_skips, c.mesh_capacity),
            (8 << 20, 3, 4096)
        );
        assert_eq!(
            (c.http_max_header_bytes, c.http_max_body_bytes),
            (16384, 65536)
        );
        assert_eq!((c.http_header_timeout, c.http_keepalive_timeout), (10, 60));
        assert_eq!(
            (
                c.flv_dir.as_str(),
                c.rtmps_cert.as_str(),
                c.rtmps_key.as_str()
            ),
            ("tmp", "server.crt", "server.key")
        );
        assert!(c.enable_tls_verify && !c.enable_rtmps && !c.use_hls_https && !c.flv_archive);
        assert_eq!(c.jwt, jwt_with("", "HS256"));
        assert_eq!(c.statics_dir, "statics");
        assert!(matches!(c.jwt.auth(), Ok(None)));
        let live = App {
            appname: "live".into(),
            live: true,
            hls: true,
            flv: true,
            api: true,
            static_push: vec![],
            record: false,
            ..App::default()
        };
        assert_eq!(c.server, vec![live]);
        assert!(c.notes.is_empty());
        assert!(c.shard_count() >= 1);
        assert_eq!(
            (
                c.redis_addr.as_str(),
                c.redis_pwd.as_str(),
                c.redis_prefix.as_str()
            ),
            ("", "", "shardcast:")
        );
    }

    #[test]
    fn redis_settings_are_checked_at_load() {
        let c = load(
            &["--redis_addr", "10.0.0.5:6379", "--redis_prefix", "tv:"],
            &[("REDIS_PWD", "pw")],
            &[],
        )
        .unwrap();
        assert_eq!(
            (
                c.redis_addr.as_str(),
                c.redis_pwd.as_str(),
                c.redis_prefix.as_str()
            ),
            ("10.0.0.5:6379", "pw", "tv:")
        );
        assert!(load(&["--redis_addr", "redis://h:6379/2"], &[], &[]).is_ok());
        let e = error(&["--redis_addr", "h:port"], &[], &[]);
        assert!(
            e.starts_with("--redis_addr: `h:port` is not a Redis address"),
            "{e}"
        );
        let e = error(&[], &[("REDIS_ADDR", "rediss://h")], &[]);
        assert!(e.starts_with("REDIS_ADDR: TLS"), "{e}");
        let e = error(
            &["--redis_addr", "redis://:a@h", "--redis_pwd", "b"],
            &[],
            &[],
        );
        assert!(e.contains("give it once"), "{e}");
        let c = load(&["--redis_pwd", "pw"], &[], &[]).unwrap();
        assert_eq!(
            c.notes,
            vec!["redis_pwd is set but redis_addr is empty: room keys stay in memory".to_owned()]
        );
    }

    #[test]
    fn key_table_matches_defaults_and_struct() {
        let defaults = default_tree().unwrap();
        let mut leaves = Vec::new();
        flatten(defaults.clone(), &defaults, "", &mut leaves);
        let mut from_file: Vec<String> = leaves
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != "server")
            .filter(|k| !get_path(&defaults, k).is_some_and(Value::is_array))
            .collect();
        let mut from_table: Vec<String> = KEYS.iter().map(|(k, _)| k.to_string()).collect();
        from_file.sort();
        from_table.sort();
        assert_eq!(from_file, from_table);
        let Value::Object(serialized) = serde_json::to_value(Config::default()).unwrap() else {
            panic!()
        };
        let struct_keys: Vec<&String> = serialized.keys().collect();
        assert_eq!(struct_keys, defaults.keys().collect::<Vec<_>>());
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let file = [("x.toml", "gop_num = 2\n")];
        let env = [("GOP_NUM", "3")];
        assert_eq!(
            load(&["--config_file", "x.toml", "--gop_num", "4"], &env, &file)
                .unwrap()
                .gop_num,
            4
        );
        assert_eq!(
            load(&["--config_file", "x.toml"], &env, &file)
                .unwrap()
                .gop_num,
            3
        );
        assert_eq!(
            load(&["--config_file", "x.toml"], &[], &file)
                .unwrap()
                .gop_num,
            2
        );
        assert_eq!(load(&[], &[], &file).unwrap().gop_num, 1);
        let c = load(&["--config_file=x.toml", "--gop_num=4"], &env, &file).unwrap();
        assert_eq!(c.gop_num, 4);
        assert_eq!(c.notes, vec!["read config file x.toml".to_owned()]);
    }

    #[test]
    fn config_file_from_env_and_empty_name_skips_livego_yaml() {
        let files = [("y.yml", "gop_num: 5\n"), ("livego.yaml", "gop_num: 6\n")];
        assert_eq!(
            load(&[], &[("CONFIG_FILE", "y.yml")], &files)
                .unwrap()
                .gop_num,
            5
        );
        assert_eq!(load(&["--config_file="], &[], &files).unwrap().gop_num, 1);
        assert_eq!(load(&[], &[], &files).unwrap().gop_num, 6);
    }

    #[test]
    fn livego_yaml_sample_loads_from_working_dir() {
        let c = load(&[], &[], &[("livego.yaml", LIVEGO_YAML)]).unwrap();
        assert_eq!(c.server, Config::default().server);
        assert_eq!(c.notes, vec!["read config file livego.yaml".to_owned()]);
    }

    #[test]
    fn yaml_without_server_keeps_default_app() {
        let c = load(&[], &[], &[("livego.yaml", "gop_num: 2\n")]).unwrap();
        assert_eq!(c.gop_num, 2);
        assert!(c.app("live").is_some_and(|app| app.live && app.hls));
    }

    #[test]
    fn yaml_livego_style_values() {
        let yaml = "rtmp_addr: :1936\napi_addr: \"\"\nredis_addr:\njwt:\n  secret: s3\nserver:\n  - appname: a\n    live: true\n    static_push:\n";
        let c = load(&[], &[], &[("livego.yaml", yaml)]).unwrap();
        assert_eq!(
            (
                c.rtmp_addr.as_str(),
                c.api_addr.as_str(),
                c.redis_addr.as_str()
            ),
            (":1936", "", "")
        );
        assert_eq!(c.jwt, jwt_with("s3", "HS256"));
        assert_eq!(c.app("a").unwrap().static_push, Vec::<String>::new());
    }

    #[test]
    fn toml_with_two_apps() {
        let toml = "[[server]]\nappname = \"live\"\nlive = true\nhls = true\n\n[[server]]\nappname = \"vod\"\nflv = true\nstatic_push = [\"rtmp://10.0.0.1:1935/live\"]\n";
        let c = load(&["--config_file", "apps.toml"], &[], &[("apps.toml", toml)]).unwrap();
        assert_eq!(c.server.len(), 2);
        let live = c.app("live").unwrap();
        assert!(live.live && live.hls && !live.flv && !live.api);
        let vod = c.app("vod").unwrap();
        assert!(!vod.live && vod.flv && !vod.hls);
        assert_eq!(
            vod.static_push,
            vec!["rtmp://10.0.0.1:1935/live".to_owned()]
        );
        assert!(c.app("other").is_none());
    }

    #[test]
    fn json_file() {
        let json = r#"{"gop_num": 3, "jwt": {"algorithm": "hs512"}}"#;
        let c = load(&["--config_file", "c.json"], &[], &[("c.json", json)]).unwrap();
        assert_eq!((c.gop_num, c.jwt.algorithm.as_str()), (3, "HS512"));
    }

    #[test]
    fn file_errors_name_key_and_file() {
        let e = error(&[], &[], &[("livego.yaml", "rtmp_adr: :1935\n")]);
        assert_eq!(e, "unknown key `rtmp_adr` in livego.yaml");
        let e = error(
            &["--config_file", "x.toml"],
            &[],
            &[("x.toml", "gop_num = \"two\"\n")],
        );
        assert_eq!(e, "`gop_num` in x.toml: expected an integer, got a string");
        let e = error(
            &["--config_file", "x.toml"],
            &[],
            &[("x.toml", "[jwt]\nsecrt = \"a\"\n")],
        );
        assert_eq!(e, "unknown key `jwt.secrt` in x.toml");
        let e = error(
            &["--config_file", "x.toml"],
            &[],
            &[("x.toml", "rtmp_chunk_size = 5000000000\n")],
        );
        assert!(
            e.starts_with("`rtmp_chunk_size` in x.toml: invalid value"),
            "{e}"
        );
        let e = error(
            &["--config_file", "x.toml"],
            &[],
            &[("x.toml", "gop_num = -1\n")],
        );
        assert_eq!(
            e,
            "`gop_num` in x.toml: expected an integer, got a negative integer"
        );
        let e = error(
            &[],
            &[],
            &[(
                "livego.yaml",
                "server:\n  - appname: a\n    live: yes please\n",
            )],
        );
        assert_eq!(
            e,
            "`server` in livego.yaml: entry 1: `live`: expected a boolean, got a string"
        );
        let e = error(
            &[],
            &[],
            &[("livego.yaml", "server:\n  - appname: a\n    lve: true\n")],
        );
        assert_eq!(e, "`server` in livego.yaml: entry 1: unknown key `lve`");
        let e = error(&["--config_file", "x.ini"], &[], &[("x.ini", "")]);
        assert!(e.starts_with("x.ini: unsupported config file type"), "{e}");
        let e = error(&["--config_file", "missing.toml"], &[], &[]);
        assert!(e.starts_with("missing.toml: "), "{e}");
        let e = error(
            &["--config_file", "x.toml"],
            &[],
            &[("x.toml", "gop_num = \n")],
        );
        assert!(e.starts_with("x.toml: TOML parse error"), "{e}");
    }

    #[test]
    fn flag_and_env_errors_name_the_culprit() {
        let e = error(&["--rtmp_addr", "abc"], &[], &[]);
        assert!(
            e.starts_with("--rtmp_addr: `abc` is not a listen address"),
            "{e}"
        );
        let e = error(&["--rtmp_adr", ":1935"], &[], &[]);
        assert!(e.contains("--rtmp_adr") && e.contains("--rtmp_addr"), "{e}");
        assert_eq!(
            error(&[], &[("GOP_NUM", "abc")], &[]),
            "GOP_NUM=abc: expected a non-negative integer"
        );
        assert_eq!(
            error(&["--gop_num=x"], &[], &[]),
            "--gop_num=x: expected a non-negative integer"
        );
        let e = error(&[], &[("HLS_ADDR", "7002")], &[]);
        assert_eq!(
            e,
            "HLS_ADDR: `7002` is not a listen address (did you mean `:7002`?)"
        );
        assert_eq!(
            error(&[], &[("USE_HLS_HTTPS", "yes")], &[]),
            "USE_HLS_HTTPS=yes: expected a boolean (true or false)"
        );
    }

    #[test]
    fn bool_flags_follow_pflag() {
        assert!(
            load(&["--hls_keep_after_end"], &[], &[])
                .unwrap()
                .hls_keep_after_end
        );
        assert!(
            !load(&["--enable_tls_verify=false"], &[], &[])
                .unwrap()
                .enable_tls_verify
        );
        assert!(load(&[], &[("FLV_ARCHIVE", "1")], &[]).unwrap().flv_archive);
        let e = error(&["--enable_tls_verify", "false"], &[], &[]);
        assert!(e.contains("'false'"), "{e}");
    }

    #[test]
    fn nested_jwt_keys_by_flag_and_env() {
        let c = load(
            &["--jwt.secret", "flag"],
            &[("JWT_SECRET", "env"), ("JWT_ALGORITHM", "")],
            &[],
        )
        .unwrap();
        assert_eq!(c.jwt, jwt_with("flag", "HS256"));
        let e = error(&[], &[("JWT_ALGORITHM", "RS257")], &[]);
        assert_eq!(
            e,
            "JWT_ALGORITHM: `RS257` is not supported (HS256, HS384, HS512, RS256, RS384, \
             RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
        );
        let e = error(&[], &[("JWT_ALGORITHM", "rs256")], &[]);
        assert_eq!(
            e,
            "JWT_ALGORITHM: RS256 needs jwt.public_key (a PEM public key file)"
        );
    }

    /// A `[jwt]` with a secret (or none) and no public key.
    fn jwt_with(secret: &str, algorithm: &str) -> Jwt {
        Jwt {
            secret: secret.into(),
            algorithm: algorithm.into(),
            public_key: String::new(),
            public_key_pem: String::new(),
        }
    }

    const RSA_PUBLIC: &str = include_str!("../tests/data/jwt/rsa_public.pem");
    const EC256_PUBLIC: &str = include_str!("../tests/data/jwt/ec256_public.pem");
    const EC384_PUBLIC: &str = include_str!("../tests/data/jwt/ec384_public.pem");
    const ED25519_PUBLIC: &str = include_str!("../tests/data/jwt/ed25519_public.pem");
    const RSA_PRIVATE: &str = include_str!("../tests/data/jwt/rsa_private.pem");

    #[test]
    fn jwt_public_key_is_read_and_its_algorithm_inferred() {
        let keys = [
            ("rsa.pem", RSA_PUBLIC),
            ("p256.pem", EC256_PUBLIC),
            ("p384.pem", EC384_PUBLIC),
            ("ed.pem", ED25519_PUBLIC),
        ];
        let cases = [
            ("rsa.pem", "", "RS256"),
            ("rsa.pem", "ps512", "PS512"),
            ("p256.pem", "", "ES256"),
            ("p384.pem", "", "ES384"),
            ("ed.pem", "", "EdDSA"),
        ];
        for (file, algorithm, want) in cases {
            let args = ["--jwt.public_key", file, "--jwt.algorithm", algorithm];
            let c = load(&args, &[], &keys).unwrap();
            assert_eq!(c.jwt.algorithm, want, "{file} {algorithm:?}");
            assert_eq!(
                c.jwt.public_key_pem,
                keys.iter().find(|k| k.0 == file).unwrap().1
            );
            let auth = c.jwt.auth().unwrap().expect("JWT on");
            assert_eq!(auth.algorithm(), want);
        }
        let toml = "[jwt]\npublic_key = \"rsa.pem\"\n";
        let c = load(
            &["--config_file", "c.toml"],
            &[],
            &[("c.toml", toml), keys[0]],
        )
        .unwrap();
        assert_eq!(c.jwt.algorithm, "RS256");
    }

    #[test]
    fn jwt_key_errors_stop_start_up() {
        let files = [
            ("rsa.pem", RSA_PUBLIC),
            ("private.pem", RSA_PRIVATE),
            ("junk.pem", "hello"),
        ];
        let e = error(&["--jwt.public_key", "missing.pem"], &[], &files);
        assert!(e.starts_with("--jwt.public_key: missing.pem: "), "{e}");
        let e = error(&[], &[("JWT_PUBLIC_KEY", "private.pem")], &files);
        assert!(
            e.starts_with("JWT_PUBLIC_KEY: private.pem: expected a public key")
                && e.contains("PRIVATE KEY"),
            "{e}"
        );
        let e = error(&["--jwt.public_key", "junk.pem"], &[], &files);
        assert!(
            e.starts_with("--jwt.public_key: junk.pem: not a PEM file"),
            "{e}"
        );
        let e = error(
            &["--jwt.public_key", "rsa.pem", "--jwt.secret", "s"],
            &[],
            &files,
        );
        assert_eq!(
            e,
            "--jwt.public_key: set either jwt.secret or jwt.public_key, not both"
        );
        let e = error(
            &["--jwt.public_key", "rsa.pem", "--jwt.algorithm", "ES256"],
            &[],
            &files,
        );
        assert!(
            e.starts_with(
                "--jwt.algorithm: ES256 does not fit the public key, which is an RSA key"
            ),
            "{e}"
        );
        let e = error(
            &["--jwt.public_key", "rsa.pem", "--jwt.algorithm", "HS256"],
            &[],
            &files,
        );
        assert_eq!(
            e,
            "--jwt.algorithm: HS256 needs jwt.secret, not jwt.public_key"
        );
    }

    #[test]
    fn short_jwt_secrets_are_noted() {
        let c = load(
            &["--jwt.secret", "short", "--jwt.algorithm", "HS512"],
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(c.jwt.algorithm, "HS512");
        assert!(c
            .notes
            .iter()
            .any(|n| n.starts_with("jwt.secret is shorter than 32 bytes")));
        assert_eq!(c.jwt.auth().unwrap().unwrap().algorithm(), "HS512");
        let long = "x".repeat(32);
        assert!(load(&["--jwt.secret", &long], &[], &[])
            .unwrap()
            .notes
            .is_empty());
    }

    #[test]
    fn statics_dir_by_flag_env_and_file() {
        assert_eq!(
            load(&["--statics_dir", "www"], &[], &[])
                .unwrap()
                .statics_dir,
            "www"
        );
        assert_eq!(
            load(&[], &[("STATICS_DIR", "")], &[]).unwrap().statics_dir,
            ""
        );
        let yaml = [("livego.yaml", "statics_dir: /srv/player\n")];
        assert_eq!(load(&[], &[], &yaml).unwrap().statics_dir, "/srv/player");
    }

    #[test]
    fn empty_env_value_counts() {
        let c = load(&[], &[("API_ADDR", "")], &[]).unwrap();
        assert_eq!(c.api_addr, "");
        assert_eq!(parse_listen_addr(&c.api_addr).unwrap(), None);
        assert_eq!(
            load(&["--httpflv_addr="], &[], &[]).unwrap().httpflv_addr,
            ""
        );
    }

    #[test]
    fn listen_addresses() {
        let parse = |s: &str| parse_listen_addr(s).unwrap().map(|a| a.to_string());
        assert_eq!(parse(":1935").as_deref(), Some("0.0.0.0:1935"));
        assert_eq!(parse("127.0.0.1:0").as_deref(), Some("127.0.0.1:0"));
        assert_eq!(parse("[::1]:80").as_deref(), Some("[::1]:80"));
        assert_eq!(parse("localhost:1935").as_deref(), Some("127.0.0.1:1935"));
        assert_eq!(parse(""), None);
        for bad in ["abc", "1935", "example.com:80", ":70000", "::1:80", ":"] {
            assert!(parse_listen_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_values_stop_start_up() {
        let e = error(&["--rtmp_chunk_size", "100"], &[], &[]);
        assert_eq!(
            e,
            "--rtmp_chunk_size: 100 is out of range: must be in 128..=65536"
        );
        assert!(error(&["--rtmp_addr="], &[], &[]).starts_with("--rtmp_addr: must not be empty"));
        assert!(error(&[], &[("READ_TIMEOUT", "0")], &[])
            .starts_with("READ_TIMEOUT: 0 is out of range"));
        assert_eq!(
            error(&["--level", "loud"], &[], &[]),
            "--level: `loud` is not a log level (error, warn, info, debug, trace)"
        );
        let e = error(&["--hls_addr", "127.0.0.1:1935"], &[], &[]);
        assert_eq!(
            e,
            "--hls_addr: `127.0.0.1:1935` overlaps rtmp_addr (same port)"
        );
        let e = error(&["--max_pending_bytes", "1000"], &[], &[]);
        assert!(
            e.starts_with("--max_pending_bytes: 1000 is out of range: must be at least 8388608"),
            "{e}"
        );
        let e = error(&["--max_shard_pending_bytes", "1000"], &[], &[]);
        assert!(
            e.starts_with(
                "--max_shard_pending_bytes: 1000 is out of range: must be at least 33554432"
            ),
            "{e}"
        );
        let e = error(&["--max_chunk_streams", "2"], &[], &[]);
        assert_eq!(
            e,
            "--max_chunk_streams: 2 is out of range: must be in 4..=65599"
        );
        let e = error(&["--flv_archive", "--flv_dir="], &[], &[]);
        assert_eq!(e, "--flv_dir: must not be empty when flv_archive is true");
    }

    #[test]
    fn app_list_checks() {
        let yaml = |body: &str| [("livego.yaml", format!("server:\n{body}"))];
        let check = |body: &str| {
            let files = yaml(body);
            error(&[], &[], &[(files[0].0, files[0].1.as_str())])
        };
        assert_eq!(
            check("  - appname: a\n  - appname: a\n"),
            "`server` in livego.yaml: entry 2: duplicate appname `a` (also entry 1)"
        );
        assert_eq!(
            check("  - live: true\n"),
            "`server` in livego.yaml: entry 1: appname must not be empty"
        );
        assert!(check("  - appname: a/b\n").contains("must not contain `/`"));
        assert!(
            check("  - appname: a\n    static_push: [\"http://x\"]\n").contains("not an rtmp://")
        );
        let c = load(&[], &[], &[("livego.yaml", "server:\n  - appname: a\n")]).unwrap();
        assert!(c
            .notes
            .iter()
            .any(|n| n.starts_with("no app has live = true")));
        let c = load(&[], &[], &[("livego.yaml", "server: []\n")]).unwrap();
        assert!(c.server.is_empty() && c.notes.len() == 2);
    }

    #[test]
    fn hooks_defaults_per_app_lists_and_checks() {
        use crate::hooks::Action;
        let c = Config::default();
        assert_eq!((c.hooks.timeout_ms, c.hooks.max_in_flight), (3000, 64));
        assert_eq!(c.hooks.hls_session_secs, 300);
        assert_eq!(c.hooks.max_hls_sessions, 16_384);
        assert!(!c.hooks.allows_on_failure(Action::Publish));
        assert!(!c.hooks.allows_on_failure(Action::Play));
        assert!(!c.hooks.allows_on_failure(Action::Connect));
        assert!(Action::ALL
            .iter()
            .all(|&a| c.hook_urls("live", a).is_empty()));
        let toml = "[hooks]\non_publish = [\"http://127.0.0.1:9000/pub\"]\n\
                    on_stop = [\"http://a/stop\", \"http://b:81/stop\"]\n\
                    play_failure = \"Allow\"\ntimeout_ms = 500\n\
                    [[server]]\nappname = \"live\"\nlive = true\n\
                    [[server]]\nappname = \"tv\"\nlive = true\n\
                    on_publish = [\"http://10.0.0.1/tv\"]\n";
        let c = load(&["--config_file", "h.toml"], &[], &[("h.toml", toml)]).unwrap();
        assert_eq!(
            c.hook_urls("live", Action::Publish),
            ["http://127.0.0.1:9000/pub"]
        );
        assert_eq!(c.hook_urls("tv", Action::Publish), ["http://10.0.0.1/tv"]);
        assert_eq!(c.hook_urls("tv", Action::Stop).len(), 2);
        assert!(c.hook_urls("nope", Action::Publish).is_empty());
        assert!(c.hook_urls("live", Action::Play).is_empty());
        assert!(c.hooks.allows_on_failure(Action::Play));
        assert_eq!(c.hooks.play_failure, "allow");
        assert_eq!(c.hooks.timeout_ms, 500);
        // Scalars by flag and environment, like [jwt].
        let c = load(
            &["--hooks.timeout_ms", "250"],
            &[
                ("HOOKS_SERVER_ID", "node-7"),
                ("HOOKS_PUBLISH_FAILURE", "allow"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(
            (c.hooks.timeout_ms, c.hooks.server_id.as_str()),
            (250, "node-7")
        );
        assert!(c.hooks.allows_on_failure(Action::Publish));
        // YAML, as a livego.yaml would carry it.
        let yaml = "hooks:\n  on_play: [\"http://h/p\"]\nserver:\n  - appname: live\n    live: true\n    on_unpublish: [\"http://h/u\"]\n";
        let c = load(&[], &[], &[("livego.yaml", yaml)]).unwrap();
        assert_eq!(c.hook_urls("live", Action::Play), ["http://h/p"]);
        assert_eq!(c.hook_urls("live", Action::Unpublish), ["http://h/u"]);
        // Bad values stop start-up with the key named.
        let file = |text: &str| error(&["--config_file", "h.toml"], &[], &[("h.toml", text)]);
        let e = file("[hooks]\non_publish = [\"ftp://auth/x\"]\n");
        assert!(
            e.starts_with("`hooks.on_publish` in h.toml: `ftp://auth/x` is not a usable hook URL: expected http[s]://"),
            "{e}"
        );
        let e = file("[hooks]\nhls_session_key = \"short\"\n");
        assert!(
            e.starts_with("`hooks.hls_session_key` in h.toml: 5 bytes is too short"),
            "{e}"
        );
        let ok = load(&["--hooks.hls_session_key", "0123456789abcdef"], &[], &[]);
        assert_eq!(ok.unwrap().hooks.hls_session_key, "0123456789abcdef");
        let e = file("[hooks]\non_play = \"http://h/\"\n");
        assert_eq!(
            e,
            "`hooks.on_play` in h.toml: expected a list of strings, got a string"
        );
        let e = file("[hooks]\non_play = [1]\n");
        assert_eq!(
            e,
            "`hooks.on_play` in h.toml: expected a list of strings, got an integer in it"
        );
        let e = file("[hooks]\nbogus = 1\n");
        assert_eq!(e, "unknown key `hooks.bogus` in h.toml");
        let e = file("[[server]]\nappname = \"a\"\non_stop = [\"localhost:80\"]\n");
        assert!(
            e.starts_with(
                "`server` in h.toml: entry 1: on_stop: `localhost:80` is not a usable hook URL"
            ),
            "{e}"
        );
        let e = error(&["--hooks.publish_failure", "maybe"], &[], &[]);
        assert_eq!(e, "--hooks.publish_failure: `maybe` is not deny or allow");
        let e = error(&["--hooks.timeout_ms", "0"], &[], &[]);
        assert_eq!(
            e,
            "--hooks.timeout_ms: 0 is out of range: must be in 1..=60000"
        );
        let e = error(&[], &[("HOOKS_MAX_IN_FLIGHT", "0")], &[]);
        assert_eq!(
            e,
            "HOOKS_MAX_IN_FLIGHT: 0 is out of range: must be in 1..=1000000"
        );
    }

    #[test]
    fn level_maps_logrus_names() {
        assert_eq!(
            load(&["--level", "fatal"], &[], &[]).unwrap().level,
            "error"
        );
        assert_eq!(
            load(&[], &[("LEVEL", "Warning")], &[]).unwrap().level,
            "warn"
        );
    }

    #[test]
    fn help_and_version() {
        let Err(ConfigError::Help(text)) = load(&["--help"], &[], &[]) else {
            panic!("no help")
        };
        assert!(
            text.contains("--rtmp_addr") && text.contains("[default: :1935] [env: RTMP_ADDR]"),
            "{text}"
        );
        assert!(text.contains("--jwt.secret") && text.contains("--config_file"));
        assert!(matches!(load(&["-h"], &[], &[]), Err(ConfigError::Help(_))));
        let Err(ConfigError::Help(text)) = load(&["--version"], &[], &[]) else {
            panic!("no version")
        };
        assert!(text.starts_with("shardcast "), "{text}");
    }
}
