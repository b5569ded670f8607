//! HTTP hook calls on the shard's executor: a small HTTP/1.1 client on glommio's
//! `TcpStream` (request bytes and answer parsing are `crate::hooks`, sans-IO).
//!
//! A call never blocks the shard: it is a future like any connection's, bounded by
//! `hooks.timeout_ms` (a decision over all its URLs: waiting for a slot, resolving,
//! connecting, sending, reading the answer) and by `hooks.max_in_flight` calls per shard.
//! Decisions (`on_connect`, `on_publish`, `on_play`) are awaited by the connection that asked,
//! `on_update` by the shard's update round; notifications run as detached tasks, dropped (and
//! counted) when no slot is free, except at shutdown, when they wait for one.
//!
//! Here: the client, decisions, notifications and the HLS sessions' calls. `sessions`: the
//! open publishes and plays (their ends, `on_update`, shutdown). `exchange`: one call over the
//! network.

mod exchange;
mod sessions;

pub(crate) use exchange::TlsClient;
pub(crate) use sessions::Opened;

use super::within;
use crate::config::Config;
use crate::hooks::hls_viewers::{Full, HlsViewers, Seen, Viewer};
use crate::hooks::{Action, HookEvent, Reply, SessionSigner, Verdict};
use crate::stats::{HookResult, ShardStats};
use ahash::AHashMap;
use glommio::sync::Semaphore;
use sessions::{OpenEntry, Running};
use std::cell::{Cell, RefCell};
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
    /// Signs HLS session ids: one key for the process (every shard checks any shard's ids),
    /// or for every node given the same `hooks.hls_session_key`.
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
        if urls.is_empty() {
            // No hook: nothing to build (every HTTP-FLV play comes through here).
            return Decision::Allow { room: None };
        }
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
        let outcome = within(left, exchange::exchange(url, body, &self.tls)).await;
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
    /// (called once a second). Returns how many HLS sessions the shard still has.
    pub fn expire_hls(self: &Rc<Self>, now: Instant) -> u64 {
        let idle = self.cfg.hls_viewer_idle();
        let (ended, held) = self.hls_viewers().expire(self.shard, now, idle);
        for ev in &ended {
            self.notify(Action::Stop, ev);
        }
        held as u64
    }

    pub fn hls_session_secs(&self) -> u64 {
        self.cfg.hooks.hls_session_secs
    }
}
