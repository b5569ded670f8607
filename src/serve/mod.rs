//! The only code that touches sockets on the executors: listeners and connection loops on every
//! shard (the Redis key store's client runs on glommio's blocking threads, see `key_store`).
//!
//! `run` reserves each listen address once (so port 0 resolves to one port for the whole
//! SO_REUSEPORT group), starts the shards, and on each shard builds the hub, wires the
//! cross-shard mesh into it and accepts connections until shutdown.

mod api;
mod hls;
mod hooks;
mod httpflv;
mod io;
pub use io::write_all_vectored;
mod record;
mod relay;
mod rtmp;
mod statics;
mod tls;
mod watch;

use crate::api::JwtAuth;
use crate::config::{parse_listen_addr, Config};
use crate::hls::{HlsConfig, HlsSettings, HlsSink, HlsStore};
use crate::hooks::hls_viewers::HlsViewers;
use crate::hub::{Directory, Hub, HubConfig, HubMsg, MeteredOutbox, SharedHub};
use crate::keys::{KeyStore, MemoryKeyStore, RedisKeyStore, RedisTarget};
use crate::limits::{Admission, Limit, PendingBudget};
use crate::relay::Registry;
use crate::stats::{HubFigures, Proto, ShardStats, StatsBoard};
use futures_lite::future;
use glommio::net::{TcpListener, TcpStream};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// What every connection on a shard can reach.
pub(crate) struct ShardState {
    pub id: usize,
    pub cfg: Arc<Config>,
    pub hub: SharedHub,
    pub keys: Arc<dyn KeyStore>,
    pub directory: Arc<Directory>,
    pub hls: Arc<HlsStore>,
    /// TLS for the HLS listener (`use_hls_https`).
    pub hls_tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS for the RTMP listener (`enable_rtmps`).
    pub rtmp_tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS for `rtmps://` relays, or why there is none (no CA certificates found).
    pub relay_tls: Result<Arc<rustls::ClientConfig>, String>,
    /// The API's token check, when `jwt.secret` or `jwt.public_key` is set.
    pub jwt: Option<Arc<JwtAuth>>,
    next_conn: Cell<u64>,
    /// The connections whose timeouts this shard's sweeper checks.
    pub watchlist: Rc<watch::Watchlist>,
    /// This shard's sessions and counters.
    pub stats: Rc<ShardStats>,
    /// Every shard's latest stats report (read by the API).
    pub board: Arc<StatsBoard>,
    /// Every relay of the process (pull, push, static push).
    pub relays: Arc<Registry>,
    /// Connections per client address and players per stream, process-wide.
    pub admission: Arc<Admission>,
    /// This shard's incomplete RTMP message bytes (`max_shard_pending_bytes`).
    pub pending: PendingBudget,
    /// HTTP hook calls (`[hooks]`, the apps' `on_*` lists).
    pub hooks: Rc<hooks::HookClient>,
}

impl ShardState {
    /// A connection id, unique on this shard ((shard, id) is unique in the process).
    pub fn next_conn_id(&self) -> u64 {
        let n = self.next_conn.get() + 1;
        self.next_conn.set(n);
        n
    }
}

/// The listeners to start, resolved to concrete addresses.
#[derive(Debug, Clone, Copy)]
struct Listeners {
    rtmp: SocketAddr,
    httpflv: Option<SocketAddr>,
    hls: Option<SocketAddr>,
    api: Option<SocketAddr>,
}

/// Process-wide state every shard shares: rare control data, never touched per packet.
#[derive(Clone)]
struct Shared {
    cfg: Arc<Config>,
    keys: Arc<dyn KeyStore>,
    directory: Arc<Directory>,
    hls: Arc<HlsStore>,
    hls_tls: Option<Arc<rustls::ServerConfig>>,
    rtmp_tls: Option<Arc<rustls::ServerConfig>>,
    relay_tls: Result<Arc<rustls::ClientConfig>, String>,
    board: Arc<StatsBoard>,
    jwt: Option<Arc<JwtAuth>>,
    relays: Arc<Registry>,
    admission: Arc<Admission>,
    hook_signer: Arc<crate::hooks::SessionSigner>,
    hls_viewers: hooks::SharedHlsViewers,
    server_id: Arc<str>,
}

