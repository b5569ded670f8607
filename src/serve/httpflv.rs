//! HTTP-FLV viewers (`GET /{app}/{room}.flv`, livego's URL) and livego's `GET /streams`.
//!
//! A viewer is a player of the hub like an RTMP one: its queue gets the response head and the
//! FLV header as raw bytes, then the cached state and live frames, each sent as the FLV tag
//! made once per shard ([`crate::hub::LocalFrame::flv_tag`]). The body is close-delimited.
//! The viewer stays through a publisher change (timestamps continue), within
//! `play_wait_timeout`, and is removed the moment it disconnects.

use super::api::read_request;
use super::hooks::{Decision, Opened};
use super::io::Conn;
use super::watch::{Alarm, Watched};
use super::ShardState;
use crate::hooks::{Action, HookEvent};
use crate::http::{self, Limits, Request, Response};
use crate::hub::{release_burst, Item, PlayerQueue, StreamEvent, StreamInfo, StreamKey};
use crate::keys;
use crate::limits::Limit;
use crate::stats::{Proto, Role, SessionGuard, SessionInfo};
use bytes::Bytes;
use futures_lite::future;
use glommio::net::TcpStream;
use std::cell::Cell;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tracing::{debug, info, Instrument};

/// Serve one HTTP-FLV connection.
pub(crate) async fn serve(st: Rc<ShardState>, stream: TcpStream, peer: SocketAddr) {
    let conn_id = st.next_conn_id();
    let span = tracing::info_span!("httpflv", shard = st.id, conn = conn_id, %peer);
    async move {
        let io = Conn::new(stream);
        io.set_write_timeout(Some(Duration::from_secs(st.cfg.write_timeout)));
        if let Err(why) = serve_request(&st, &io, peer, conn_id).await {
            debug!(reason = %why, "closing");
        }
        // Half-close and drain, so a final error reply is not lost to a reset.
        super::io::linger_close(&io, super::io::LINGER).await;
    }
    .instrument(span)
    .await
}

async fn serve_request(
    st: &Rc<ShardState>,
    io: &Conn,
    peer: SocketAddr,
    conn_id: u64,
) -> Result<(), String> {
    // The request and its buffer are gone before a viewer plays: a viewer's task holds
    // only what playing needs.
    let Some((route, head_only, query)) = Box::pin(read_route(st, io)).await? else {
        return Ok(());
    };
    let (route, hooked) = Box::pin(play_hook(st, route, query, peer, conn_id)).await;
    // A viewer's place under max_players_per_stream, held while it plays.
    let (route, _ticket) = match route {
        Route::Play(key, info, url) if !head_only => match st.admission.join(&key) {
            Some(ticket) => (Route::Play(key, info, url), Some(ticket)),
            None => {
                st.stats.counters.limit_reached(Limit::PlayersPerStream);
                let why = "stream player limit reached (max_players_per_stream)\n";
                (Route::Reply(Response::text(503, why)), None)
            }
        },
        other => (other, None),
    };
    // Its hooks hear the end (on_stop) when this drops, or at shutdown.
    let mut hooked = hooked.and_then(|ev| st.hooks.open(Action::Stop, ev));
    if !matches!(route, Route::Play(..)) || head_only {
        // Allowed by on_play but not played (refused after it, or a HEAD): its hook server
        // hears the end at once.
        hooked.take();
    }
    let status = match &route {
        Route::Reply(resp) => resp.status,
        Route::Play(..) => 200,
    };
    st.stats.counters.http_response(Proto::HttpFlv, status);
    match route {
        Route::Reply(resp) => answer(io, &resp, head_only).await,
        Route::Play(..) if head_only => {
            // The same head a GET gets (streamed, no length), without the body.
            let mut head = Vec::new();
            flv_response().write_stream_head(&mut head);
            io.write_all(&head).await.map_err(|e| e.to_string())
        }
        Route::Play(key, info, url) => {
            let listed = st.stats.open(SessionInfo {
                role: Role::Player,
                protocol: "flv",
                key: key.clone(),
                url,
                stream_id: 0,
                remote: peer.to_string(),
                connected_at: std::time::SystemTime::now(),
            });
            let viewer = Rc::new(Viewer::new(st.clone(), io.clone(), key, listed, hooked));
            let watched: Rc<dyn Watched> = viewer.clone();
            st.watchlist.add(Rc::downgrade(&watched));
            viewer.run(info).await
        }
    }
}

