//! HTTP hook calls on the shard's executor: a small HTTP/1.1 client on glommio's
//! `TcpStream` (request bytes and answer parsing are `crate::hooks`, sans-IO).
//!
//! A call never blocks the shard: it is a future like any connection's, bounded by
//! `hooks.timeout_ms` as a whole (waiting for a slot, resolving, connecting, sending, reading
//! the answer) and by `hooks.max_in_flight` calls per shard. Decisions (`on_connect`,
//! `on_publish`, `on_play`) are awaited by the connection that asked; notifications run as
//! detached tasks, dropped (and counted) when no slot is free.

use super::io::Conn;
use super::tls::{TlsConn, Transport};
use super::within;
use crate::config::Config;
use crate::hooks::hls_viewers::{Full, HlsViewers, Seen, Viewer};
use crate::hooks::{build_request, parse_response, Action, HookEvent, HookUrl, Reply, Verdict};
use crate::hooks::{SessionSigner, MAX_RESPONSE_BYTES};
use crate::stats::{HookResult, ShardStats};
use ahash::AHashMap;
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// What the hooks decided about a connect, publish or play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Every hook allowed (or failed with an allow policy); `room`: the first room a hook
    /// mapped the publish name to.
    Allow { room: Option<String> },
    /// Refused: why (for logs and the client), and whether a failed call (not an answer)
    /// caused it.
    Deny { reason: String, failed: bool },
}

/// One shard's hook client.
pub(crate) struct HookClient {
    shard: usize,
    cfg: Arc<Config>,
    server_id: Arc<str>,
    slots: Rc<Semaphore>,
    stats: Rc<ShardStats>,
    /// Signs HLS session ids (one key per process, so every shard checks any shard's ids).
    pub signer: Arc<SessionSigner>,
    /// HLS viewers allowed by `on_play`, shared by every shard (a viewer's requests may
    /// arrive on several connections, so several shards); locked once per HLS request of a
    /// hooked app and once a second per shard, never on the media path.
    hls_viewers: SharedHlsViewers,
    /// For `https://` hook URLs.
    tls: TlsClient,
    /// Publishes and plays whose end the hooks are to hear, by [`Opened::id`].
    open: RefCell<AHashMap<u64, OpenEntry>>,
    next_open: Cell<u64>,
    /// Notification tasks running (shutdown waits for them).
    running: Rc<Cell<usize>>,
    /// Shutdown has told everything: no more calls (the executor is about to end).
    stopped: Cell<bool>,
}

/// An open publish or play: the action that tells its end, its event, and why `on_update`
/// ended it, once it did.
struct OpenEntry {
    end: Action,
    ev: HookEvent,
    revoked: Revoked,
}

/// Set by a refusing `on_update`; the connection's sweeper check reads it.
type Revoked = Rc<RefCell<Option<String>>>;

/// A publish or play whose end the hooks are to hear (`on_unpublish`, `on_stop`). The end is
/// told once: when this is dropped (the connection ended) or at shutdown, whichever comes
/// first.
pub(crate) struct Opened {
    hooks: Rc<HookClient>,
    id: u64,
    revoked: Revoked,
}

impl Opened {
    /// Why `on_update` refused this session, if it did: the connection must end.
    pub fn revoked(&self) -> Option<String> {
        self.revoked.borrow().clone()
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let open = self.hooks.open.borrow_mut().remove(&self.id);
        if let Some(entry) = open {
            self.hooks.notify(entry.end, &entry.ev);
        }
    }
}

/// Counts a running notification task while it lives.
struct Running(Rc<Cell<usize>>);