/// Run the server until SIGINT/SIGTERM.
pub fn run(cfg: Config) -> std::io::Result<()> {
    let shards = cfg.shard_count();
    let (listeners, _reservations) = reserve_listeners(&cfg)?;
    let options = shards::Options {
        shards,
        pin: cfg.pin_shards,
        mesh_capacity: cfg.mesh_capacity,
    };
    let tls_config = |on: bool, what: &str, cert: &str, key: &str| {
        on.then(|| tls::server_config(cert, key))
            .transpose()
            .map_err(|e| std::io::Error::other(format!("{what}: {e}")))
    };
    let hls_tls = tls_config(
        cfg.use_hls_https,
        "use_hls_https",
        &cfg.hls_cert,
        &cfg.hls_key,
    )?;
    let rtmp_tls = tls_config(
        cfg.enable_rtmps,
        "enable_rtmps",
        &cfg.rtmps_cert,
        &cfg.rtmps_key,
    )?;
    // Only rtmps:// relays need it: a machine without CA certificates still starts.
    let relay_tls = tls::client_config(cfg.enable_tls_verify);
    if let Err(why) = &relay_tls {
        warn!(reason = %why, "rtmps:// relays will fail");
    }
    let jwt = cfg
        .jwt
        .auth()
        .map_err(|e| std::io::Error::other(format!("jwt: {e}")))?
        .map(Arc::new);
    if api_enabled(&cfg) {
        if let Some(auth) = &jwt {
            info!(algorithm = auth.algorithm(), "API requires a JWT");
        }
        log_statics_dir(&cfg);
    }
    let cfg_limits = (cfg.max_connections_per_ip, cfg.max_players_per_stream);
    let cfg_hooks_id = cfg.hooks.server_id.clone();
    let max_hls_sessions = cfg.hooks.max_hls_sessions;
    let cfg_hls_session_key = cfg.hooks.hls_session_key.clone();
    let shared = Shared {
        keys: key_store(&cfg)?,
        cfg: Arc::new(cfg),
        directory: Arc::new(Directory::new()),
        hls: Arc::new(HlsStore::new()),
        hls_tls,
        rtmp_tls,
        relay_tls,
        board: Arc::new(StatsBoard::new(shards)),
        jwt,
        relays: Arc::new(Registry::new()),
        admission: Admission::new(cfg_limits.0, cfg_limits.1),
        hook_signer: Arc::new(hls_session_signer(&cfg_hls_session_key)),
        hls_viewers: Arc::new(std::sync::Mutex::new(HlsViewers::new(max_hls_sessions))),
        server_id: server_id(&cfg_hooks_id).into(),
    };
    shards::run::<HubMsg, _, _>(options, move |ctx| {
        let shared = shared.clone();
        async move { shard_main(ctx, shared, listeners).await }
    })?;
    info!("stopped");
    Ok(())
}

/// Whether the API listener starts (see `reserve_listeners`).
/// `hooks.server_id`, or the host name when it is empty.
fn server_id(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "shardcast".to_owned())
}

fn api_enabled(cfg: &Config) -> bool {
    !cfg.api_addr.is_empty() && cfg.server.iter().any(|a| a.api)
}

/// Say at start-up where `/statics/` comes from (read at start, before any shard runs).
fn log_statics_dir(cfg: &Config) {
    if cfg.statics_dir.is_empty() {
        return;
    }
    match std::fs::canonicalize(&cfg.statics_dir) {
        Ok(dir) if dir.is_dir() => info!(dir = %dir.display(), "serving /statics/"),
        // The usual case (livego shipped no `statics` either): not worth an info line.
        _ => tracing::debug!(
            dir = %cfg.statics_dir,
            "statics_dir is not a directory: /statics/ answers 404"
        ),
    }
}