/// Ask the app's on_play hooks about a viewer (a refusal becomes a 403 with the reason). The
/// event is returned, with or without on_play hooks, for the viewer's on_stop and on_update.
async fn play_hook(
    st: &Rc<ShardState>,
    route: Route,
    query: String,
    peer: SocketAddr,
    conn_id: u64,
) -> (Route, Option<HookEvent>) {
    let Route::Play(key, ..) = &route else {
        return (route, None);
    };
    let (app, room) = key.split_once('/').unwrap_or_default();
    let ev = HookEvent {
        app: app.to_owned(),
        stream: room.to_owned(),
        query,
        client: peer.to_string(),
        protocol: "flv",
        conn_id,
        file: None,
        tc_url: None,
    };
    // Without on_play the viewer is let in; its event still serves on_stop and on_update.
    match st.hooks.decide(Action::Play, &ev).await {
        Decision::Allow { .. } => (route, Some(ev)),
        Decision::Deny { failed, .. } => {
            let why = match failed {
                false => "forbidden: the on_play hook denied this viewer\n",
                true => {
                    "forbidden: the on_play hook could not be asked (its failure policy is deny)\n"
                }
            };
            (Route::Reply(Response::text(403, why)), None)
        }
    }
}

/// Read the request and decide what to do with it (`None`: the peer closed first). A bad
/// request is answered here.
async fn read_route(
    st: &Rc<ShardState>,
    io: &Conn,
) -> Result<Option<(Route, bool, String)>, String> {
    let limits = Limits {
        max_header_bytes: st.cfg.http_max_header_bytes,
        max_body_bytes: st.cfg.http_max_body_bytes,
    };
    let mut buf = Vec::new();
    let req = match read_request(st, io, &mut buf, &limits).await {
        Ok(Some((req, _))) => req,
        Ok(None) => return Ok(None),
        Err(e) => {
            st.stats
                .counters
                .http_response(Proto::HttpFlv, e.to_response().status);
            return answer(io, &e.to_response(), false)
                .await
                .and(Err(e.to_string()));
        }
    };
    Ok(Some((
        route(st, &req),
        req.method == "HEAD",
        req.query.clone(),
    )))
}

enum Route {
    Reply(Response),
    /// The stream, its tracks, and the URL the viewer asked for (for stats).
    Play(StreamKey, StreamInfo, String),
}

fn route(st: &ShardState, req: &Request) -> Route {
    if req.method == "OPTIONS" {
        return Route::Reply(http::preflight(req));
    }
    if req.method != "GET" && req.method != "HEAD" {
        return Route::Reply(
            Response::text(405, "use GET or HEAD\n").header("Allow", "GET, HEAD, OPTIONS"),
        );
    }
    let path = match req.decoded_path() {
        Ok(p) => p,
        Err(e) => return Route::Reply(e.to_response()),
    };
    if path == "/streams" {
        return Route::Reply(streams(st));
    }
    let not_found = |why: &str| Route::Reply(Response::text(404, format!("{why}\n")));
    let Some((app, room)) = path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix(".flv"))
        .and_then(|p| p.split_once('/'))
    else {
        return not_found("not found: use /{app}/{room}.flv");
    };
    if !st.cfg.app(app).is_some_and(|a| a.flv) {
        return not_found("no such app, or HTTP-FLV is off for it");
    }
    if keys::validate_room(room).is_err() {
        return not_found("invalid stream name");
    }
    let key = format!("{app}/{room}");
    match st.directory.get(&key) {
        Some(info) => {
            let host = req.header("Host").unwrap_or_default();
            let url = format!("http://{host}{}", req.path);
            Route::Play(key.into(), info, url)
        }
        None => not_found("stream not found"),
    }
}

/// livego's `GET /streams`: the live streams (players are listed by `/stat/livestat`), each
/// with its codecs once known (`null` before its first frame says).
fn streams(st: &ShardState) -> Response {
    let name = |c: Option<crate::media::Codec>| c.map(crate::media::Codec::name);
    let publishers: Vec<serde_json::Value> = st
        .directory
        .entries()
        .into_iter()
        .map(|(k, info)| {
            serde_json::json!({
                "key": k,
                "id": k,
                "video_codec": name(info.video_codec),
                "audio_codec": name(info.audio_codec),
            })
        })
        .collect();
    Response::json(
        200,
        &serde_json::json!({ "publishers": publishers, "players": [] }),
    )
}

fn flv_response() -> Response {
    Response::new(200)
        .header("Content-Type", "video/x-flv")
        .header("Cache-Control", "no-cache")
}

async fn answer(io: &Conn, resp: &Response, head_only: bool) -> Result<(), String> {
    let mut out = Vec::new();
    resp.write_to(&mut out, head_only, false);
    io.write_all(&out).await.map_err(|e| e.to_string())
}

/// The FLV file header (spec E.2) with the stream's tracks, and PreviousTagSize0.
fn flv_header(info: StreamInfo) -> [u8; 13] {
    crate::media::flv::file_header(info.has_audio, info.has_video)
}

/// One HTTP-FLV viewer attached to the hub.
struct Viewer {
    st: Rc<ShardState>,
    io: Conn,
    key: StreamKey,
    queue: Rc<std::cell::RefCell<PlayerQueue>>,
    waiting_since: Cell<Option<Instant>>,
    /// Raised by the shard's sweeper (see `timeout_reason`).
    alarm: Alarm,
    /// This viewer in `/stat/livestat`.
    listed: SessionGuard,
    /// Its end for the hooks (on_stop, when the viewer drops), and `on_update`'s verdict.
    hooked: Option<Opened>,
}

