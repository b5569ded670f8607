//! Relay bookkeeping shared by every shard: the process-wide registry of relay sessions
//! (`/control/pull`, `/control/push`, `static_push`), their state for `/metrics`, and the
//! reconnect backoff. No I/O here: `serve::relay` drives the connections.
//!
//! The registry is a `Mutex<HashMap>` touched only by the API (start, stop, metrics) and by a
//! relay task when it changes state or ends, never per packet. A relay task runs on the shard
//! that started it; a stop may come from any shard, so it is an atomic flag the task polls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What a relay does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/control/pull`: play a remote stream, publish it locally.
    Pull,
    /// `/control/push`: play a local stream, publish it to a remote URL.
    Push,
    /// An app's `static_push`: every publish re-published to each target while it lasts.
    StaticPush,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Pull, Kind::Push, Kind::StaticPush];

    /// The `kind` label of `/metrics` and the prefix of registry keys.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Pull => "pull",
            Kind::Push => "push",
            Kind::StaticPush => "static_push",
        }
    }

    /// The `protocol` a relay session shows in `/stat/livestat`.
    pub fn protocol(self) -> &'static str {
        match self {
            Kind::Pull => "relay-pull",
            Kind::Push | Kind::StaticPush => "relay-push",
        }
    }
}

/// Where a relay is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Resolving, connecting, handshaking, waiting for the remote to accept play/publish.
    Connecting = 0,
    /// Media flows.
    Running = 1,
    /// The last attempt failed or the remote dropped: waiting before the next attempt.
    Backoff = 2,
}

impl State {
    pub const ALL: [State; 3] = [State::Connecting, State::Running, State::Backoff];

    pub fn label(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Running => "running",
            State::Backoff => "backoff",
        }
    }

    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Running,
            2 => State::Backoff,
            _ => State::Connecting,
        }
    }
}

/// One relay session, shared by the registry and the task that runs it.
#[derive(Debug)]
pub struct Handle {
    pub kind: Kind,
    /// Registry key: `pull:app/name`, `push:app/name`, `static_push:app/name#n`.
    pub id: String,
    /// The local stream, `app/name`.
    pub stream: String,
    /// The remote URL.
    pub url: String,
    stop: AtomicBool,
    state: AtomicU8,
}

impl Handle {
    pub fn new(kind: Kind, id: String, stream: &str, url: &str) -> Self {
        Handle {
            kind,
            id,
            stream: stream.to_owned(),
            url: url.to_owned(),
            stop: AtomicBool::new(false),
            state: AtomicU8::new(State::Connecting as u8),
        }
    }

    /// Ask the task to end (it notices within its poll period).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Relaxed);
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Relaxed))
    }
}

/// The registry key of an API relay of `stream` (`app/name`).
pub fn session_id(kind: Kind, stream: &str) -> String {
    format!("{}:{stream}", kind.label())
}

/// Every relay of the process.
#[derive(Debug, Default)]
pub struct Registry {
    map: Mutex<HashMap<String, Arc<Handle>>>,
    next: AtomicU64,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Handle>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register `handle` under its id; `Err` with the running one if the id is taken.
    pub fn insert(&self, handle: Arc<Handle>) -> Result<(), Arc<Handle>> {
        let mut map = self.lock();
        if let Some(existing) = map.get(&handle.id) {
            return Err(existing.clone());
        }
        map.insert(handle.id.clone(), handle);
        Ok(())
    }

    /// A registry id no other session has: `{kind}:{stream}#{n}` (static pushes, several
    /// per stream).
    pub fn unique_id(&self, kind: Kind, stream: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}#{n}", session_id(kind, stream))
    }

    /// Unregister `handle` if it is still the one under its id (a stopped session's task
    /// ends after a new session of the same id may have started).
    pub fn remove(&self, handle: &Arc<Handle>) {
        let mut map = self.lock();
        if map.get(&handle.id).is_some_and(|h| Arc::ptr_eq(h, handle)) {
            map.remove(&handle.id);
        }
    }

    /// Unregister the session `id` and tell its task to end; `None` if there is none.
    pub fn stop(&self, id: &str) -> Option<Arc<Handle>> {
        let handle = self.lock().remove(id)?;
        handle.stop();
        Some(handle)
    }

    /// Sessions per (kind, state), every combination listed (zeros included).
    pub fn gauges(&self) -> Vec<(&'static str, &'static str, u64)> {
        let map = self.lock();
        let mut out = Vec::with_capacity(Kind::ALL.len() * State::ALL.len());
        for kind in Kind::ALL {
            for state in State::ALL {
                let n = map
                    .values()
                    .filter(|h| h.kind == kind && h.state() == state)
                    .count();
                out.push((kind.label(), state.label(), n as u64));
            }
        }
        out
    }
}

/// Exponential reconnect delays: `initial`, doubling up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay to wait now; the following one doubles (up to `max`).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to `initial` (after a session that ran long enough to count as healthy).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(kind: Kind, stream: &str) -> Arc<Handle> {
        Arc::new(Handle::new(
            kind,
            session_id(kind, stream),
            stream,
            "rtmp://h/a/b",
        ))
    }

    #[test]
    fn insert_refuses_a_running_id_and_stop_removes_it() {
        let reg = Registry::new();
        let a = handle(Kind::Pull, "live/x");
        reg.insert(a.clone()).unwrap();
        let again = reg.insert(handle(Kind::Pull, "live/x")).unwrap_err();
        assert!(Arc::ptr_eq(&again, &a));
        reg.insert(handle(Kind::Push, "live/x")).unwrap();
        assert!(reg.stop("pull:live/y").is_none());
        let stopped = reg.stop("pull:live/x").unwrap();
        assert!(stopped.is_stopped() && a.is_stopped());
        assert!(reg.stop("pull:live/x").is_none());
    }

    #[test]
    fn remove_only_removes_the_same_session() {
        let reg = Registry::new();
        let old = handle(Kind::Pull, "live/x");
        reg.insert(old.clone()).unwrap();
        reg.stop(&old.id);
        let new = handle(Kind::Pull, "live/x");
        reg.insert(new.clone()).unwrap();
        reg.remove(&old);
        assert!(reg.insert(handle(Kind::Pull, "live/x")).is_err());
        reg.remove(&new);
        assert!(reg.insert(handle(Kind::Pull, "live/x")).is_ok());
    }

    #[test]
    fn gauges_count_by_kind_and_state() {
        let reg = Registry::new();
        let a = handle(Kind::Pull, "live/a");
        let b = handle(Kind::Pull, "live/b");
        b.set_state(State::Running);
        let id = reg.unique_id(Kind::StaticPush, "live/a");
        assert_ne!(id, reg.unique_id(Kind::StaticPush, "live/a"));
        let c = Arc::new(Handle::new(Kind::StaticPush, id, "live/a", "rtmp://h/a/a"));
        c.set_state(State::Backoff);
        for h in [a, b, c] {
            reg.insert(h).unwrap();
        }
        let g = reg.gauges();
        assert_eq!(g.len(), 9);
        let get = |k, s| g.iter().find(|x| x.0 == k && x.1 == s).unwrap().2;
        assert_eq!(get("pull", "connecting"), 1);
        assert_eq!(get("pull", "running"), 1);
        assert_eq!(get("static_push", "backoff"), 1);
        assert_eq!(get("push", "running"), 0);
    }

    #[test]
    fn backoff_doubles_to_the_bound_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