/// The room-key store: in memory, or in Redis when `redis_addr` is set. An unreachable Redis
/// does not stop start-up (livego panicked): it is logged, the key API answers 503 and
/// publishes are refused until Redis answers, with no restart needed.
fn key_store(cfg: &Config) -> std::io::Result<Arc<dyn KeyStore>> {
    if cfg.redis_addr.is_empty() {
        return Ok(Arc::new(MemoryKeyStore::new()));
    }
    // Config::load checked the address already; an error here is one all the same.
    let store = RedisTarget::parse(&cfg.redis_addr, &cfg.redis_pwd)
        .and_then(|target| RedisKeyStore::new(&target, &cfg.redis_prefix))
        .map_err(|e| std::io::Error::other(format!("redis_addr: {e}")))?;
    // One blocking PING on the main thread, before any shard runs (bounded by the timeouts).
    match store.ping() {
        Ok(()) => info!(store = ?store, "room keys in Redis"),
        Err(e) => {
            warn!(store = ?store, error = %e, "Redis does not answer at start-up; running anyway")
        }
    }
    Ok(Arc::new(store))
}

fn reserve_listeners(cfg: &Config) -> std::io::Result<(Listeners, Vec<shards::Reservation>)> {
    let addr = |s: &str| parse_listen_addr(s).map_err(|e| std::io::Error::other(e.to_string()));
    let rtmp = addr(&cfg.rtmp_addr)?
        .ok_or_else(|| std::io::Error::other("rtmp_addr must not be empty"))?;
    // A listener starts when its address is set and at least one app uses it.
    let wanted = |on: bool, a: &str| if on { addr(a) } else { Ok(None) };
    let httpflv = wanted(cfg.server.iter().any(|a| a.flv), &cfg.httpflv_addr)?;
    let hls = wanted(cfg.server.iter().any(|a| a.hls), &cfg.hls_addr)?;
    let api = wanted(cfg.server.iter().any(|a| a.api), &cfg.api_addr)?;
    let mut held = Vec::new();
    let mut reserve = |a: SocketAddr| -> std::io::Result<SocketAddr> {
        let r =
            shards::reserve(a).map_err(|e| std::io::Error::new(e.kind(), format!("{a}: {e}")))?;
        let bound = r.addr;
        held.push(r);
        Ok(bound)
    };
    let listeners = Listeners {
        rtmp: reserve(rtmp)?,
        httpflv: httpflv.map(&mut reserve).transpose()?,
        hls: hls.map(&mut reserve).transpose()?,
        api: api.map(&mut reserve).transpose()?,
    };
    Ok((listeners, held))
}