impl Running {
    fn new(count: &Rc<Cell<usize>>) -> Self {
        count.set(count.get() + 1);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// The process's HLS hook sessions.
pub(crate) type SharedHlsViewers = Arc<Mutex<HlsViewers>>;

impl HookClient {
    pub fn new(
        shard: usize,
        cfg: Arc<Config>,
        server_id: Arc<str>,
        signer: Arc<SessionSigner>,
        hls_viewers: SharedHlsViewers,
        tls: TlsClient,
        stats: Rc<ShardStats>,
    ) -> Self {
        let slots = Rc::new(Semaphore::new(cfg.hooks.max_in_flight as u64));
        HookClient {
            shard,
            cfg,
            server_id,
            slots,
            stats,
            signer,
            hls_viewers,
            tls,
            open: RefCell::default(),
            next_open: Cell::new(0),
            running: Rc::default(),
            stopped: Cell::new(false),
        }
    }

    /// A publish or play has started: its end, `end` with `ev`, is told when the returned
    /// guard drops, or at shutdown, and it is asked `on_update` every `hooks.update_secs`.
    /// `None` when `ev.app` has hooks for neither.
    pub fn open(self: &Rc<Self>, end: Action, ev: HookEvent) -> Option<Opened> {
        let watched = self.has(&ev.app, end) || self.has(&ev.app, Action::Update);
        if !watched || self.stopped.get() {
            return None;
        }
        let id = self.next_open.get() + 1;
        self.next_open.set(id);
        let revoked = Revoked::default();
        let entry = OpenEntry {
            end,
            ev,
            revoked: revoked.clone(),
        };
        self.open.borrow_mut().insert(id, entry);
        Some(Opened {
            hooks: self.clone(),
            id,
            revoked,
        })
    }

    /// Every `hooks.update_secs`, ask `on_update` about each open publish and play of an app
    /// that has it (all at once, each waiting for a slot like any decision), and mark the
    /// ones refused; the next round starts when every call of this one is over. `None` when
    /// no app has `on_update`.
    pub fn spawn_updater(self: &Rc<Self>) -> Option<glommio::Task<()>> {
        let any = self
            .cfg
            .server
            .iter()
            .any(|app| self.has(&app.appname, Action::Update));
        let me = self.clone();
        any.then(|| {
            super::spawn(async move {
                let every = Duration::from_secs(me.cfg.hooks.update_secs);
                loop {
                    glommio::timer::sleep(every).await;
                    me.update_round().await;
                }
            })
        })
    }

    async fn update_round(self: &Rc<Self>) {
        let due: Vec<(HookEvent, Revoked)> = self
            .open
            .borrow()
            .values()
            .filter(|e| e.revoked.borrow().is_none() && self.has(&e.ev.app, Action::Update))
            .map(|e| (e.ev.clone(), e.revoked.clone()))
            .collect();
        let calls: Vec<glommio::Task<()>> = due
            .into_iter()
            .map(|(ev, revoked)| {
                let me = self.clone();
                super::spawn(async move {
                    // A failed call allows (Action::Update's failure policy): a hook server
                    // outage must not end every stream.
                    if let Decision::Deny { reason, .. } = me.decide(Action::Update, &ev).await {
                        *revoked.borrow_mut() =
                            Some(format!("refused by on_update hook: {reason}"));
                    }
                })
            })
            .collect();
        for call in calls {
            call.await;
        }
    }

    /// At shutdown: tell the end of every publish and play still open on this shard and of
    /// its HLS sessions. These calls wait (at most `hooks.timeout_ms`) for a free slot
    /// instead of being dropped at `hooks.max_in_flight`.
    pub fn end_all(self: &Rc<Self>) {
        let deadline = Instant::now() + self.timeout();
        let open: Vec<(Action, HookEvent)> = self
            .open
            .borrow_mut()
            .drain()
            .map(|(_, e)| (e.end, e.ev))
            .collect();
        let hls = self
            .hls_viewers()
            .expire(self.shard, Instant::now(), Duration::ZERO);
        for (action, ev) in &open {
            self.send(*action, ev, self.shard, Some(deadline));
        }
        for ev in &hls {
            self.send(Action::Stop, ev, self.shard, Some(deadline));
        }
        let ends = open.len() + hls.len();
        if ends > 0 {
            info!(
                shard = self.shard,
                ends, "telling hooks of the publishes and plays shutdown ends"
            );
        }
    }

    /// At shutdown, after [`Self::end_all`] and the recordings' close: wait, at most
    /// `hooks.timeout_ms`, for every notification running (`on_record_done` included). Then
    /// no more calls are made: the executor is about to end.
    pub async fn drain(&self) {
        let deadline = Instant::now() + self.timeout();
        while self.running.get() > 0 && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        let unfinished = self.running.get();
        if unfinished > 0 {
            warn!(
                shard = self.shard,
                unfinished, "hook notifications cut short by shutdown"
            );
        }
        self.stopped.set(true);
    }

    /// Whether `app` has hooks for `action`.
    pub fn has(&self, app: &str, action: Action) -> bool {
        !self.cfg.hook_urls(app, action).is_empty()
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.hooks.timeout_ms)
    }

    /// Ask every hook of `action` for `ev.app`, in order; the first refusal ends it. Allows at
    /// once when the app has none. Counts a refusal in the stats and logs it. The whole
    /// decision, every URL included, takes at most `hooks.timeout_ms` (a URL not reached in
    /// time fails like a call that timed out), so a waiting client is answered before its
    /// connection's idle timeout however many URLs there are.
    pub async fn decide(&self, action: Action, ev: &HookEvent) -> Decision {
        self.decide_as(action, ev, self.shard).await
    }

    /// [`Self::decide`] for an event of `shard` (an HLS session started there).
    pub async fn decide_as(&self, action: Action, ev: &HookEvent, shard: usize) -> Decision {
        let urls = self.cfg.hook_urls(&ev.app, action);
        let body = ev.body(action, shard, &self.server_id);
        let deadline = Instant::now() + self.timeout();
        let mut room = None;
        for url in urls {
            let reason = match self.call(action, url, &body, deadline).await {
                Ok(reply) => match reply.verdict() {
                    Verdict::Allow { room: r } => {
                        room = room.or(r);
                        continue;
                    }
                    Verdict::Deny { status } => Err(format!("{url} answered {status}")),
                },
                Err(why) => Ok(why),
            };
            match reason {
                Err(denied) => {
                    self.stats.counters.hook_denied(action, false);
                    info!(hook = action.name(), app = %ev.app, stream = %ev.stream,
                        client = %ev.client, reason = %denied, "hook denied");
                    return Decision::Deny {
                        reason: denied,
                        failed: false,
                    };
                }
                Ok(failed) if self.cfg.hooks.allows_on_failure(action) => {
                    warn!(hook = action.name(), app = %ev.app, stream = %ev.stream,
                        reason = %failed, "hook failed: allowed by the failure policy");
                }
                Ok(failed) => {
                    self.stats.counters.hook_denied(action, true);
                    warn!(hook = action.name(), app = %ev.app, stream = %ev.stream,
                        client = %ev.client, reason = %failed, "hook failed: denied");
                    return Decision::Deny {
                        reason: failed,
                        failed: true,
                    };
                }
            }
        }
        Decision::Allow { room }
    }

    /// Tell every hook of `action` for `ev.app`, without waiting: one detached task per URL,
    /// dropped (logged and counted) when `hooks.max_in_flight` calls already run.
    pub fn notify(self: &Rc<Self>, action: Action, ev: &HookEvent) {
        self.notify_as(action, ev, self.shard);
    }

    /// [`Self::notify`] for an event of `shard` (an HLS session started there): hook servers
    /// pair `on_play` and `on_stop` by `(shard, conn_id)`.
    pub fn notify_as(self: &Rc<Self>, action: Action, ev: &HookEvent, shard: usize) {
        self.send(action, ev, shard, None);
    }

    /// One detached task per URL. Without `wait_until`, a call finding no free slot is
    /// dropped; with it (shutdown), it waits for a slot until then, and the exchange too.
    fn send(
        self: &Rc<Self>,
        action: Action,
        ev: &HookEvent,
        shard: usize,
        wait_until: Option<Instant>,
    ) {
        let urls = self.cfg.hook_urls(&ev.app, action);
        if urls.is_empty() || self.stopped.get() {
            return;
        }
        let body: Rc<[u8]> = ev.body(action, shard, &self.server_id).into();
        for url in urls {
            let permit = match wait_until {
                Some(_) => None,
                None => match self.slots.clone().try_acquire_static_permit(1) {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        self.dropped(action, url, "hooks.max_in_flight calls already running");
                        continue;
                    }
                },
            };
            let (me, url, body) = (self.clone(), url.clone(), body.clone());
            let running = Running::new(&self.running);
            super::spawn(async move {
                let _running = running;
                let started = Instant::now();
                let left = wait_until.map_or(me.timeout(), |d| d.saturating_duration_since(started));
                let _permit = match permit {
                    Some(permit) => permit,
                    None => match within(left, me.slots.clone().acquire_static_permit(1)).await {
                        Some(Ok(permit)) => permit,
                        _ => return me.dropped(action, &url, "no free slot before shutdown's deadline"),
                    },
                };
                let left = left.saturating_sub(started.elapsed());
                if let Err(why) = me.exchange_within(action, &url, &body, started, left).await {
                    warn!(hook = action.name(), url = %url, reason = %why, "hook notification failed");
                }
            })
            .detach();
        }
    }

