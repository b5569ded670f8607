//! The HLS listener: livego's URLs `/{app}/{room}.m3u8` and `/{app}/{room}/{seq}.ts`, plus
//! `crossdomain.xml`, served from the process-wide [`crate::hls::HlsStore`] on any shard.
//! Segment bytes go out as the stored `Bytes` (no copy per request).

use super::api::serve_requests;
use super::hooks::Decision;
use super::io::Conn;
use super::tls::TlsConn;
use super::ShardState;
use crate::hooks::hls_viewers::{Full, Seen, Viewer};
use crate::hooks::{playlist_with_session, session_of, without_session, Action, HookEvent};
use crate::http::{self, Request, Response};
use crate::keys;
use crate::limits::Limit;
use crate::stats::Proto;
use glommio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tracing::{debug, warn, Instrument};

/// How often a playlist request re-checks for the stream's first segment.
const FIRST_SEGMENT_POLL: Duration = Duration::from_millis(100);

const CROSSDOMAIN: &str = "<?xml version=\"1.0\" ?>\n<cross-domain-policy>\n\t\
<allow-access-from domain=\"*\" />\n\t<allow-http-request-headers-from domain=\"*\" headers=\"*\"/>\n\
</cross-domain-policy>\n";

/// Serve one HLS connection (keep-alive, like the API).
pub(crate) async fn serve(st: Rc<ShardState>, stream: TcpStream, peer: SocketAddr) {
    let conn_id = st.next_conn_id();
    let span = tracing::debug_span!("hls", shard = st.id, conn = conn_id, %peer);
    async move {
        let io = Conn::new(stream);
        io.set_write_timeout(Some(Duration::from_secs(st.cfg.write_timeout)));
        let handler = |req: Request| {
            let st = st.clone();
            async move { Box::pin(respond(&st, &req, peer)).await }
        };
        let outcome = match &st.hls_tls {
            Some(config) => match TlsConn::new(io.clone(), config.clone()) {
                Ok(tls) => {
                    let r = serve_requests(&st, Proto::Hls, &tls, handler).await;
                    tls.close().await;
                    r
                }
                Err(e) => Err(format!("TLS: {e}")),
            },
            None => serve_requests(&st, Proto::Hls, &io, handler).await,
        };
        if let Err(why) = outcome {
            debug!(reason = %why, "closing");
        }
        // Half-close and drain, so a final error reply is not lost to a reset.
        super::io::linger_close(&io, super::io::LINGER).await;
    }
    .instrument(span)
    .await
}

/// What an HLS path names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Playlist {
        app: &'a str,
        room: &'a str,
    },
    Segment {
        app: &'a str,
        room: &'a str,
        seq: u64,
    },
    CrossDomain,
}

/// `/{app}/{room}.m3u8`, `/{app}/{room}/{seq}.ts`, or any `.../crossdomain.xml`.
fn parse_target(path: &str) -> Option<Target<'_>> {
    let p = path.strip_prefix('/')?;
    if p.rsplit('/').next() == Some("crossdomain.xml") {
        return Some(Target::CrossDomain);
    }
    if let Some(stem) = p.strip_suffix(".m3u8") {
        let (app, room) = stem.split_once('/')?;
        return (!room.contains('/')).then_some(Target::Playlist { app, room });
    }
    let stem = p.strip_suffix(".ts")?;
    let mut parts = stem.split('/');
    let (app, room, seq) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let seq = seq.parse().ok()?;
    Some(Target::Segment { app, room, seq })
}

async fn respond(st: &ShardState, req: &Request, peer: SocketAddr) -> Response {
    let ip = peer.ip();
    if req.method == "OPTIONS" {
        return http::preflight(req);
    }
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "use GET or HEAD\n").header("Allow", "GET, HEAD, OPTIONS");
    }
    let path = match req.decoded_path() {
        Ok(p) => p,
        Err(e) => return e.to_response(),
    };
    let not_found = |why: &str| Response::text(404, format!("{why}\n"));
    let Some(target) = parse_target(&path) else {
        return not_found("not found: use /{app}/{room}.m3u8");
    };
    let (app, room) = match target {
        Target::CrossDomain => {
            return Response::new(200)
                .header("Content-Type", "application/xml")
                .with_body(CROSSDOMAIN)
        }
        Target::Playlist { app, room } | Target::Segment { app, room, .. } => (app, room),
    };
    if !st.cfg.app(app).is_some_and(|a| a.hls) || keys::validate_room(room).is_err() {
        return not_found("no such stream");
    }
    let key = format!("{app}/{room}");
    if st.hls.get(&key).is_none() {
        // Before any hook: requests for streams that do not exist cost the hook server nothing.
        return Response::text(404, "stream not found\n");
    }
    let session = if st.hooks.has(app, Action::Play) {
        let segment = matches!(target, Target::Segment { .. });
        match authorize(st, (app, room, &key), segment, req, peer).await {
            Ok(session) => Some(session),
            Err(refused) => return refused,
        }
    } else {
        None
    };
    // With hooks, what a viewer gets is for that viewer: no shared cache may keep it.
    let segment_cache = match session {
        Some(_) => "private, max-age=3600",
        None => "public, max-age=3600, immutable",
    };
    let resp = match target {
        Target::Segment { seq, .. } => match st.hls.get(&key).and_then(|v| v.segment(seq)) {
            Some(data) => Response::new(200)
                .header("Content-Type", "video/mp2t")
                // A segment never changes once listed.
                .header("Cache-Control", segment_cache)
                .with_body(data),
            None => not_found("no such segment"),
        },
        _ => playlist(st, &key, session.as_deref()).await,
    };
    if resp.status == 200 {
        let scheme = if st.hls_tls.is_some() {
            "https"
        } else {
            "http"
        };
        let host = req.header("Host").unwrap_or_default();
        let url = format!("{scheme}://{host}/{key}.m3u8");
        let now = Instant::now();
        st.stats
            .hls_request(&key.into(), ip, &url, resp.body.len(), now);
    }
    resp
}