async fn shard_main(ctx: shards::ShardContext<HubMsg>, shared: Shared, listeners: Listeners) {
    let mesh = Rc::new(ctx.mesh);
    let outbox = Rc::new(MeteredOutbox::new(mesh.clone()));
    let hub_cfg = HubConfig {
        gop_num: shared.cfg.gop_num,
        gop_cache_max_bytes: shared.cfg.gop_cache_max_bytes,
    };
    let hub: SharedHub = Rc::new(RefCell::new(Hub::new(
        ctx.id,
        ctx.count,
        hub_cfg,
        outbox.clone(),
        shared.directory.clone(),
    )));
    hub.borrow_mut().add_sink(Box::new(HlsSink::new(
        hls_settings(&shared.cfg, listeners.hls.is_some()),
        shared.hls.clone(),
    )));
    let stats = ShardStats::new(ctx.id, shared.cfg.hls_viewer_idle());
    let hook_client = Rc::new(hooks::HookClient::new(
        ctx.id,
        shared.cfg.clone(),
        shared.server_id.clone(),
        shared.hook_signer.clone(),
        shared.hls_viewers.clone(),
        shared.relay_tls.clone(),
        stats.clone(),
    ));
    let recorders = Rc::new(record::Recorders::default());
    hub.borrow_mut().add_sink(Box::new(record::RecordSink::new(
        record_settings(&shared.cfg),
        recorders.clone(),
        hook_client.clone(),
    )));
    let shard_cell = relay::ShardCell::default();
    hub.borrow_mut()
        .add_sink(Box::new(relay::StaticPushSink::new(
            static_push_targets(&shared.cfg),
            shard_cell.clone(),
        )));
    let hub_in = hub.clone();
    let received = Rc::new(Cell::new(0u64));
    let counted = received.clone();
    mesh.spawn_receivers(move |from, msg| {
        counted.set(counted.get() + 1);
        hub_in.borrow_mut().on_message(from, msg)
    });
    let pending = PendingBudget::new(shared.cfg.max_shard_pending_bytes);
    let st = Rc::new(ShardState {
        id: ctx.id,
        cfg: shared.cfg,
        hub,
        keys: shared.keys,
        directory: shared.directory,
        hls: shared.hls,
        hls_tls: shared.hls_tls,
        rtmp_tls: shared.rtmp_tls,
        relay_tls: shared.relay_tls,
        jwt: shared.jwt,
        next_conn: Cell::new(0),
        watchlist: Rc::default(),
        stats,
        board: shared.board,
        relays: shared.relays,
        admission: shared.admission,
        pending,
        hooks: hook_client,
    });
    let _ = shard_cell.set(Rc::downgrade(&st));
    let _sweeper = watch::spawn_sweeper(st.watchlist.clone());
    let ticker = spawn_ticker(st.clone(), outbox, received);
    let flush_every = match st.cfg.merge_write_ms {
        0 => st.cfg.audio_merge_ms,
        ms => ms,
    };
    let _merge_flusher = spawn_merge_flusher(st.hub.clone(), flush_every);
    let hook_updater = st.hooks.spawn_updater();
    let mut tasks = Vec::new();
    let wanted = [
        ("rtmp", Some(listeners.rtmp)),
        ("httpflv", listeners.httpflv),
        ("hls", listeners.hls),
        ("api", listeners.api),
    ];
    for (proto, addr) in wanted {
        let Some(addr) = addr else { continue };
        match TcpListener::bind(addr) {
            Ok(l) => {
                if ctx.id == 0 {
                    let tls = match proto {
                        "rtmp" => st.rtmp_tls.is_some(),
                        "hls" => st.hls_tls.is_some(),
                        _ => false,
                    };
                    info!(proto = %proto, addr = %addr, shards = ctx.count, tls, "listening");
                }
                tasks.push(start_listener(proto, l, st.clone()));
            }
            Err(e) => {
                tracing::error!(proto, addr = %addr, error = %e, "cannot listen");
                ctx.shutdown.trigger();
            }
        }
    }
    info!(shard = ctx.id, "shard started");
    ctx.shutdown.wait().await;
    // Stop accepting; returning ends the executor, which drops (closes) every connection.
    drop(tasks);
    drop(ticker);
    // No on_update round while shutdown tells the ends: it would revoke what is ending.
    drop(hook_updater);
    // Hook servers hear the end of what shutdown ends (on_unpublish, on_stop), then of the
    // recordings it closes (on_record_done), before the executor ends.
    st.hooks.end_all();
    // Recordings end with a complete file.
    recorders.finish_all(RECORD_FINISH).await;
    st.hooks.drain().await;
    info!(shard = ctx.id, "shard stopping");
}

fn start_listener(proto: &'static str, l: TcpListener, st: Rc<ShardState>) -> glommio::Task<()> {
    match proto {
        "rtmp" => spawn_accept(l, st, Proto::Rtmp, rtmp::serve),
        "httpflv" => spawn_accept(l, st, Proto::HttpFlv, httpflv::serve),
        "hls" => spawn_accept(l, st, Proto::Hls, hls::serve),
        _ => spawn_accept(l, st, Proto::Api, api::serve),
    }
}

/// How long shutdown waits for recordings to reach the disk and close.
const RECORD_FINISH: Duration = Duration::from_secs(5);