    fn dropped(&self, action: Action, url: &str, why: &str) {
        self.stats
            .counters
            .hook_call(action, HookResult::Dropped, 0);
        warn!(hook = action.name(), url = %url, "hook not sent: {why}");
    }

    /// One decision call: a slot, then the exchange, all before the decision's `deadline`.
    async fn call(
        &self,
        action: Action,
        url: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Reply, String> {
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        if left.is_zero() {
            self.stats
                .counters
                .hook_call(action, HookResult::Timeout, 0);
            return Err(format!(
                "{url}: not called, the URLs before it took all of hooks.timeout_ms ({} ms)",
                self.cfg.hooks.timeout_ms
            ));
        }
        let slot = within(left, self.slots.acquire_permit(1)).await;
        let Some(Ok(_permit)) = slot else {
            let ms = started.elapsed().as_millis() as u64;
            self.stats
                .counters
                .hook_call(action, HookResult::Timeout, ms);
            return Err(format!(
                "no free hook slot within {} ms (hooks.max_in_flight)",
                self.cfg.hooks.timeout_ms
            ));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        self.exchange_within(action, url, body, started, left).await
    }

    async fn exchange_within(
        &self,
        action: Action,
        url: &str,
        body: &[u8],
        started: Instant,
        left: Duration,
    ) -> Result<Reply, String> {
        let outcome = within(left, exchange(url, body, &self.tls)).await;
        let ms = started.elapsed().as_millis() as u64;
        let (result, outcome) = match outcome {
            None => (
                HookResult::Timeout,
                Err(format!(
                    "{url}: no answer within {} ms (hooks.timeout_ms)",
                    self.cfg.hooks.timeout_ms
                )),
            ),
            Some(Err(why)) => (HookResult::Error, Err(format!("{url}: {why}"))),
            Some(Ok(reply)) if (200..300).contains(&reply.status) => (HookResult::Allow, Ok(reply)),
            Some(Ok(reply)) => (HookResult::Deny, Ok(reply)),
        };
        self.stats.counters.hook_call(action, result, ms);
        outcome
    }

    fn hls_viewers(&self) -> std::sync::MutexGuard<'_, HlsViewers> {
        self.hls_viewers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the process knows of an HLS viewer (see [`HlsViewers::seen`]).
    pub fn hls_seen(&self, viewer: &Viewer, now: Instant) -> Seen {
        self.hls_viewers().seen(viewer, now)
    }

    /// `on_play` allowed an HLS viewer (asked as `shard`): start or renew its session for
    /// `hls_session_secs`.
    pub fn hls_allow(
        self: &Rc<Self>,
        viewer: &Viewer,
        (shard, ev): (usize, HookEvent),
        now: Instant,
    ) -> Result<(), Full> {
        let lasts = Duration::from_secs(self.cfg.hooks.hls_session_secs);
        let extra = self.hls_viewers().allow(viewer, ev, shard, now, lasts)?;
        if let Some((shard, ev)) = extra {
            self.notify_as(Action::Stop, &ev, shard);
        }
        Ok(())
    }

    /// A renewed `on_play` refused an HLS viewer: its session ends with `on_stop`.
    pub fn hls_end(self: &Rc<Self>, viewer: &Viewer) {
        let ended = self.hls_viewers().end(viewer);
        if let Some((shard, ev)) = ended {
            self.notify_as(Action::Stop, &ev, shard);
        }
    }

    /// Send `on_stop` for this shard's HLS viewers that stopped reloading their playlist
    /// (called once a second).
    pub fn expire_hls(self: &Rc<Self>, now: Instant) {
        let idle = self.cfg.hls_viewer_idle();
        let ended = self.hls_viewers().expire(self.shard, now, idle);
        for ev in &ended {
            self.notify(Action::Stop, ev);
        }
    }

    pub fn hls_session_secs(&self) -> u64 {
        self.cfg.hooks.hls_session_secs
    }
}

/// Resolve, connect (over TLS for `https://`), send the request and read the answer (no
/// timeout of its own).
async fn exchange(url: &str, body: &[u8], tls: &TlsClient) -> Result<Reply, String> {
    let url = HookUrl::parse(url)?;
    let stream = connect_any(&resolve(&url).await?).await?;
    let io = secure(Conn::new(stream), &url, tls)?;
    io.write_all(&build_request(&url, body))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 4096];
    loop {
        let n = io
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let take = n.min(MAX_RESPONSE_BYTES + 1 - buf.len().min(MAX_RESPONSE_BYTES + 1));
        buf.extend_from_slice(&chunk[..take]);
        if let Some(reply) = parse_response(&buf, n == 0)? {
            io.shutdown().await;
            return Ok(reply);
        }
    }
}

/// The client TLS configuration of `https://` hooks: the relays' (system roots or
/// `SSL_CERT_FILE`, host names checked unless `enable_tls_verify` is off), or why there is
/// none.
pub(crate) type TlsClient = Result<Arc<rustls::ClientConfig>, String>;

/// The connection to speak HTTP on: as is for `http://`, TLS over it for `https://` (SNI and
/// the certificate check use the URL's host).
fn secure(conn: Conn, url: &HookUrl, tls: &TlsClient) -> Result<Transport, String> {
    if !url.tls {
        return Ok(Transport::Plain(conn));
    }
    let config = tls.clone().map_err(|why| format!("https: {why}"))?;
    TlsConn::client(conn, config, &url.host)
        .map(|t| Transport::Tls(Box::new(t)))
        .map_err(|e| format!("https: {e}"))
}

/// Connect to the first of `addrs` that accepts (`localhost` may resolve to `::1` first
/// while the hook server listens on 127.0.0.1 only).
async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect(*addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// How long a host name's addresses are reused before the resolver is asked again.
const RESOLVED_TTL: Duration = Duration::from_secs(30);
/// How long a failed lookup is remembered (a dead resolver is not asked once per call).
const FAILED_TTL: Duration = Duration::from_secs(5);
/// Host names remembered per shard.
const MAX_RESOLVED: usize = 256;

type Resolved = Result<Rc<[SocketAddr]>, String>;

thread_local! {
    /// This shard's lookups by (host, port), with when they expire. The system resolver may
    /// block, so it runs on the executor's one blocking thread; caching keeps hook calls from
    /// queueing one lookup each behind a slow resolver.
    static RESOLVED: std::cell::RefCell<ahash::AHashMap<(String, u16), (Instant, Resolved)>> =
        std::cell::RefCell::default();
}

/// The hook server's addresses: an IP literal as is, a host name through the system resolver
/// on the executor's blocking thread, cached for [`RESOLVED_TTL`].
async fn resolve(url: &HookUrl) -> Result<Rc<[SocketAddr]>, String> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Ok(Rc::from([SocketAddr::new(ip, url.port)]));
    }
    let key = (url.host.clone(), url.port);
    let now = Instant::now();
    let cached = RESOLVED.with(|r| r.borrow().get(&key).cloned());
    if let Some((_, found)) = cached.filter(|(expires, _)| *expires > now) {
        return found;
    }
    let (host, port) = key.clone();
    let looked_up = glommio::executor()
        .spawn_blocking(move || (host.as_str(), port).to_socket_addrs().map(Vec::from_iter))
        .await;
    let found: Resolved = match looked_up {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs.into()),
        Ok(_) => Err(format!("{}: no address", url.host)),
        Err(e) => Err(format!("resolve {}: {e}", url.host)),
    };
    let ttl = if found.is_ok() {
        RESOLVED_TTL
    } else {
        FAILED_TTL
    };
    RESOLVED.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() >= MAX_RESOLVED {
            r.retain(|_, (expires, _)| *expires > now);
        }
        if r.len() < MAX_RESOLVED {
            r.insert(key, (Instant::now() + ttl, found.clone()));
        }
    });
    found
}