/// Authorize an HLS request of an app with on_play hooks, once per viewer session (see
/// [`crate::hooks::hls_viewers`]): a segment request that carries a valid `hls_session` id
/// (the segment URLs of the playlists we serve do; a playlist request is not let in by one, so
/// a leaked segment URL does not open the stream), or a request of a viewer (same stream,
/// query and client IP: hls.js and Safari reload the playlist URL they were given, token
/// included) allowed within `hooks.hls_session_secs`, is not hooked again.
/// Returns the session id for the playlist's segment URLs, or the response to answer.
async fn authorize(
    st: &ShardState,
    (app, room, key): (&str, &str, &str),
    segment: bool,
    req: &Request,
    peer: SocketAddr,
) -> Result<String, Response> {
    let hooks = &st.hooks;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Some(id) = session_of(&req.query).filter(|_| segment) {
        if hooks.signer.check(id, key, unix) {
            // The same id: a session is not extended without asking the hook again.
            return Ok(id.to_owned());
        }
    }
    let fresh = || hooks.signer.mint(key, unix + hooks.hls_session_secs());
    let query = without_session(&req.query);
    let viewer = Viewer {
        stream: key,
        query: &query,
        ip: peer.ip(),
    };
    let now = Instant::now();
    let (shard, ev, recheck) = match hooks.hls_seen(&viewer, now) {
        Seen::Allowed => return Ok(fresh()),
        Seen::Full => return Err(sessions_full(st)),
        Seen::Recheck(shard, ev) => (shard, ev, true),
        Seen::New => {
            let ev = HookEvent {
                app: app.to_owned(),
                stream: room.to_owned(),
                query: query.clone(),
                client: peer.to_string(),
                protocol: "hls",
                // A virtual connection: its own id, which its on_stop repeats.
                conn_id: st.next_conn_id(),
                file: None,
                tc_url: None,
            };
            (st.id, ev, false)
        }
    };
    match hooks.decide_as(Action::Play, &ev, shard).await {
        Decision::Allow { .. } => {
            match hooks.hls_allow(&viewer, (shard, ev.clone()), Instant::now()) {
                Ok(()) => Ok(fresh()),
                Err(Full) => {
                    // Allowed, but not followed: its hook server hears the end at once.
                    hooks.notify_as(Action::Stop, &ev, shard);
                    Err(sessions_full(st))
                }
            }
        }
        Decision::Deny { failed, .. } => {
            if recheck {
                hooks.hls_end(&viewer);
            }
            let why = if failed {
                "forbidden: the on_play hook could not be asked (its failure policy is deny)\n"
            } else {
                "forbidden: the on_play hook denied this viewer\n"
            };
            Err(Response::text(403, why))
        }
    }
}

/// The 503 of a new HLS viewer beyond `hooks.max_hls_sessions`.
fn sessions_full(st: &ShardState) -> Response {
    st.stats.counters.limit_reached(Limit::HlsSessions);
    warn!(
        shard = st.id,
        limit = Limit::HlsSessions.label(),
        "HLS viewer refused: limit reached"
    );
    Response::text(
        503,
        format!("limit reached: {}\n", Limit::HlsSessions.label()),
    )
    .header("Retry-After", "5")
}

/// The playlist of `key`; a live stream whose first segment is still being cut is waited for
/// (up to two fragments) instead of answering a playlist with nothing to play. With a
/// `session`, segment URLs carry it.
async fn playlist(st: &ShardState, key: &str, session: Option<&str>) -> Response {
    let deadline = Instant::now() + Duration::from_secs(st.cfg.hls_fragment * 2 + 1);
    loop {
        let view = st.hls.get(key);
        match view {
            Some(v) if v.has_segments() || Instant::now() >= deadline => {
                let resp =
                    Response::new(200).header("Content-Type", "application/vnd.apple.mpegurl");
                return match session {
                    None => resp
                        .header("Cache-Control", "no-cache")
                        .with_body(v.playlist.clone()),
                    Some(id) => {
                        let text = String::from_utf8_lossy(&v.playlist);
                        resp.header("Cache-Control", "private, no-cache")
                            .with_body(playlist_with_session(&text, id))
                    }
                };
            }
            None => return Response::text(404, "stream not found\n"),
            Some(_) => glommio::timer::sleep(FIRST_SEGMENT_POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("/live/movie.m3u8"),
            Some(Target::Playlist {
                app: "live",
                room: "movie"
            })
        );
        assert_eq!(
            parse_target("/live/movie/12.ts"),
            Some(Target::Segment {
                app: "live",
                room: "movie",
                seq: 12
            })
        );
        assert_eq!(parse_target("/crossdomain.xml"), Some(Target::CrossDomain));
        assert_eq!(
            parse_target("/live/crossdomain.xml"),
            Some(Target::CrossDomain)
        );
        assert_eq!(parse_target("/live/a/b.m3u8"), None);
        assert_eq!(parse_target("/live/movie/x.ts"), None);
        assert_eq!(parse_target("/live/movie/1/2.ts"), None);
        assert_eq!(parse_target("/live.m3u8"), None);
        assert_eq!(parse_target("live/movie.m3u8"), None);
    }
}