/// The signer of HLS session ids: from `hooks.hls_session_key`, or a random key per process.
fn hls_session_signer(secret: &str) -> crate::hooks::SessionSigner {
    match secret {
        "" => crate::hooks::SessionSigner::new(rand::random()),
        secret => crate::hooks::SessionSigner::from_secret(secret),
    }
}

/// What the record sink records: every app with `flv_archive`, else the apps with `record`.
fn record_settings(cfg: &Config) -> record::RecordSettings {
    record::RecordSettings {
        dir: cfg.flv_dir.clone().into(),
        apps: cfg
            .server
            .iter()
            .filter(|a| cfg.flv_archive || a.record)
            .map(|a| a.appname.clone())
            .collect(),
        max_pending_bytes: cfg.record_max_pending_bytes,
    }
}

/// Each app's `static_push` base URLs (apps without any left out).
fn static_push_targets(cfg: &Config) -> ahash::AHashMap<String, Vec<String>> {
    cfg.server
        .iter()
        .filter(|a| a.live && !a.static_push.is_empty())
        .map(|a| (a.appname.clone(), a.static_push.clone()))
        .collect()
}

/// What the HLS sink segments: the apps with `hls = true`, and none when the HLS listener is
/// off (`hls_addr` empty): nobody could fetch the segments, which hold ~30 s of each stream.
fn hls_settings(cfg: &Config, listening: bool) -> HlsSettings {
    HlsSettings {
        segmenter: HlsConfig {
            fragment_ms: cfg.hls_fragment * 1000,
            window: cfg.hls_window,
            grace: cfg.hls_grace,
        },
        apps: cfg
            .server
            .iter()
            .filter(|a| a.hls && listening)
            .map(|a| a.appname.clone())
            .collect(),
        keep_after_end: cfg.hls_keep_after_end,
        linger: Duration::from_secs(cfg.hls_linger),
    }
}

/// Once a second, let the hub's sinks do their housekeeping (expire ended HLS streams) and
/// publish this shard's stats report.
fn spawn_ticker(
    st: Rc<ShardState>,
    outbox: Rc<MeteredOutbox>,
    received: Rc<Cell<u64>>,
) -> glommio::Task<()> {
    spawn(async move {
        loop {
            glommio::timer::sleep(Duration::from_secs(1)).await;
            st.hub.borrow_mut().tick();
            let (live_streams, streams, dropped_live) = st.hub.borrow().figures();
            let now = std::time::Instant::now();
            let hls_hook_sessions = st.hooks.expire_hls(now);
            let figures = HubFigures {
                live_streams,
                streams,
                dropped_live,
                mesh_sent: outbox.sent.get(),
                mesh_full: outbox.full.get(),
                mesh_received: received.get(),
                pending_bytes: st.pending.used() as u64,
                tasks: running_tasks(),
                hls_hook_sessions,
            };
            let mut report = st.stats.tick(now, figures);
            report.streams = st.hub.borrow().codecs();
            st.board.publish(report);
        }
    })
}

/// Every `merge_write_ms` (or, in realtime mode, `audio_merge_ms`), send what players hold:
/// merged writes, or audio waiting for a late video frame. No task when both are 0.
fn spawn_merge_flusher(hub: SharedHub, every_ms: u64) -> Option<glommio::Task<()>> {
    let every = Duration::from_millis(every_ms);
    (every_ms > 0).then(|| {
        spawn(async move {
            loop {
                glommio::timer::sleep(every).await;
                hub.borrow().flush_held();
            }
        })
    })
}

