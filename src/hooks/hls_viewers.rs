//! HLS viewers as virtual connections, so `on_play` and `on_stop` pair up for HLS as they do
//! for RTMP and HTTP-FLV (SRS does the same for its HLS "virtual connections").
//!
//! An HLS viewer is a run of HTTP requests, often over several TCP connections (so several
//! shards), with no connection whose end means "stopped". A viewer is a stream, the query of
//! its playlist URL (without `hls_session`) and a client IP. The first `on_play` that allows
//! it starts a session with a connection id of its own. While its playlist reloads keep coming
//! (hls.js and Safari reload about once per target duration), it stays; once the
//! authorization runs out (`hooks.hls_session_secs`) the next reload asks `on_play` again
//! with the same id. The session ends, and its `on_stop` is due, when no reload came for the
//! idle time, or when that renewed `on_play` refuses it.
//!
//! Pure bookkeeping over `Instant`s: the serve layer keeps one table per process (behind a
//! lock taken once per hooked HLS request and once a second per shard) and sends the calls.

use super::HookEvent;
use ahash::{AHashMap, RandomState};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Who an HLS viewer is.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// `app/room`.
    pub stream: &'a str,
    /// The raw query of its request, without `hls_session`.
    pub query: &'a str,
    pub ip: IpAddr,
}

/// The table's key: the query, as long as a client's request head allows, is kept as a keyed
/// 64-bit hash (the key is random per process, so a client cannot aim at another viewer's
/// entry); the session's event keeps the query itself for its `on_stop`.
type Key = (String, u64, IpAddr);

#[derive(Debug)]
struct Session {
    /// What its `on_play` was told (with its connection id); its `on_stop` says the same.
    ev: HookEvent,
    /// The shard that started it: `(shard, conn_id)` is what hook servers pair calls by.
    shard: usize,
    /// When its authorization runs out and `on_play` is asked again.
    recheck_at: Instant,
    /// Its last playlist request.
    last_seen: Instant,
}

/// What the table knows of a viewer.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// Allowed, authorization still valid: serve it (its last request is now).
    Allowed,
    /// Allowed before, authorization ran out: ask `on_play` again with this event, as the
    /// shard that started the session (same connection id, same shard), then
    /// [`HlsViewers::allow`] or [`HlsViewers::end`].
    Recheck(usize, HookEvent),
    /// Unknown: ask `on_play` with a new connection id.
    New,
    /// Unknown, and the table holds `max` sessions: refuse without asking.
    Full,
}

/// The table is full (`hooks.max_hls_sessions`).
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

/// A session that ended: the shard whose id it has and the event for its `on_stop`.
pub type Ended = (usize, HookEvent);

/// Every live HLS session of the process.
#[derive(Debug)]
pub struct HlsViewers {
    hasher: RandomState,
    sessions: AHashMap<Key, Session>,
    max: usize,
}