impl Viewer {
    fn new(
        st: Rc<ShardState>,
        io: Conn,
        key: StreamKey,
        listed: SessionGuard,
        hooked: Option<Opened>,
    ) -> Self {
        let queue = PlayerQueue::new(st.cfg.player_queue_bytes, st.cfg.player_max_skips)
            .with_audio_merge(st.cfg.audio_merge_ms > 0)
            .with_merged_writes(st.cfg.merge_write_ms > 0);
        Viewer {
            st,
            io,
            key,
            queue: Rc::new(std::cell::RefCell::new(queue)),
            waiting_since: Cell::new(None),
            alarm: Alarm::default(),
            listed,
            hooked,
        }
    }

    async fn run(&self, info: StreamInfo) -> Result<(), String> {
        let mut head = Vec::new();
        flv_response().write_stream_head(&mut head);
        head.extend_from_slice(&flv_header(info));
        self.queue.borrow_mut().push_raw(head.into());
        let player = self
            .st
            .hub
            .borrow_mut()
            .add_player(&self.key, self.queue.clone());
        info!(shard = self.st.id, stream = %self.key, "play started");
        let outcome = future::or(future::or(self.write_loop(), self.read_loop()), async {
            Err(self.alarm.wait().await)
        })
        .await;
        self.st.hub.borrow_mut().remove_player(&self.key, player);
        let dropped = self.queue.borrow().dropped();
        let slow = self.queue.borrow().closed().is_some();
        self.st.stats.counters.player_ended(dropped, slow);
        info!(shard = self.st.id, stream = %self.key, dropped, "play ended");
        outcome
    }

    async fn write_loop(&self) -> Result<(), String> {
        let mut items = Vec::new();
        let mut bufs = Vec::new();
        loop {
            poll_fn(|cx| self.queue.borrow_mut().poll_drain(cx, &mut items)).await;
            if let Some(reason) = self.queue.borrow().closed() {
                return Err(format!("viewer closed: {reason:?} (cannot keep up)"));
            }
            for item in items.drain(..) {
                match item {
                    Item::Raw(b) => bufs.push(b),
                    Item::Frame(f) => {
                        self.listed.meter().media(f.frame.kind, f.frame.len());
                        f.flv_tag(&mut bufs)
                    }
                    Item::Event(StreamEvent::Published) => self.waiting_since.set(None),
                    Item::Event(StreamEvent::Unpublished) => {
                        self.waiting_since.set(Some(Instant::now()))
                    }
                }
            }
            release_burst(&mut items);
            let len: usize = bufs.iter().map(Bytes::len).sum();
            self.io
                .write_all_vectored(&mut bufs)
                .await
                .map_err(|e| format!("write: {e}"))?;
            self.st.stats.counters.bytes_out(Proto::HttpFlv, len);
            self.listed.meter().wire(len);
        }
    }

    /// The viewer sends nothing after its request; EOF or an error means it left.
    async fn read_loop(&self) -> Result<(), String> {
        // Small: it lives in every viewer's task, and anything read is thrown away.
        let mut scratch = [0u8; 64];
        loop {
            match self.io.read(&mut scratch).await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Why the viewer must end now, if it must (called by the shard's sweeper).
    fn timeout_reason(&self, now: Instant) -> Option<String> {
        if let Some(reason) = self.queue.borrow().closed() {
            // Seen here too: the writer may be stuck in a write to a peer that reads nothing.
            return Some(format!("viewer closed: {reason:?} (cannot keep up)"));
        }
        let wait = Duration::from_secs(self.st.cfg.play_wait_timeout);
        let waited = self
            .waiting_since
            .get()
            .map(|t| now.saturating_duration_since(t));
        waited.filter(|w| *w > wait).map(|_| {
            format!(
                "no publisher for {} s (play_wait_timeout)",
                self.st.cfg.play_wait_timeout
            )
        })
    }
}

impl Watched for Viewer {
    fn check(&self, now: Instant) -> Option<String> {
        let revoked = self.hooked.as_ref().and_then(Opened::revoked);
        revoked.or_else(|| self.timeout_reason(now))
    }

    fn alarm(&self) -> &Alarm {
        &self.alarm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_flags_follow_the_tracks() {
        let h = |a, v| {
            flv_header(StreamInfo {
                has_audio: a,
                has_video: v,
                ..StreamInfo::default()
            })[4]
        };
        assert_eq!(h(true, true), 0x05);
        assert_eq!(h(true, false), 0x04);
        assert_eq!(h(false, true), 0x01);
        assert_eq!(h(false, false), 0x05);
        assert_eq!(&flv_header(StreamInfo::default())[..4], b"FLV\x01");
    }
}