/// Accept connections forever, each in its own task, at most `max_connections` at a time and
/// `max_connections_per_ip` from one address (over every listener and shard).
fn spawn_accept<F, Fut>(
    listener: TcpListener,
    st: Rc<ShardState>,
    proto: Proto,
    handler: F,
) -> glommio::Task<()>
where
    F: Fn(Rc<ShardState>, TcpStream, SocketAddr) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    spawn(async move {
        let open = Rc::new(Cell::new(0usize));
        let refusing = Rc::new(Cell::new(0usize));
        loop {
            let stream = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    warn!(proto = proto.label(), error = %e, "accept failed");
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let peer = stream
                .peer_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            let ticket = match admit(&st, open.get(), peer) {
                Ok(ticket) => ticket,
                Err(limit) => {
                    refuse(&st, proto, stream, limit, &refusing);
                    continue;
                }
            };
            open.set(open.get() + 1);
            st.stats.counters.accepted(proto);
            let open2 = open.clone();
            let st2 = st.clone();
            let fut = handler(st.clone(), stream, peer);
            spawn(async move {
                fut.await;
                drop(ticket);
                open2.set(open2.get() - 1);
                st2.stats.counters.closed(proto);
            })
            .detach();
        }
    })
}

/// Whether a new connection from `peer` may be served, with `open` already open on this
/// listener of this shard.
fn admit(st: &ShardState, open: usize, peer: SocketAddr) -> Result<crate::limits::Ticket, Limit> {
    if open >= st.cfg.max_connections {
        return Err(Limit::Connections);
    }
    st.admission
        .connect(peer.ip())
        .ok_or(Limit::ConnectionsPerIp)
}

/// Most refusals answered at once per listener and shard; beyond it, refused sockets are
/// simply closed (a flood must not buy a task per connection).
const MAX_REFUSALS_ANSWERING: usize = 64;
/// How long a refusal's 503 may take to leave.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// Turn a connection away: counted, logged, and on the HTTP listeners answered with a 503
/// naming the limit (RTMP has no way to say why before the handshake: it is closed).
fn refuse(
    st: &ShardState,
    proto: Proto,
    stream: TcpStream,
    limit: Limit,
    refusing: &Rc<Cell<usize>>,
) {
    st.stats.counters.refused(proto);
    st.stats.counters.limit_reached(limit);
    warn!(
        proto = proto.label(),
        shard = st.id,
        limit = limit.label(),
        "connection refused: limit reached"
    );
    if proto == Proto::Rtmp || refusing.get() >= MAX_REFUSALS_ANSWERING {
        return;
    }
    let status = 503;
    st.stats.counters.http_response(proto, status);
    let mut out = Vec::new();
    crate::http::Response::text(status, format!("limit reached: {}\n", limit.label()))
        .header("Retry-After", "5")
        .write_to(&mut out, false, false);
    refusing.set(refusing.get() + 1);
    let refusing = refusing.clone();
    spawn(async move {
        let conn = io::Conn::new(stream);
        if within(REFUSAL_WRITE, conn.write_all(&out)).await.is_some() {
            io::linger_close(&conn, REFUSAL_WRITE).await;
        }
        refusing.set(refusing.get() - 1);
    })
    .detach();
}

thread_local! {
    /// Tasks spawned through [`spawn`] still running on this thread (a shard is one thread).
    static TASKS: Cell<u64> = const { Cell::new(0) };
}

/// Gives the task's place back when the task ends or is dropped.
struct TaskCount;

impl Drop for TaskCount {
    fn drop(&mut self) {
        TASKS.with(|t| t.set(t.get().saturating_sub(1)));
    }
}

/// Spawn a task on this shard, counted in `shardcast_tasks{shard}` while it lives (the soak
/// bench watches that it stays flat).
pub(crate) fn spawn<T: 'static>(
    fut: impl std::future::Future<Output = T> + 'static,
) -> glommio::Task<T> {
    TASKS.with(|t| t.set(t.get() + 1));
    let count = TaskCount;
    glommio::spawn_local(async move {
        let _count = count;
        fut.await
    })
}

/// Tasks of this shard spawned through [`spawn`] and not ended.
fn running_tasks() -> u64 {
    TASKS.with(Cell::get)
}

/// Race `fut` against a timeout; `None` when the time ran out.
pub(crate) async fn within<T>(d: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(fut.await) }, async {
        glommio::timer::sleep(d).await;
        None
    })
    .await
}