impl HlsViewers {
    /// A table of at most `max` sessions.
    pub fn new(max: usize) -> Self {
        HlsViewers {
            hasher: RandomState::new(),
            sessions: AHashMap::new(),
            max,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    fn key(&self, v: &Viewer) -> Key {
        (v.stream.to_owned(), self.hasher.hash_one(v.query), v.ip)
    }

    /// Look a viewer's request up; a served one counts as its latest sign of life.
    pub fn seen(&mut self, v: &Viewer, now: Instant) -> Seen {
        let full = self.sessions.len() >= self.max;
        match self.sessions.get_mut(&self.key(v)) {
            Some(s) if now < s.recheck_at => {
                s.last_seen = now;
                Seen::Allowed
            }
            Some(s) => Seen::Recheck(s.shard, s.ev.clone()),
            None if full => Seen::Full,
            None => Seen::New,
        }
    }

    /// `on_play` allowed `ev` (asked as `shard`): start the viewer's session, or renew it for
    /// `lasts`. If another request of the same viewer started one meanwhile (two requests
    /// asked at once), that one stays and `ev`'s is returned, ended at once, so every
    /// `on_play` still gets its `on_stop`.
    pub fn allow(
        &mut self,
        v: &Viewer,
        ev: HookEvent,
        shard: usize,
        now: Instant,
        lasts: Duration,
    ) -> Result<Option<Ended>, Full> {
        let key = self.key(v);
        if let Some(s) = self.sessions.get_mut(&key) {
            s.last_seen = now;
            if (s.shard, s.ev.conn_id) == (shard, ev.conn_id) {
                s.recheck_at = now + lasts;
                return Ok(None);
            }
            return Ok(Some((shard, ev)));
        }
        if self.sessions.len() >= self.max {
            return Err(Full);
        }
        let session = Session {
            ev,
            shard,
            recheck_at: now + lasts,
            last_seen: now,
        };
        self.sessions.insert(key, session);
        Ok(None)
    }

    /// The renewed `on_play` refused the viewer: its session ends.
    pub fn end(&mut self, v: &Viewer) -> Option<Ended> {
        let key = self.key(v);
        self.sessions.remove(&key).map(|s| (s.shard, s.ev))
    }

    /// End `shard`'s sessions with no request for `idle`: their events, and how many
    /// sessions `shard` still has.
    pub fn expire(
        &mut self,
        shard: usize,
        now: Instant,
        idle: Duration,
    ) -> (Vec<HookEvent>, usize) {
        let (mut ended, mut held) = (Vec::new(), 0);
        self.sessions.retain(|_, s| {
            if s.shard != shard {
                return true;
            }
            let quiet = now.saturating_duration_since(s.last_seen) >= idle;
            if quiet {
                ended.push(std::mem::take(&mut s.ev));
            } else {
                held += 1;
            }
            !quiet
        });
        (ended, held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LASTS: Duration = Duration::from_secs(300);
    const IDLE: Duration = Duration::from_secs(14);

    fn viewer(query: &str) -> Viewer<'_> {
        Viewer {
            stream: "live/show",
            query,
            ip: "10.0.0.1".parse().unwrap(),
        }
    }

    fn event(conn_id: u64) -> HookEvent {
        HookEvent {
            app: "live".into(),
            stream: "show".into(),
            query: "token=good".into(),
            client: "10.0.0.1:5000".into(),
            protocol: "hls",
            conn_id,
            ..HookEvent::default()
        }
    }

    #[test]
    fn a_viewer_is_asked_once_then_served_while_it_reloads() {
        let mut t = HlsViewers::new(8);
        let v = viewer("token=good");
        let t0 = Instant::now();
        assert_eq!(t.seen(&v, t0), Seen::New);
        assert_eq!(t.allow(&v, event(1), 0, t0, LASTS), Ok(None));
        for i in 1..=20 {
            let at = t0 + Duration::from_secs(i * 3);
            assert_eq!(t.seen(&v, at), Seen::Allowed);
            // Reloading keeps it: nothing expires while requests come.
            assert_eq!(t.expire(0, at, IDLE), (vec![], 1));
        }
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_quiet_viewer_ends_with_its_own_event_on_its_own_shard() {
        let mut t = HlsViewers::new(8);
        let v = viewer("token=good");
        let t0 = Instant::now();
        t.allow(&v, event(7), 1, t0, LASTS).unwrap();
        let later = t0 + IDLE;
        assert_eq!(
            t.expire(0, later, IDLE),
            (vec![], 0),
            "another shard's session"
        );
        let early = later - Duration::from_millis(1);
        assert_eq!(t.expire(1, early, IDLE), (vec![], 1), "still held");
        assert_eq!(t.expire(1, later, IDLE), (vec![event(7)], 0));
        assert!(t.is_empty());
        assert_eq!(t.seen(&v, later), Seen::New, "coming back is a new viewer");
    }

    #[test]
    fn a_recheck_keeps_the_connection_id_and_a_refusal_ends_the_session() {
        let mut t = HlsViewers::new(8);
        let v = viewer("token=good");
        let t0 = Instant::now();
        t.allow(&v, event(3), 0, t0, LASTS).unwrap();
        let due = t0 + LASTS;
        let Seen::Recheck(shard, ev) = t.seen(&v, due) else {
            panic!("due for a re-check")
        };
        assert_eq!((shard, ev.conn_id), (0, 3));
        // Renewed: served again, still one session.
        assert_eq!(t.allow(&v, ev, 0, due, LASTS), Ok(None));
        assert_eq!(t.seen(&v, due + Duration::from_secs(1)), Seen::Allowed);
        // The next re-check is refused: the session ends with its event.
        let again = due + LASTS;
        assert!(matches!(t.seen(&v, again), Seen::Recheck(0, _)));
        assert_eq!(t.end(&v), Some((0, event(3))));
        assert!(t.is_empty());
    }

    #[test]
    fn two_requests_asking_at_once_leave_one_session_and_end_the_other() {
        let mut t = HlsViewers::new(8);
        let v = viewer("token=good");
        let t0 = Instant::now();
        assert_eq!(t.seen(&v, t0), Seen::New);
        assert_eq!(t.seen(&v, t0), Seen::New);
        assert_eq!(t.allow(&v, event(1), 0, t0, LASTS), Ok(None));
        assert_eq!(t.allow(&v, event(2), 1, t0, LASTS), Ok(Some((1, event(2)))));
        assert_eq!(t.len(), 1);
        assert_eq!(t.expire(0, t0 + IDLE, IDLE), (vec![event(1)], 0));
    }

    #[test]
    fn viewers_differ_by_query_ip_and_stream_and_the_table_is_bounded() {
        let mut t = HlsViewers::new(2);
        let t0 = Instant::now();
        t.allow(&viewer("token=a"), event(1), 0, t0, LASTS).unwrap();
        let other_ip = Viewer {
            ip: "10.0.0.2".parse().unwrap(),
            ..viewer("token=a")
        };
        assert_eq!(t.seen(&other_ip, t0), Seen::New);
        let other_stream = Viewer {
            stream: "live/other",
            ..viewer("token=a")
        };
        assert_eq!(t.seen(&other_stream, t0), Seen::New);
        t.allow(&viewer("token=b"), event(2), 0, t0, LASTS).unwrap();
        // Full: a new viewer is refused before and after asking; known ones are served.
        assert_eq!(t.seen(&viewer("token=c"), t0), Seen::Full);
        assert_eq!(
            t.allow(&viewer("token=c"), event(3), 0, t0, LASTS),
            Err(Full)
        );
        assert_eq!(t.seen(&viewer("token=a"), t0), Seen::Allowed);
        t.expire(0, t0 + IDLE, IDLE);
        assert_eq!(t.seen(&viewer("token=c"), t0 + IDLE), Seen::New);
    }
}
