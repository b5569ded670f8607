//! Admission limits: what a connection, a player or a publisher must get past before it is
//! served, beyond the per-connection bounds the protocol cores enforce themselves.
//!
//! [`Admission`] is process-wide (a client's connections and a stream's players are spread over
//! every shard). It is consulted when a connection is accepted or a player joins, never per
//! packet, so a mutex is fine. [`PendingBudget`] is per shard and lock-free: the RTMP reader
//! reports its incomplete-message bytes after each read.

use ahash::AHashMap;
use std::cell::Cell;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The limits a refusal is counted under in `/metrics` (`shardcast_limit_refusals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `max_connections`: connections per shard per listener.
    Connections,
    /// `max_connections_per_ip`: connections from one client address, over every listener.
    ConnectionsPerIp,
    /// `max_streams`: streams with a publisher.
    Streams,
    /// `max_players_per_stream`: RTMP and HTTP-FLV players of one stream.
    PlayersPerStream,
    /// `max_shard_pending_bytes`: incomplete RTMP messages held by a shard.
    PendingBytes,
    /// `hooks.max_hls_sessions`: HLS viewers allowed by `on_play`, followed until `on_stop`.
    HlsSessions,
}

impl Limit {
    pub const ALL: [Limit; 6] = [
        Limit::Connections,
        Limit::ConnectionsPerIp,
        Limit::Streams,
        Limit::PlayersPerStream,
        Limit::PendingBytes,
        Limit::HlsSessions,
    ];

    /// The config key, which is also the metric's `limit` label.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Connections => "max_connections",
            Limit::ConnectionsPerIp => "max_connections_per_ip",
            Limit::Streams => "max_streams",
            Limit::PlayersPerStream => "max_players_per_stream",
            Limit::PendingBytes => "max_shard_pending_bytes",
            Limit::HlsSessions => "hooks.max_hls_sessions",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Process-wide counts of connections per client address and players per stream.
#[derive(Debug)]
pub struct Admission {
    /// 0: no per-address limit (and no bookkeeping).
    max_per_ip: usize,
    max_players: usize,
    ips: Mutex<AHashMap<IpAddr, usize>>,
    players: Mutex<AHashMap<String, usize>>,
}

/// A place taken under a limit; dropping it gives the place back.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    held: Held,
}

#[derive(Debug)]
enum Held {
    Nothing,
    Ip(IpAddr),
    Player(String),
}

impl Admission {
    /// `max_per_ip` 0 turns the per-address limit off.
    pub fn new(max_per_ip: usize, max_players: usize) -> Arc<Self> {
        Arc::new(Admission {
            max_per_ip,
            max_players,
            ips: Mutex::default(),
            players: Mutex::default(),
        })
    }

    /// A connection from `ip`, unless that address holds `max_per_ip` already.
    pub fn connect(self: &Arc<Self>, ip: IpAddr) -> Option<Ticket> {
        if self.max_per_ip == 0 {
            return Some(self.ticket(Held::Nothing));
        }
        take(&self.ips, ip, self.max_per_ip).then(|| self.ticket(Held::Ip(ip)))
    }

    /// A player of `key`, unless the stream has `max_players` already.
    pub fn join(self: &Arc<Self>, key: &str) -> Option<Ticket> {
        take(&self.players, key.to_owned(), self.max_players)
            .then(|| self.ticket(Held::Player(key.to_owned())))
    }

    /// Connections open from `ip` (for tests and diagnostics).
    pub fn connections_from(&self, ip: IpAddr) -> usize {
        count(&self.ips, &ip)
    }

    /// Players of `key` on every shard.
    pub fn players_of(&self, key: &str) -> usize {
        count(&self.players, &key.to_owned())
    }

    fn ticket(self: &Arc<Self>, held: Held) -> Ticket {
        Ticket {
            admission: self.clone(),
            held,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let a = &self.admission;
        match std::mem::replace(&mut self.held, Held::Nothing) {
            Held::Nothing => {}
            Held::Ip(ip) => give_back(&a.ips, &ip),
            Held::Player(key) => give_back(&a.players, &key),
        }
    }
}

/// Count one more under `key` if fewer than `max` are held.
fn take<K: std::hash::Hash + Eq>(map: &Mutex<AHashMap<K, usize>>, key: K, max: usize) -> bool {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    let n = map.entry(key).or_default();
    if *n >= max {
        return false;
    }
    *n += 1;
    true
}

/// Count one less under `key`, forgetting keys that reach zero (the maps stay small).
fn give_back<K: std::hash::Hash + Eq>(map: &Mutex<AHashMap<K, usize>>, key: &K) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

fn count<K: std::hash::Hash + Eq>(map: &Mutex<AHashMap<K, usize>>, key: &K) -> usize {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key).copied().unwrap_or(0)
}

/// A shard's bytes of incomplete RTMP messages, over all its connections. Each connection
/// reports its own figure after every read ([`PendingBudget::update`]); the connection whose
/// report takes the total over the cap is the one closed. The total may exceed the cap by at
/// most one read of one connection before that happens.
#[derive(Debug)]
pub struct PendingBudget {
    max: usize,
    used: Cell<usize>,
}

impl PendingBudget {
    pub fn new(max: usize) -> Self {
        PendingBudget {
            max,
            used: Cell::new(0),
        }
    }

    /// A connection's figure moved from `*reported` to `now`. Returns false when the shard is
    /// over its cap and this connection holds incomplete bytes (it should be closed).
    pub fn update(&self, reported: &Cell<usize>, now: usize) -> bool {
        let used = self.used.get() - reported.get().min(self.used.get()) + now;
        self.used.set(used);
        reported.set(now);
        used <= self.max || now == 0
    }

    /// The connection is gone: its bytes no longer count.
    pub fn release(&self, reported: &Cell<usize>) {
        self.update(reported, 0);
    }

    pub fn used(&self) -> usize {
        self.used.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_ip_are_counted_and_given_back() {
        let a = Admission::new(2, 10);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t1 = a.connect(ip).unwrap();
        let _t2 = a.connect(ip).unwrap();
        assert!(a.connect(ip).is_none(), "third connection from one address");
        assert!(
            a.connect(other).is_some(),
            "another address is not affected"
        );
        drop(t1);
        assert_eq!(a.connections_from(ip), 1);
        assert!(a.connect(ip).is_some());
    }

    #[test]
    fn no_per_ip_limit_keeps_no_entries() {
        let a = Admission::new(0, 10);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let tickets: Vec<_> = (0..100).map(|_| a.connect(ip).unwrap()).collect();
        assert_eq!(a.connections_from(ip), 0);
        drop(tickets);
    }

    #[test]
    fn players_per_stream() {
        let a = Admission::new(0, 2);
        let p1 = a.join("live/a").unwrap();
        let p2 = a.join("live/a").unwrap();
        assert!(a.join("live/a").is_none());
        assert!(a.join("live/b").is_some());
        drop((p1, p2));
        assert_eq!(a.players_of("live/a"), 0);
        assert!(a.ips.lock().unwrap().is_empty());
        assert!(
            a.players.lock().unwrap().is_empty(),
            "emptied keys are forgotten"
        );
    }

    #[test]
    fn pending_budget_blames_the_connection_that_crosses_the_cap() {
        let b = PendingBudget::new(100);
        let (c1, c2) = (Cell::new(0), Cell::new(0));
        assert!(b.update(&c1, 60));
        assert!(
            b.update(&c1, 80),
            "a connection's figure replaces its last one"
        );
        assert_eq!(b.used(), 80);
        assert!(!b.update(&c2, 30), "80 + 30 is over 100");
        assert!(
            b.update(&c2, 0),
            "a connection holding nothing is never blamed"
        );
        b.release(&c1);
        assert_eq!(b.used(), 0);
        assert!(b.update(&c2, 100));
    }
}
